"""Array types per layer: torch where the field renders, numpy on the lifting side, converted at the
edge. One click, from the prompt to the overlay's object ids, crosses the torch/numpy boundary at
most once in each direction (counted by wrapping every conversion torch offers)."""

import numpy as np
import pytest
import torch

from components.camera import Camera
from components.messages import CandidatesReady, PromptAdded
from components.resources import MaskGrid, SegmentationSettings
from engine.app import App
from engine.field.fixtures import exact_builtin_field
from engine.field.frozen_march import warm_up_in_background
from engine.scenes.builtin import builtin_scene, builtin_truth
from engine.schedule import Schedule
from systems.inverse.ops import instance_ids
from systems.render.ops import object_ids
from systems.sam.factory import make_segmenter
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation
from systems.segmentation.views import scene_view_entry

SIZE, VOXELS = 48, 40


class Conversions:
    """Counts numpy -> torch (from_numpy, as_tensor, tensor) and torch -> numpy (Tensor.numpy, which
    np.asarray of a tensor calls too) while installed."""

    def __init__(self, monkeypatch):
        self.to_torch = self.to_numpy = 0
        for name in ("from_numpy", "as_tensor", "tensor"):
            monkeypatch.setattr(torch, name, self._counted(getattr(torch, name), "to_torch"))
        monkeypatch.setattr(torch.Tensor, "numpy", self._counted(torch.Tensor.numpy, "to_numpy"))

    def _counted(self, fn, counter):
        def wrapper(*args, **kwargs):
            setattr(self, counter, getattr(self, counter) + 1)
            return fn(*args, **kwargs)
        return wrapper


@pytest.fixture(scope="module")
def clicked_view():
    """A segmentation App on the exact voxel field, with the prompted view's weights built (once per
    view and field: not part of a click), and a click on the sphere there."""
    scene, truth = builtin_scene(SIZE), builtin_truth(SIZE)
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, exact_builtin_field(scene, truth, VOXELS), make_segmenter("fallback"),
                        SegmentationSettings(views=()))
    view = scene.train_ids[0]
    with app.active():
        scene_view_entry(app, view)
    warm_up_in_background().join()      # the marcher's warm-up thread renders too: not part of a click
    ys, xs = np.nonzero(truth.instance_masks[view] == 1)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return app, PromptAdded(Camera.of_view(scene, view), xs[i] + 0.5, ys[i] + 0.5, 1, view), view


def test_one_click_to_the_overlay_crosses_the_array_boundary_at_most_once_each_way(clicked_view, monkeypatch):
    app, click, view = clicked_view
    counted = Conversions(monkeypatch)
    app.send(click)
    answered = []
    for _ in range(5):
        app.step()
        answered += app.read(CandidatesReady)
    grid = app.resource(MaskGrid)
    ids = object_ids(grid.votes, grid.shape)                                  # what the GL overlay uploads
    with app.active():
        masks = instance_ids(scene_view_entry(app, view).weights, grid.votes)  # what replays and exports draw
    assert answered and (ids > 0).any() and (masks == 1).any()               # the click was lifted and drawn
    assert counted.to_torch <= 1 and counted.to_numpy <= 1


def test_the_counter_sees_conversions(monkeypatch):
    counted = Conversions(monkeypatch)
    np.asarray(torch.from_numpy(np.zeros(3, np.float32)))
    assert (counted.to_torch, counted.to_numpy) == (1, 1)
