"""`main.py segment` runs: --views, several objects from --prompts, the early stop and partial outputs
of a failed run, the output folder replaced as a whole, and a second run reading every view's weights
from the disk cache."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _segment(field_file, cache, out, *args):
    env = dict(os.environ, SA3D_CACHE=str(cache),
               PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "segment", "builtin-64", "--field", str(field_file),
                           "--out", str(out), *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_views_count_bar_total_and_a_second_run_builds_no_weights(field_file, cache, tmp_path):
    out = tmp_path / "out"
    first = _segment(field_file, cache, out, "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                     "--views", "6", "--name", "sphere")
    assert first.returncode == 0, first.stderr
    summary = _summary(out)
    tried = len(summary["accepted"]) + len(summary["rejected"])
    assert tried in (5, 6) and summary["settings"]["views"] and len(summary["settings"]["views"]) == 6
    totals = {int(t) for t in re.findall(r"segment builtin-64:.*?\d+/(\d+)", first.stderr)}
    assert totals == {tried}                                   # the bar's total never changes
    assert summary["view_weights"]["built"] > 0
    (out / "stale.txt").write_text("from an earlier run")
    second = _segment(field_file, cache, out, "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                      "--views", "6", "--name", "sphere")
    assert second.returncode == 0, second.stderr
    again = _summary(out)
    assert again["view_weights"] == {"built": 0, "read_from_cache": summary["view_weights"]["built"]}
    assert again["accepted"] == summary["accepted"] and not (out / "stale.txt").exists()   # replaced whole
    assert "0 built" in second.stdout


def test_views_by_name_and_a_folder_that_is_not_an_output_is_refused(field_file, cache, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = _segment(field_file, cache, mine, "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                    "--views", "view_003,view_005")
    assert done.returncode == 2 and "not an earlier output" in done.stderr and (mine / "notes.txt").exists()
    out = tmp_path / "out"
    done = _segment(field_file, cache, out, "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                    "--views", "view_003,view_005")
    assert done.returncode == 0, done.stderr
    assert sorted(v["view"] for v in _summary(out)["accepted"] + _summary(out)["rejected"]) == ["view_003", "view_005"]
    done = _segment(field_file, cache, out, "--view", "view_001", "--point", "20,34", "--views", "view_x")
    assert done.returncode == 2 and "view 'view_x' is not in scene" in done.stderr


def test_every_view_rejected_writes_the_summary_and_prompted_mask_and_exits_2(field_file, cache, tmp_path):
    out = tmp_path / "out"
    done = _segment(field_file, cache, out, "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                    "--views", "12", "--iou-gate", "1", "--stop-after", "4")
    assert done.returncode == 2
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "stopped after 4 views rejected in a row" in error[0]
    assert "gt segmenter" in error[0] and "SAM" not in error[0]
    summary = _summary(out)
    assert summary["stopped_early"] and len(summary["rejected"]) == 4 and not summary["accepted"]
    assert all(0 <= r["iou"] < 1 for r in summary["rejected"]) and len(summary["not_tried"]) >= 6
    assert [p.name for p in (out / "masks").iterdir()] == ["view_001.png"]
    full = _segment(field_file, cache, tmp_path / "all", "--view", "view_001", "--point", "20,34", "--segmenter",
                    "fallback", "--views", "3", "--iou-gate", "1", "--stop-after", "0")
    assert full.returncode == 2 and "every view was rejected: the fallback segmenter's masks" in full.stderr
    assert len(_summary(tmp_path / "all")["rejected"]) >= 2


def test_several_objects_from_a_prompts_file_share_one_grid(field_file, cache, tmp_path):
    from engine.scenes.builtin import builtin_truth

    truth = builtin_truth(64)
    prompts = []
    for k in (1, 2):                                 # a click on each object where it is largest
        view = max(range(8), key=lambda v: int((truth.instance_masks[v] == k).sum()))
        ys, xs = np.nonzero(truth.instance_masks[view] == k)
        i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        prompts.append({"name": truth.object_names[k - 1], "view": view, "points": [[int(xs[i]), int(ys[i])]]})
    file = tmp_path / "prompts.json"
    file.write_text(json.dumps(prompts))
    out = tmp_path / "out"
    done = _segment(field_file, cache, out, "--prompts", file, "--segmenter", "gt", "--views", "8")
    assert done.returncode == 0, done.stderr
    grid = np.load(out / "mask_grid.npz")
    assert list(grid["names"]) == list(truth.object_names[:2]) and grid["votes"].shape[0] == 2
    summary = _summary(out)
    assert [o["object"] for o in summary["objects"]] == list(truth.object_names[:2])
    for name in truth.object_names[:2]:
        masks = sorted((out / "masks" / name).glob("*.png"))
        assert len(masks) == 60
    a = np.asarray(__import__("PIL.Image").Image.open(out / "masks" / truth.object_names[0] / "view_002.png")) > 0
    b = np.asarray(__import__("PIL.Image").Image.open(out / "masks" / truth.object_names[1] / "view_002.png")) > 0
    assert a.any() and b.any() and (a & b).sum() < 0.05 * min(a.sum(), b.sum())


@pytest.mark.parametrize("content, expected", [
    ("not json", "cannot be read as JSON"),
    ("[]", "non-empty JSON list"),
    ('[{"name": "a", "view": "view_001"}]', "entry 0: no prompt"),
    ('[{"name": "a", "view": "view_001", "points": [[500, 3]]}]', "entry 0: --point 500,3 is outside"),
    ('[{"name": "a", "view": "nope", "points": [[3, 3]]}]', "entry 0: view 'nope' is not in scene"),
    ('[{"name": "a", "view": "1", "points": [[3, 3]]}, {"name": "a", "view": "1", "points": [[4, 4]]}]',
     "names must differ"),
    ('[{"name": "a", "view": "1", "points": "3,3"}]', "entry 0 is not an object"),
    ('[{"name": "a", "view": "1", "clicks": [[3, 3]]}]', "unknown keys"),
])
def test_bad_prompts_files_are_one_line_errors(field_file, cache, tmp_path, content, expected):
    file = tmp_path / "prompts.json"
    file.write_text(content)
    done = _segment(field_file, cache, tmp_path / "out", "--prompts", file, "--segmenter", "fallback")
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
