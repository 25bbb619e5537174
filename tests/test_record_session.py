"""Record a scripted viewer session through the segmentation systems, replay it headless, compare.

The session (the viewer's scripted input, headless): a click on the sphere, a negative click on
the box, pick + propagate; next training view, a new object, two clicks and an undo, propagate;
then the camera orbits (the path of the video).
"""

import json
import shutil
import time

import imageio.v3 as iio
import numpy as np
import pytest

from components.messages import RenameObjectRequested
from components.resources import MaskGrid, SegmentationSettings, ViewCache
from engine.field.checkpoint import save_field
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from main import main
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, recording_plugin, start_recording, stop_recording
from systems.record.replayer import replay_active, run_replay
from systems.record.session import continue_recording, headless_replay_app
from systems.sam.gt import GtSegmenter
from systems.viewer.plugin import build_viewer
from systems.viewer.run import stop_workers

VIEWS = (2, 5, 9, 14, 20)
ENTRIES = {}   # the recording's view entries (deterministic per view): replays reuse them to save time


def _replay(recording, scene, field, truth):
    app, replay = headless_replay_app(recording, scene, field, GtSegmenter(truth.instance_dir()))
    app.resource(ViewCache).entries.update(ENTRIES)
    return app, run_replay(app, replay)


def _pixel(truth, view, k):
    """[x, y] centre-most pixel of object k (1-based) in a view."""
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return [float(xs[i]) + 0.5, float(ys[i]) + 0.5]


def run_script(app, seconds: float = 300.0) -> int:
    """Run a scripted viewer App until its script quits (a wall-clock bound, not a frame count: the
    answers come from the background worker, however many frames that takes); returns the frames."""
    deadline = time.perf_counter() + seconds
    frames = app.run(until=lambda _: time.perf_counter() > deadline)
    stop_workers(app)
    return frames


def _viewer(scene, field, truth, script=None):
    app = build_viewer(scene, field, GtSegmenter(truth.instance_dir()), H=scene.H, W=scene.W, gl=False,
                       ui=False, script=script, settings=SegmentationSettings(views=VIEWS), fixed_dt=1 / 30)
    recording_plugin(app.schedule)
    return app


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """(scene, field, truth, recording path, field path, the recording App's votes)."""
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    folder = tmp_path_factory.mktemp("session")
    field_path = folder / "field.pt"
    save_field(field_path, field, scene_hash=scene.content_hash())
    script = [{"click": _pixel(truth, 1, 1)}, {"wait": "segmented"},
              {"click": _pixel(truth, 1, 2), "mods": ["shift"]}, {"wait": "segmented"},
              {"key": "1"}, {"wait": "segmented"},
              {"key": "RIGHT_BRACKET"}, {"key": "N"}, {"click": _pixel(truth, 2, 3)},
              {"click": _pixel(truth, 2, 4)}, {"key": "Z"}, {"wait": "segmented"}, {"key": "1"},
              {"wait": "segmented"}, {"drag": [30, 0], "frames": 6}, {"quit": True, "after": 8}]
    app = _viewer(scene, field, truth, script)
    path = folder / "session.jsonl"
    start_recording(app, RecordingSettings(path, camera_hz=1e6, field_path=str(field_path)))
    run_script(app)
    stop_recording(app)
    ENTRIES.update(app.resource(ViewCache).entries)
    return scene, field, truth, path, field_path, app.resource(MaskGrid).votes.copy()


def _kinds(path):
    return [(e.kind, type(e.data).__name__) for e in read_recording(path).events]


def test_the_session_is_recorded_with_two_objects_an_undo_and_a_negative_click(session):
    *_, path, field_path, votes = session
    recording = read_recording(path)
    kinds = _kinds(path)
    assert recording.stop is None
    assert ("message", "UndoRequested") in kinds and kinds.count(("message", "ObjectCreated")) == 2
    assert [e.data.label for e in recording.events if type(e.data).__name__ == "PromptAdded"] == [1, 0, 1, 1]
    assert kinds.count(("message", "PropagationFinished")) == 2 and kinds.count(("grids", "dict")) == 3
    assert kinds.count(("camera", "dict")) >= 4
    assert recording.header["segmenter"]["name"] == "gt" and recording.header["field"]["path"] == str(field_path)
    assert votes.shape[0] == 2 and ((votes > 0).sum(axis=(1, 2, 3)) > 50).all()


def test_a_replayed_session_gives_the_same_grids(session):
    scene, field, truth, path, _, votes = session
    app, replay = _replay(read_recording(path), scene, field, truth)
    assert replay.problems == [] and replay.checks == 3
    assert app.resource(MaskGrid).votes.tobytes() == votes.tobytes()


def test_a_different_grid_is_reported_naming_the_object(session, tmp_path):
    scene, field, truth, path, *_ = session
    lines = path.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["data"]["objects"][1]["sha256"] = "0" * 64
    (tmp_path / "tampered.jsonl").write_text("".join(lines[:-1]) + json.dumps(last) + "\n")
    _, replay = _replay(read_recording(tmp_path / "tampered.jsonl"), scene, field, truth)
    assert replay.checks == 2 and len(replay.problems) == 1
    assert f"line {len(lines)}" in replay.problems[0] and "object 2 'object 2': mask grid differs" in replay.problems[0]


def test_on_another_device_grids_are_checked_by_their_voxels_inside(session, tmp_path):
    scene, field, truth, path, *_ = session
    assert read_recording(path).header["device"] == "cpu"
    lines = path.read_text().splitlines(keepends=True)
    header, last = json.loads(lines[0]), json.loads(lines[-1])
    header["device"] = "cuda"                                  # as if recorded on a GPU
    last["data"]["objects"][0]["sha256"] = "0" * 64            # rounding: other bits, same voxels
    (tmp_path / "gpu.jsonl").write_text(json.dumps(header) + "\n" + "".join(lines[1:-1]) + json.dumps(last) + "\n")
    _, replay = _replay(read_recording(tmp_path / "gpu.jsonl"), scene, field, truth)
    assert not replay.exact and replay.problems == [] and replay.checks == 3
    last["data"]["objects"][0]["inside"] += 100                # more than rounding can flip
    (tmp_path / "gpu.jsonl").write_text(json.dumps(header) + "\n" + "".join(lines[1:-1]) + json.dumps(last) + "\n")
    _, replay = _replay(read_recording(tmp_path / "gpu.jsonl"), scene, field, truth)
    assert len(replay.problems) == 1 and "object 1 'object 1': mask grid differs" in replay.problems[0]


def test_the_replay_command_writes_the_grid_the_masks_and_a_video(session, tmp_path, capsys):
    scene, *_, path, _, votes = session
    out = tmp_path / "out"
    assert main(["replay", str(path), "--out", str(out), "--video", str(out / "path.gif"),
                 "--video-size", "48", "--views", "0,view_001,2"]) == 0
    assert "identical: 3 recorded grid checks match" in capsys.readouterr().out
    with np.load(out / "mask_grid.npz") as grid:
        assert grid["votes"].tobytes() == votes.tobytes() and list(grid["names"]) == ["object 1", "object 2"]
        assert grid["colors"].shape == (2, 3) and str(grid["scene_hash"]) == scene.content_hash()
    masks = sorted(out.glob("masks/*.png"))
    assert [m.stem for m in masks] == [scene.view_names[v] for v in (0, 1, 2)]
    assert set(np.unique(np.concatenate([iio.imread(m).ravel() for m in masks]))) <= {0, 1, 2}
    frames = iio.imread(out / "path.gif", index=None)
    assert frames.shape[0] == _kinds(path).count(("camera", "dict")) and frames.shape[1:3] == (48, 48)


def test_truncated_recordings_replay_up_to_the_last_whole_event(session, tmp_path, capsys):
    scene, field, truth, path, *_ = session
    raw = path.read_bytes()
    starts = [i + 1 for i, b in enumerate(raw[:-1]) if b == ord("\n")]
    cut_file = tmp_path / "cut.jsonl"
    for cut in range(starts[-3], len(raw)):                           # parse level, every byte
        cut_file.write_bytes(raw[:cut])
        recording = read_recording(cut_file)
        assert recording.end_offset == max(s for s in starts if s <= cut)
        assert (recording.stop is None) == (cut in starts)
    finished = [i for i, line in enumerate(raw.splitlines()) if b"PropagationFinished" in line]
    middle = (starts[finished[0]] + starts[finished[1] - 1]) // 2 + 7   # inside the second propagation
    cut_file.write_bytes(raw[:middle])
    recording = read_recording(cut_file)
    _, replay = _replay(recording, scene, field, truth)
    assert replay.problems == [] and replay.checks == 1
    assert main(["replay", str(cut_file), "--out", str(tmp_path / "out"), "--views", "1"]) == 0
    err = capsys.readouterr().err
    assert f"stopped at line {recording.stop.line} (byte {recording.stop.offset})" in err


def test_a_newer_version_or_another_scene_is_refused_with_the_override(session, tmp_path, capsys):
    *_, path, _, _ = session
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    for name, change, expected in (("newer", {"version": 99}, "version 99"),
                                   ("other", {"scene": {"name": "builtin-32", "hash": "x"}}, "hash x")):
        (tmp_path / name).write_text(json.dumps({**header, **change}) + "\n" + "".join(lines[1:]))
        assert main(["replay", str(tmp_path / name), "--scene", "builtin-64", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0] and "--force" in err[0]


def test_a_continued_session_keeps_recording_into_the_same_file(session, tmp_path):
    scene, field, truth, path, _, votes = session
    copy = tmp_path / "continued.jsonl"
    shutil.copy(path, copy)
    copy.write_bytes(copy.read_bytes() + b'{"n": 99, "fra')            # a crash mid-line
    app = _viewer(scene, field, truth)
    app.resource(ViewCache).entries.update(ENTRIES)
    replay, notices = continue_recording(app, RecordingSettings(copy))
    assert "moved to" in notices[-1]
    app.run(until=lambda a: not replay_active(a))
    assert replay.problems == [] and app.resource(MaskGrid).votes.tobytes() == votes.tobytes()
    app.send(RenameObjectRequested(1, "sphere"))
    app.run(max_frames=2)
    stop_recording(app)
    kinds = _kinds(copy)
    assert ("resumed", "dict") in kinds and kinds[-3:] == [("message", "RenameObjectRequested"),
                                                           ("message", "ObjectRenamed"), ("grids", "dict")]
    _, replay = _replay(read_recording(copy), scene, field, truth)
    assert replay.problems == [] and replay.checks == 4
