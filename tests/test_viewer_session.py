"""The viewer's file actions: export the active object (the panel's button sends the same request),
record a session (`view --record`, the UI toggle's requests) and replay it with `main.py replay`."""

import json

import numpy as np
import pytest

from components.resources import SegmentationSettings
from engine.field.checkpoint import save_field
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from main import main
from systems.sam.gt import GtSegmenter
from systems.viewer.plugin import build_viewer
from systems.viewer.resources import ViewerLog
from systems.viewer.session import (
    SessionFiles,
    StartRecordingRequested,
    StopRecordingRequested,
    default_export_folder,
    export_request,
)
from tests.test_record_session import run_script

VIEWS = (2, 5, 9)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    field_path = tmp_path_factory.mktemp("field") / "field.pt"
    save_field(field_path, field, scene_hash=scene.content_hash())
    return scene, field, truth, field_path


def _click(truth, view, k):
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return [float(xs[i]) + 0.5, float(ys[i]) + 0.5]


def test_export_requests_name_the_format_and_a_per_object_folder():
    assert default_export_folder("red ball/1") == default_export_folder("red_ball_1")
    request = export_request("mesh (obj)", default_export_folder("red ball"), 3, "red ball")
    assert request.out.replace("\\", "/") == "exports/red_ball/red_ball.obj" and request.object_id == 3
    assert export_request("masks (png per view)", default_export_folder("a"), 1, "a").options.format == "masks"
    assert export_request("mask grid (npz)", default_export_folder("a"), 1, "a").out.endswith("a.npz")


def test_the_ui_requests_export_the_active_object_and_toggle_recording(inputs, tmp_path):
    scene, field, truth, field_path = inputs
    script = [{"click": _click(truth, 0, 1)}, {"wait": "segmented"}, {"key": "1"}, {"wait": "segmented"},
              {"quit": True}]
    app = build_viewer(scene, field, GtSegmenter(truth.instance_dir()), H=scene.H, W=scene.W, gl=False, ui=False,
                       script=script, settings=SegmentationSettings(views=VIEWS), fixed_dt=1 / 30, recording=True,
                       files=SessionFiles(field_path=str(field_path)))
    record = tmp_path / "ui.jsonl"
    app.send(StartRecordingRequested(record))
    run_script(app)
    app.send(export_request("mesh (obj)", tmp_path / "out", 1, "object 1"))
    app.send(export_request("point cloud (ply)", tmp_path / "out", 99, "gone"))
    app.send(StopRecordingRequested())
    app.exit_requested = False
    app.run(max_frames=3)
    files = app.resource(SessionFiles)
    assert (tmp_path / "out" / "object_1.obj").stat().st_size > 1000
    lines = app.resource(ViewerLog).lines
    assert any(line.startswith("export failed: object id 99") for line in lines)
    assert files.last_export in lines and "object_1.obj" in files.last_export   # written after the refusal
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines[0]["format"] == "sa3d-recording" and lines[-1]["kind"] == "grids"
    assert "PropagationFinished" in record.read_text()


@pytest.mark.gl
def test_view_record_writes_a_session_that_replay_reproduces(inputs, tmp_path, capsys):
    from engine.platform.gl import GLUnavailableError, headless_context

    try:
        headless_context().release()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    scene, field, truth, field_path = inputs
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"wait": "still"}, {"click": _click(truth, 0, 2)}, {"wait": "segmented"},
                                  {"key": "1"}, {"wait": "segmented"}, {"drag": [20, 0], "frames": 4},
                                  {"after": 6, "quit": True}]))
    record = tmp_path / "session.jsonl"
    args = ["view", "builtin-64", "--field", str(field_path), "--size", f"{scene.W}x{scene.H}", "--headless",
            "--script", str(script), "--segmenter", "gt", "--gt-masks", str(truth.instance_dir()),
            "--propagation-views", "3", "--frames", "600"]
    assert main(args + ["--record", str(record)]) == 0
    assert f"recorded the session in {record}" in capsys.readouterr().err
    assert main(args + ["--record", str(record)]) == 2                       # never overwritten
    assert "exists" in capsys.readouterr().err
    assert main(["replay", str(record), "--out", str(tmp_path / "replay"), "--views", "0"]) == 0
    out = capsys.readouterr().out
    assert "identical:" in out and "grid checks match" in out


@pytest.mark.gl
def test_headless_demo_prints_its_folder_and_scores(inputs, tmp_path, capsys, monkeypatch):
    from engine.platform.gl import GLUnavailableError, headless_context

    try:
        headless_context().release()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    _, _, _, field_path = inputs
    monkeypatch.delenv("DISPLAY", raising=False)
    out = tmp_path / "demo"
    assert main(["view", "builtin-64", "--field", str(field_path), "--size", "192x128", "--segmenter", "gt",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}/" in printed and "object_alone.png" in printed and "mean IoU" in printed
    summary = json.loads((out / "summary.json").read_text())
    (obj,) = summary["objects"]
    assert obj["truth"] == "sphere" and obj["mean_iou"] > 0.7 and len(obj["iou"]) == 12
    # One name throughout: the log's "segmenting 'sphere'", the summary and its line.
    assert summary["object"] == obj["name"] == "sphere" and "segmenting 'sphere'" in printed
    assert "'sphere': " in printed
    from PIL import Image

    from engine.scenes.builtin_render import BACKGROUND
    from systems.viewer.annotate import MARKER_COLOR

    viewer, alone = (np.asarray(Image.open(out / name).convert("RGB")).astype(int)
                     for name in ("viewer.png", "object_alone.png"))
    x, y = (int(v) for v in summary["click"])
    assert tuple(viewer[y, x]) == MARKER_COLOR                                  # the click is marked
    assert viewer[2:12, 2:30].mean() < 90                                       # under a dark caption
    legend = np.all(np.abs(viewer[:60] - obj["color"]) < 3, axis=-1)
    assert legend.sum() > 20                                                    # the overlay colour's swatch
    shown = np.abs(alone - np.array(BACKGROUND) * 255).sum(-1) > 60
    shown[:40] = False                                                          # (the caption)
    tinted = np.linalg.norm(alone - obj["color"], axis=-1) < 80
    assert shown.sum() > 300 and tinted[shown].mean() < 0.05                   # its own colours, no overlay
    assert np.median(alone[shown][:, 0]) > 1.5 * np.median(alone[shown][:, 2])  # the red sphere
