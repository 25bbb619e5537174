"""The scene-representation seam: the segmentation systems run on any FrozenScene, not only voxels.

A toy representation stands in for a second one (Gaussians next): the image plane cut into
TILE x TILE-pixel tiles, one primitive per tile, each pixel holding weight 1 on its tile in every
view. Its mask state is one value per tile, and the numbers below are worked out by hand.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from components.camera import Camera
from components.messages import MaskPrompted, PropagationFinished, PropagationRequested
from components.resources import MaskGrid, SceneData, SegmentationSettings
from components.segmentation import Candidates
from engine.app import App
from engine.scenes.builtin import builtin_scene, builtin_truth
from engine.schedule import Schedule
from systems.inverse.ops import coverage_mask, view_weights_from_rows
from systems.inverse.representation import MaskLayout, ViewSamples, as_frozen_scene
from systems.sam.gt import GtSegmenter
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation
from systems.segmentation.views import scene_view_entry

ROOT = Path(__file__).resolve().parents[1]
SIZE, TILE = 48, 4
LAMBDA_FIRST = 5.0    # SegmentationSettings().lambda_first


class TileScene:
    """One primitive per TILE x TILE block of pixels; depth = the pixel's row (self-prompting needs one)."""

    kind, device = "tiles", "cpu"

    def __init__(self, H: int, W: int):
        self.rows, self.cols = -(-H // TILE), -(-W // TILE)
        self.layout = MaskLayout((self.rows * self.cols,), np.array([[-1, -1, -1], [1, 1, 1]], np.float32), "world")
        self.rendered = 0

    def describe(self) -> str:
        return f"{self.rows * self.cols} tiles"

    def tile_ids(self, H: int, W: int) -> np.ndarray:
        ys, xs = np.mgrid[0:H, 0:W]
        return (ys // TILE) * self.cols + xs // TILE                                   # [H, W]

    def view_samples(self, camera, *, weight_cutoff, min_entry, color=True):
        self.rendered += 1
        H, W = camera.H, camera.W
        weights = view_weights_from_rows(np.arange(H * W + 1), self.tile_ids(H, W).reshape(-1),
                                         np.ones(H * W, np.float32), H, W, self.layout.shape)
        depth = np.repeat(np.arange(H, dtype=np.float32)[:, None], W, axis=1)
        return ViewSamples(weights, depth, np.zeros((H, W, 3), np.float32) if color else None)


@pytest.fixture(scope="module")
def tiles_app():
    scene, truth = builtin_scene(SIZE), builtin_truth(SIZE)
    tiles = TileScene(scene.H, scene.W)
    app = App(segmentation_plugin(Schedule()))
    views = tuple(scene.train_ids[1:4])
    insert_segmentation(app, scene, tiles, GtSegmenter(truth.instance_dir()), SegmentationSettings(views=views))
    return app, scene, truth, tiles


def test_a_frozen_scene_passes_through_and_lays_out_the_mask_state(tiles_app):
    app, _, _, tiles = tiles_app
    data = app.resource(SceneData)
    assert data.representation is tiles and as_frozen_scene(tiles) is tiles
    assert app.resource(MaskGrid).shape == (tiles.rows * tiles.cols,)


def test_a_mask_is_lifted_onto_the_tiles_it_covers_by_more_than_lambda_over_one_plus_lambda(tiles_app):
    app, scene, truth, tiles = tiles_app
    view = scene.train_ids[0]
    mask = truth.instance_masks[view] == 1                                             # the sphere
    before = app.version(MaskGrid), app.version(Candidates)
    app.send(MaskPrompted(Camera.of_view(scene, view), mask, view))
    app.step()
    assert app.version(MaskGrid) > before[0] and app.version(Candidates) > before[1]   # stamped by their writers
    votes = app.resource(MaskGrid).votes                                               # [1, N]
    assert tuple(votes.shape) == (1, tiles.rows * tiles.cols)
    # a tile's closed-form vote is (1 + l) * inside - l * pixels: positive iff its share inside > l / (1 + l)
    ids = tiles.tile_ids(scene.H, scene.W)
    inside = np.bincount(ids.reshape(-1), mask.reshape(-1), minlength=votes.shape[1])
    pixels = np.bincount(ids.reshape(-1), minlength=votes.shape[1])
    expected = inside / np.maximum(pixels, 1) > LAMBDA_FIRST / (1 + LAMBDA_FIRST)
    assert expected.any() and np.array_equal(votes[0] > 0, expected)
    # the view's 2D mask is every pixel of those tiles (each pixel's whole weight is on its tile)
    rendered = coverage_mask(scene_view_entry(app, view).weights, votes)[0]
    assert np.array_equal(rendered, expected[ids])


def test_a_propagation_runs_over_every_view_on_the_representation_alone(tiles_app):
    app, scene, _, tiles = tiles_app
    app.send(PropagationRequested())
    finished = []
    for _ in range(40):
        app.step()
        finished += app.read(PropagationFinished)
        if finished:
            break
    assert finished and finished[0].accepted + finished[0].rejected == 3
    assert tiles.rendered == 4        # the prompted view and the three propagated ones, once each


def test_the_segmentation_systems_do_not_import_the_voxel_field():
    """Only the voxel implementation (systems/inverse/frozen.py), the representation adapter and
    the command glue that loads a field file reach engine.field; lifting, self-prompting and the
    segmentation systems do not."""
    folders = ("systems/segmentation", "systems/self_prompt", "systems/inverse")
    allowed = {"systems/inverse/frozen.py", "systems/inverse/representation.py", "systems/segmentation/cli.py"}
    offenders = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine.field") \
                        and rel not in allowed:
                    offenders.append(f"{rel}: {node.module}")
    assert offenders == []
