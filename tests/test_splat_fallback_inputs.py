"""The fallback segmenter gets on splats what it gets on voxels (issue 19): the built-in scene as
Gaussians (builtin-gs) and as an exact voxel field hand it the same photo, a depth that agrees on the
objects with the backdrop behind them, and, after the same masks are lifted, the same rendered prior
(systems/sam/prior.py), although a splat pixel's matrix holds only ~80% of its weight (the Gaussians'
faint tails and deep layers fall under the entry cutoff); so its masks agree, and its propagation
scores near the voxels' (it did not while the prior read a view's "no" as known background)."""

import numpy as np
import pytest
import torch

from components.camera import Camera
from engine.field.fixtures import exact_builtin_field
from engine.scenes.builtin import builtin_scene, builtin_truth
from engine.splats.scene import load_splat_scene
from systems.inverse.ops import accumulate_votes, mask_iou, view_votes
from systems.inverse.representation import as_frozen_scene
from systems.inverse.splats import open_splat_model
from systems.sam.fallback import FallbackSegmenter
from systems.sam.prior import rendered_prior
from systems.self_prompt.ops import select_self_prompts

SIZE = 64
BOX = 2                      # the built-in box: the object the fallback used to lose on splats
LIFTED = (15, 27)            # views whose exact masks are lifted (the first with lambda 5, as a click's)
CHECKED = (3, 40, 46)        # propagated views the prior and the fallback are compared on
CUTOFFS = {"weight_cutoff": 0.01, "min_entry": 0.001}     # SegmentationSettings' defaults


@pytest.fixture(scope="module")
def scenes():
    torch.set_num_threads(2)
    scene, truth = builtin_scene(SIZE), builtin_truth(SIZE)
    splats = load_splat_scene(f"builtin-gs-{SIZE}")
    gaussians, _ = open_splat_model(splats, None)
    voxels = as_frozen_scene(exact_builtin_field(scene, truth, 48))
    return scene, truth, splats.scene, {"splats": gaussians, "voxels": voxels}


def _lifted(representation, scene, truth):
    """votes, counts [1, *layout] of the box lifted from the LIFTED views' exact masks."""
    votes = np.zeros((1, *representation.layout.shape), np.float32)
    counts = np.zeros_like(votes)
    for i, v in enumerate(LIFTED):
        weights = representation.view_samples(Camera.of_view(scene, v), **CUTOFFS, color=False).weights
        accumulate_votes(votes, counts, weights,
                         view_votes(weights, truth.instance_masks[v] == BOX, 0, 1, 5.0 if i == 0 else 1.0))
    return votes, counts


def test_the_splat_scene_shows_the_fallback_the_built_in_photos_over_its_background(scenes):
    scene, _, splat_scene, models = scenes
    assert np.array_equal(splat_scene.images, scene.images)
    assert models["splats"].background == tuple(scene.background)


def test_splat_depth_agrees_with_the_voxels_on_the_objects_and_puts_the_backdrop_behind_them(scenes):
    scene, truth, _, models = scenes
    for v in CHECKED:
        objects, photo = truth.instance_masks[v] > 0, scene.images[v].astype(int)
        depth = {name: m.view_samples(Camera.of_view(scene, v), **CUTOFFS, color=False).depth
                 for name, m in models.items()}
        relative = np.abs(depth["splats"] - depth["voxels"])[objects] / depth["voxels"][objects]
        assert np.median(relative) < 0.02
        backdrop = (np.abs(photo - np.array(scene.background) * 255).sum(-1) < 3) & ~objects   # the sky
        assert backdrop.sum() > 50
        assert np.median(depth["splats"][backdrop]) > depth["splats"][objects].max()


def test_the_prior_and_the_fallbacks_mask_on_splats_match_those_on_voxels(scenes):
    scene, truth, _, models = scenes
    lifted = {name: _lifted(m, scene, truth) for name, m in models.items()}
    for v in CHECKED:
        exact = truth.instance_masks[v] == BOX
        camera = Camera.of_view(scene, v)
        priors, masks, held = {}, {}, {}
        for name, model in models.items():
            samples = model.view_samples(camera, **CUTOFFS, color=False)
            votes, counts = lifted[name]
            priors[name] = rendered_prior(samples.weights, votes[0], counts[0])
            segmenter = FallbackSegmenter()
            segmenter.set_view(scene.images[v], depth=samples.depth)
            points = select_self_prompts(priors[name], samples.depth, 3).astype(np.float32)
            masks[name] = segmenter.predict(points=points, labels=np.ones(len(points), np.int64),
                                            mask=priors[name]).masks[0]
            held[name] = samples.weights.pixel_weight.reshape(exact.shape)[exact].mean()
        assert held["splats"] < 0.9 < held["voxels"]  # the case: weight under the cutoff is not in the matrix
        assert priors["splats"][exact].mean() >= 0.8  # ... and does not read as background
        assert mask_iou(priors["splats"] > 0.5, priors["voxels"] > 0.5) >= 0.7
        assert mask_iou(masks["splats"], masks["voxels"]) >= 0.85
        assert mask_iou(masks["splats"], exact) >= 0.85


def test_the_fallbacks_propagation_on_splats_scores_near_the_voxels(tmp_path, monkeypatch):
    # the cylinder from view_007 at 64 px: 86.9 held-out mIoU on builtin-gs (89.9 on the exact voxel
    # field at 48 voxels); 59.8 with the prior that read one view's "no" as known background
    from PIL import Image

    import main as cli

    monkeypatch.setenv("SA3D_VIEW_CACHE_MB", "0")
    truth, out = builtin_truth(SIZE), tmp_path / "cylinder"
    code = cli.main(["segment", f"builtin-gs-{SIZE}", "--view", "view_007", "--point", "34,31", "--segmenter",
                     "fallback", "--out", str(out)])
    assert code == 0
    scene = builtin_scene(SIZE)
    ious = [mask_iou(np.asarray(Image.open(out / "masks" / f"{scene.view_names[i]}.png")) > 0,
                     truth.instance_masks[i] == 3) for i in scene.test_ids]
    assert np.mean(ious) >= 0.8
