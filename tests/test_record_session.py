"""Record a scripted session through the segmentation systems, replay it headless, same grids."""

import numpy as np
import pytest

from components.camera import Camera
from components.messages import (NewObjectRequested, PromptAdded, PropagationFinished, PropagationRequested,
                                 RenameObjectRequested, UndoRequested)
from components.resources import MaskGrid, SegmentationSettings
from engine.app import App
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from engine.schedule import Schedule
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, recording_plugin, start_recording, stop_recording
from systems.record.replayer import run_replay
from systems.record.session import headless_replay_app
from systems.sam.gt import GtSegmenter
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation

VIEWS = (2, 5, 9, 14, 20)


@pytest.fixture(scope="module")
def world():
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    return scene, field, truth


def _pixel(truth, view, k):
    """(x, y) centre-most pixel of object k (1-based) in a view."""
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return xs[i] + 0.5, ys[i] + 0.5


def _click(scene, truth, view, k, label=1):
    x, y = _pixel(truth, view, k)
    return PromptAdded(Camera.of_view(scene, view), x, y, label, view)


def record_session(world, path):
    """Two objects, a negative click, an undo, a rename; each propagation runs to its end."""
    scene, field, truth = world
    app = App(recording_plugin(segmentation_plugin(Schedule())))
    insert_segmentation(app, scene, field, GtSegmenter(truth.instance_dir()), SegmentationSettings(views=VIEWS))
    start_recording(app, RecordingSettings(path))

    def step(*requests, until_finished=False):
        for r in requests:
            app.send(r)
        app.step()
        while until_finished and not app.messages.read(PropagationFinished, "test"):
            app.step()

    step(NewObjectRequested("sphere"))
    step(_click(scene, truth, 1, 1))
    step(_click(scene, truth, 1, 2, label=0))          # a negative click on the box
    step(PropagationRequested(), until_finished=True)
    step(_click(scene, truth, 3, 3))                    # no object named: goes to the active one ...
    step(UndoRequested())                              # ... and is undone
    step(NewObjectRequested())
    step(_click(scene, truth, 3, 3), _click(scene, truth, 3, 2, label=0))
    step(PropagationRequested(), until_finished=True)
    step(RenameObjectRequested(2, "cylinder"))
    step()
    stop_recording(app)
    return app


def test_a_replayed_session_gives_the_same_grids(world, tmp_path):
    scene, field, truth = world
    path = tmp_path / "session.jsonl"
    recorded = record_session(world, path)
    recording = read_recording(path)
    assert recording.stop is None
    app, replay = headless_replay_app(recording, scene, field, GtSegmenter(truth.instance_dir()))
    run_replay(app, replay)
    assert replay.problems == []
    assert replay.checks == 3
    assert app.resource(MaskGrid).votes.numpy().tobytes() == recorded.resource(MaskGrid).votes.numpy().tobytes()
