"""The segmentation systems in a headless App: prompted view, bounded propagation, objects."""

import esper
import numpy as np
import pytest

from components.camera import Camera
from components.messages import (
    CandidatesReady,
    ClearRequested,
    DeleteObjectRequested,
    NewObjectRequested,
    ObjectCreated,
    ObjectRecolored,
    PromptAdded,
    PromptRejected,
    PropagationFinished,
    PropagationProgressed,
    PropagationRequested,
    RecolorObjectRequested,
    UndoRequested,
)
from components.resources import MaskGrid, SegmentationSettings
from components.segmentation import Propagation, SegObject
from engine.app import App
from engine.field.fixtures import exact_builtin_field
from engine.scenes.builtin import builtin_scene, builtin_truth
from engine.schedule import Schedule
from systems.inverse.ops import mask_iou, render_mask
from systems.sam.gt import GtSegmenter
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation
from systems.segmentation.views import scene_view_entry

SIZE, VOXELS = 48, 40


@pytest.fixture(scope="module")
def world():
    scene, truth = builtin_scene(SIZE), builtin_truth(SIZE)
    return scene, truth, exact_builtin_field(scene, truth, VOXELS)


def _app(world, k, views):
    scene, truth, field = world
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, GtSegmenter(truth.mask_dir(truth.object_names[k - 1])),
                        SegmentationSettings(views=tuple(views)))
    return app


def _click(scene, truth, view, k):
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return PromptAdded(Camera.of_view(scene, view), xs[i] + 0.5, ys[i] + 0.5, 1, view)


def _test_iou(app, scene, truth, k, channel=0):
    votes = app.resource(MaskGrid).votes[channel:channel + 1]
    ious = [mask_iou(render_mask(scene_view_entry(app, v).weights, votes)[0] > 0,
                     truth.instance_masks[v] == k) for v in scene.test_ids[1:4]]
    return float(np.mean(ious))


def test_prompt_lift_then_one_propagation_view_per_frame_improves_the_mask(world):
    scene, truth, _ = world
    k, prompted = 1, scene.train_ids[0]
    views = list(scene.train_ids[1:7])
    app = _app(world, k, views)
    app.send(_click(scene, truth, prompted, k))
    app.step()
    assert [m.picked for m in app.messages.read(CandidatesReady, "test")] != []
    assert app.resource(MaskGrid).votes.shape[0] == 1                 # the click created an object
    lifted_iou = _test_iou(app, scene, truth, k)
    app.send(PropagationRequested())
    queue_lengths, progressed = [], []
    while not app.messages.read(PropagationFinished, "test") and app.frame < 40:
        app.step()
        progressed += app.messages.read(PropagationProgressed, "test")
        with app.active():
            queue_lengths += [len(p.queue) for _, p in esper.get_component(Propagation)]
    assert queue_lengths == list(range(len(views) - 1, -1, -1))     # one view per frame
    assert [m.view for m in progressed] == views and sum(m.accepted for m in progressed) >= len(views) - 1, \
        [(m.view, m.iou) for m in progressed]
    assert _test_iou(app, scene, truth, k) > lifted_iou + 0.05


class BoxedGt(GtSegmenter):
    """A gt segmenter that asks for the rendered-mask box and records what predict received."""
    rendered_box = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def predict(self, **prompt):
        self.calls.append(prompt)
        return super().predict(**prompt)


def test_a_segmenter_with_rendered_box_gets_a_box_around_its_self_prompts(world):
    scene, truth, field = world
    segmenter = BoxedGt(truth.mask_dir(truth.object_names[0]))
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, segmenter, SegmentationSettings(views=tuple(scene.train_ids[1:4])))
    app.send(_click(scene, truth, scene.train_ids[0], 1))
    app.send(PropagationRequested())
    while not app.messages.read(PropagationFinished, "test") and app.frame < 40:
        app.step()
    prompted, *propagated = segmenter.calls
    assert prompted["box"] is None and len(propagated) == 3
    for call in propagated:
        x0, y0, x1, y1 = call["box"]
        xs, ys = call["points"][:, 0], call["points"][:, 1]
        assert 0 <= x0 <= xs.min() and xs.max() <= x1 <= scene.W and 0 <= y0 <= ys.min() and ys.max() <= y1 <= scene.H


def test_bad_prompts_are_rejected_and_every_view_rejected_says_why(world):
    scene, truth, _ = world
    app = _app(world, 1, scene.train_ids[1:4])
    app.send(PromptAdded(Camera.of_view(scene, 1), SIZE + 3.0, 2.0, 1, 1))
    app.send(PropagationRequested())
    app.step()
    reasons = [m.reason for m in app.messages.read(PromptRejected, "test")]
    assert any("inside the 48x48 image" in r for r in reasons) and any("nothing to propagate" in r for r in reasons)
    # A gate nobody passes: every view rejected, with the best IoU in the message.
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, world[2], GtSegmenter(truth.mask_dir(truth.object_names[2])),
                        SegmentationSettings(views=tuple(scene.train_ids[1:4]), iou_gate=1.01))
    app.send(_click(scene, truth, scene.train_ids[0], 3))
    app.send(PropagationRequested())
    finished = []
    for _ in range(6):
        app.step()
        finished += app.messages.read(PropagationFinished, "test")
    assert finished and finished[0].accepted == 0
    assert finished[0].message.startswith("every view was rejected") and "gate 1.01" in finished[0].message


def test_objects_have_their_own_channels_undo_clear_and_delete(world):
    scene, truth, _ = world
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, world[2], GtSegmenter(truth.instance_dir()),
                        SegmentationSettings(views=tuple(scene.train_ids[1:3])))
    app.send(NewObjectRequested("first"))
    app.send(_click(scene, truth, scene.train_ids[0], 1))
    app.step()
    created = app.messages.read(ObjectCreated, "test")
    app.send(NewObjectRequested("second"))
    app.step()
    created += app.messages.read(ObjectCreated, "test")
    assert [(c.name, c.channel) for c in created] == [("first", 0), ("second", 1)]
    grid = app.resource(MaskGrid)
    assert grid.votes.shape[0] == 2 and (grid.votes[0] > 0).any() and not (grid.votes[1] > 0).any()
    app.send(_click(scene, truth, scene.train_ids[0], 4))           # goes to "second" (active)
    app.step()
    grid = app.resource(MaskGrid)
    assert (grid.votes[1] > 0).any()
    app.send(UndoRequested())
    app.step()
    assert not (app.resource(MaskGrid).votes[1] > 0).any()
    app.send(RecolorObjectRequested(2, (10, 20, 30)))
    app.send(RecolorObjectRequested(2, (300, 0, 0)))               # not a colour: ignored
    app.send(RecolorObjectRequested(9, (1, 2, 3)))                 # no such object: ignored
    app.step()
    assert app.messages.read(ObjectRecolored, "test") == [ObjectRecolored(2, (10, 20, 30))]
    with app.active():
        assert {o.id: o.color for _, o in esper.get_component(SegObject)}[2] == (10, 20, 30)
    app.send(DeleteObjectRequested(1))
    app.step()
    with app.active():
        names = [(o.name, o.channel) for _, o in esper.get_component(SegObject)]
    assert names == [("second", 0)] and app.resource(MaskGrid).votes.shape[0] == 1
    app.send(ClearRequested())
    app.step()
    assert np.count_nonzero(app.resource(MaskGrid).votes) == 0
