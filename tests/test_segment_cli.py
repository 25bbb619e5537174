"""`main.py segment` end to end on the small built-in scene, then `main.py eval`; error lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _main(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_segment_then_eval_on_the_builtin_scene(field_file, tmp_path):
    from engine.scenes.builtin import builtin_truth

    truth = builtin_truth(64)
    out = tmp_path / "out"
    done = _main("segment", "builtin-64", "--field", field_file, "--view", "view_001", "--point", "20,34",
                 "--segmenter", "gt", "--out", out, "--name", "sphere")
    assert done.returncode == 0, done.stderr
    grid = np.load(out / "mask_grid.npz")
    assert grid["votes"].shape[0] == 1 and list(grid["names"]) == ["sphere"] and int(grid["version"]) == 1
    assert len(list((out / "masks").glob("*.png"))) == 60          # every view, held-out included
    summary = json.loads((out / "summary.json").read_text())
    assert summary["segmenter"] == "gt" and len(summary["accepted"]) > 40 and summary["test_views"]
    scores = tmp_path / "scores.json"
    done = _main("eval", "--pred", out / "masks", "--gt", truth.mask_dir("sphere"), "--json", scores)
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.startswith("mIoU "))
    assert float(line.split()[1]) > 80
    assert json.loads(scores.read_text())["mIoU"] > 0.8


@pytest.mark.parametrize("args, expected", [
    (["--view", "1", "--point", "500,3"], "outside view 'view_001'"),
    (["--view", "nope", "--point", "3,3"], "view 'nope' is not in scene"),
    (["--view", "1", "--point", "3"], "is not X,Y"),
    (["--view", "1"], "no prompt"),
])
def test_bad_prompts_are_one_line_exit_2(field_file, tmp_path, args, expected):
    done = _main("segment", "builtin-64", "--field", field_file, "--segmenter", "fallback", "--out", tmp_path, *args)
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_empty_mask_png_and_missing_field_are_one_line_errors(tmp_path):
    from PIL import Image

    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(empty)
    scene_dir = ROOT.parents[0] / "shared" / "data" / "llff" / "fern"
    done = _main("segment", "builtin-64", "--field", tmp_path / "none.pt", "--view", "1", "--mask", empty,
                 "--segmenter", "fallback", "--out", tmp_path / "o")
    assert done.returncode == 2 and "is empty" in done.stderr
    if scene_dir.is_dir():
        done = _main("segment", scene_dir, "--downscale", "8", "--view", "0", "--point", "3,3", "--out", tmp_path / "o")
        assert done.returncode == 2 and "python main.py train" in done.stderr


def test_eval_scores_by_hand(tmp_path):
    from PIL import Image

    pred, gt = tmp_path / "run" / "masks", tmp_path / "gt"
    pred.mkdir(parents=True)
    gt.mkdir()
    p = np.zeros((2, 4), np.uint8)
    p[0, :3] = 255                                                  # TP 2, FP 1
    g = np.zeros((2, 4), np.uint8)
    g[0, :2] = g[1, 0] = 7                                          # FN 1 -> IoU 2/4, acc 6/8
    Image.fromarray(p).save(pred / "a.png")
    Image.fromarray(g).save(gt / "a.png")
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"train_views": [], "test_views": ["a"]}))
    done = _main("eval", "--pred", pred, "--gt", gt)
    assert done.returncode == 0 and "mIoU 50.00" in done.stdout and "mAcc 75.00" in done.stdout
    done = _main("eval", "--pred", pred, "--gt", tmp_path / "missing")
    assert done.returncode == 2 and "is not a folder" in done.stderr
