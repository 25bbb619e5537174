"""The viewer's export runs in its background worker (systems/export/system.py): the frame that reads
the request returns before any file is written (the export is held back here by a gate), the files
come with the frame that reads the job's WorkDone, a second request waits in the queue (the panel's work
lines name each export once: running or queued), deleting the
object meanwhile leaves a whole file of the object as it was, closing the viewer writes what is still
queued, and the recorded session (its export's WorkDone included) replays bit for bit."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from components.messages import DeleteObjectRequested, ObjectDeleted, WorkDone
from components.resources import MaskGrid, SegmentationSettings, ViewCache
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from systems.export import system as export_system
from systems.export.export import ExportError
from systems.export.system import ExportFinished, export_lines
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, start_recording, stop_recording
from systems.record.replayer import run_replay
from systems.record.session import headless_replay_app
from systems.sam.gt import GtSegmenter
from systems.segmentation.work import work_in_flight, work_lines
from systems.ui.panel import busy_lines
from systems.viewer.plugin import build_viewer
from systems.viewer.run import stop_workers
from systems.viewer.script import ScriptPlayer
from systems.viewer.session import SessionFiles, export_request
from tests.test_record_session import _pixel

VIEWS = (2, 5, 9)
WAIT_S = 120.0                  # wall-clock bound on anything awaited (a loaded machine is slow)


@pytest.fixture(scope="module")
def inputs():
    scene, field = trained_builtin_field()
    return scene, field, builtin_truth(scene.H)


@pytest.fixture
def gate(monkeypatch):
    """Exports wait for gate.set() before they start (in the worker); an export to a file named
    bad.* raises the ExportError a real one would."""
    gate, real = threading.Event(), export_system.export_object

    def held(grid, field, out, *args, **kwargs):
        assert gate.wait(WAIT_S)
        if Path(out).stem == "bad":
            raise ExportError("object 'object 1' carves to nothing")
        return real(grid, field, out, *args, **kwargs)

    monkeypatch.setattr(export_system, "export_object", held)
    return gate


def _segmented(inputs, recording: Path | None = None, field_path: Path | None = None):
    """A viewer (no GL) whose object 1 was clicked in view 0 and lifted (recorded to `recording`)."""
    scene, field, truth = inputs
    script = [{"click": _pixel(truth, 0, 1)}, {"wait": "segmented"}, {"key": "1"}, {"wait": "segmented"}]
    app = build_viewer(scene, field, GtSegmenter(truth.instance_dir()), H=scene.H, W=scene.W, gl=False, ui=False,
                       script=script, settings=SegmentationSettings(views=VIEWS), fixed_dt=1 / 30, recording=True,
                       files=SessionFiles(field_path=str(field_path) if field_path else None))
    if recording is not None:
        start_recording(app, RecordingSettings(recording, field_path=str(field_path)))
    player, deadline = app.resource(ScriptPlayer), time.perf_counter() + WAIT_S
    app.run(until=lambda _: player.finished or time.perf_counter() > deadline)
    assert player.finished and (app.resource(MaskGrid).votes[0] > 0).sum() > 50
    return app


def _until_finished(app, count: int) -> tuple[list[ExportFinished], list[tuple], int]:
    """Step until `count` ExportFinished came: (them, WorkDone keys seen meanwhile, the frame of each)."""
    finished, work_done, frames, deadline = [], [], [], time.perf_counter() + WAIT_S
    while len(finished) < count and time.perf_counter() < deadline:
        app.step()
        work_done += [(message.key, app.frame) for message in app.messages.read(WorkDone, "test")]
        got = app.messages.read(ExportFinished, "test")
        finished += got
        frames += [app.frame] * len(got)
    return finished, work_done, frames


def test_the_export_runs_in_the_worker_queues_a_second_and_the_session_replays(inputs, gate, tmp_path, field_file):
    scene, field, truth = inputs
    recording = tmp_path / "session.jsonl"
    app = _segmented(inputs, recording, field_file)
    mesh = export_request("mesh (obj)", tmp_path / "out", 1, "object 1")
    grid = export_request("mask grid (npz)", tmp_path / "out", 1, "object 1")
    bad = export_request("mesh (obj)", tmp_path / "out", 1, "bad")
    app.send(mesh)
    for _ in range(5):                                    # the first frame reads it, none waits for it
        app.step()
    assert not app.messages.read(ExportFinished, "test") and not Path(mesh.out).exists()
    assert export_lines(app) == [f"exporting {mesh.out} ..."] and work_in_flight(app)
    app.send(grid)
    app.send(bad)
    app.step()
    assert export_lines(app)[1:] == [f"queued: export to {grid.out}", f"queued: export to {bad.out}"]
    lines = busy_lines(app)                               # the panel lists each export once
    assert [sum(request.out in line for line in lines) for request in (mesh, grid, bad)] == [1, 1, 1]

    gate.set()
    finished, work_done, frames = _until_finished(app, 3)
    by_out = dict(zip((f.out for f in finished), zip(finished, frames)))
    assert set(by_out) == {mesh.out, grid.out, bad.out}
    for request in (mesh, grid):                         # each announced by its WorkDone, then used
        done, frame = by_out[request.out]
        assert done.error is None and done.paths == (request.out,)
        key = next(k for k in work_done if k[0][0] == "export" and k[0][2] == request.out)
        assert key[1] <= frame
    assert "carves to nothing" in by_out[bad.out][0].error
    assert trimesh.load(mesh.out, process=False).is_watertight
    assert np.load(grid.out)["names"].tolist() == ["object 1"]
    assert export_lines(app) == [] and work_lines(app) == []
    cache = app.resource(ViewCache)                      # the views' weights the export built are kept
    assert set(range(len(scene))) <= set(cache.entries)
    stop_recording(app)
    stop_workers(app)

    events = read_recording(recording).events
    assert any(e.kind == "message" and isinstance(e.data, WorkDone) and e.data.key[0] == "export" for e in events)
    replay_app, replay = headless_replay_app(read_recording(recording), scene, field, GtSegmenter(truth.instance_dir()))
    run_replay(replay_app, replay)
    stop_workers(replay_app)
    assert replay.problems == [] and replay.checks >= 1
    assert replay_app.resource(MaskGrid).votes.tobytes() == app.resource(MaskGrid).votes.tobytes()


def test_deleting_the_object_while_it_exports_leaves_a_whole_file_of_it(inputs, gate, tmp_path):
    app = _segmented(inputs)
    request = export_request("mesh (obj)", tmp_path / "out", 1, "object 1")
    app.send(request)
    app.step()
    app.send(DeleteObjectRequested(1))
    deleted, deadline = [], time.perf_counter() + WAIT_S
    while not deleted and time.perf_counter() < deadline:
        app.step()
        deleted = app.messages.read(ObjectDeleted, "test")
    assert deleted and not (app.resource(MaskGrid).votes > 0).any() and not Path(request.out).exists()
    gate.set()
    finished, _, _ = _until_finished(app, 1)
    stop_workers(app)
    assert finished and finished[0].error is None                 # the object as it was when asked
    assert trimesh.load(request.out, process=False).is_watertight
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [Path(request.out).name]   # no temporaries


def test_closing_the_viewer_writes_the_exports_still_queued(inputs, tmp_path):
    app = _segmented(inputs)
    requests = [export_request(choice, tmp_path / "out", 1, "object 1") for choice in ("mesh (obj)", "mask grid (npz)")]
    for request in requests:
        app.send(request)
    app.step()
    assert export_lines(app)
    stop_workers(app)                                     # the window closed
    assert export_lines(app) == [] and all(Path(r.out).stat().st_size > 100 for r in requests)
