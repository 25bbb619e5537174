"""The fallback's multimask candidates (issue 16, item 2): distinct masks from tight to loose, or one
mask when the view's edges leave no choice, never three copies of the same mask."""

from __future__ import annotations

import numpy as np

from systems.inverse.ops import mask_iou
from systems.sam import make_segmenter
from systems.sam.fallback import DISTINCT_IOU

H, W = 96, 128


def _three_part_object():
    """An orange block (clicked) joined to an amber and then an ochre one on a blue wall, in a
    photo's grain: whether the other parts belong to the object is the user's call. Squared rg
    chromaticity distances to the orange: amber 0.0125, ochre 0.028 (the colour cuts are
    0.01, 0.025, 0.04)."""
    yy, xx = np.mgrid[0:H, 0:W]
    clicked = (abs(yy - 48) <= 18) & (xx >= 20) & (xx < 50)
    other = (abs(yy - 48) <= 18) & (xx >= 50) & (xx < 100)
    image = np.full((H, W, 3), (60, 90, 170), np.float32)
    image[clicked] = (200, 100, 50)
    image[other & (xx < 75)] = (170, 130, 50)
    image[other & (xx >= 75)] = (155, 145, 50)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    return noisy, clicked, other


def test_an_ambiguous_click_offers_distinct_candidates_from_the_part_to_the_whole():
    image, clicked, other = _three_part_object()
    seg = make_segmenter("fallback")
    seg.set_view(image)
    result = seg.predict(points=np.array([[35, 48]], np.float32), multimask=True)
    masks = list(result.masks)
    assert len(masks) >= 2 and len(result.scores) == len(masks)
    assert all(mask_iou(a, b) < DISTINCT_IOU for i, a in enumerate(masks) for b in masks[i + 1:])
    areas = [int(m.sum()) for m in masks]
    assert areas == sorted(areas)                                   # tight first, loose last
    assert mask_iou(masks[0], clicked) >= 0.9
    assert mask_iou(masks[-1], clicked | other) >= 0.9


def test_a_clear_object_gives_one_candidate_not_three_copies():
    yy, xx = np.mgrid[0:H, 0:W]
    disc = (xx - 64) ** 2 + (yy - 48) ** 2 <= 20 ** 2
    image = np.where(disc[..., None], [210, 40, 30], [90, 100, 110]).astype(np.uint8)
    depth = np.where(disc, 2.0, 5.0).astype(np.float32)
    seg = make_segmenter("fallback")
    seg.set_view(image, depth=depth)
    for prompt in ({"points": np.array([[64, 48]], np.float32)}, {"mask": disc.astype(np.float32) * 0.9}):
        result = seg.predict(multimask=True, **prompt)
        assert result.masks.shape == (1, H, W) and mask_iou(result.masks[0], disc) >= 0.95, prompt
