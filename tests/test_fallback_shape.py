"""The fallback's shape candidate (issue 12, one click on a real capture): what the rendered depth's
edges alone enclose around the click, kept when it is more stable than the colour candidates (an
embossed object whose grooves cut the colour walk short), left aside when the depth says nothing."""

from __future__ import annotations

import numpy as np

from systems.inverse.ops import mask_iou
from systems.sam import make_segmenter
from systems.sam.fallback import MAX_CANDIDATES

H, W = 96, 128
YY, XX = np.mgrid[0:H, 0:W] + 0.5
CLICK = np.array([[52.0, 36.0]], np.float32)


def _grooved_disc(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A gold disc ridged by dark grooves every 4 px (strong colour edges across the whole object),
    clicked off its centre, on a grey-brown table of a nearby hue: image [H, W, 3] uint8, disc [H, W]."""
    disc = (XX - 64) ** 2 + (YY - 48) ** 2 <= 32 ** 2
    groove = (YY.astype(int) % 4) == 0
    gold = np.where(groove[..., None], [70, 55, 20], [215, 170, 60]).astype(np.float32)
    table = np.broadcast_to(np.array([150, 130, 100], np.float32), (H, W, 3))
    image = np.where(disc[..., None], gold, table) + np.random.default_rng(seed).normal(0, 4, (H, W, 3))
    return np.clip(image, 0, 255).astype(np.uint8), disc


def _kept(result) -> np.ndarray:
    return result.masks[int(np.argmax(result.scores))]


def test_a_click_on_a_grooved_object_that_stands_out_in_depth_keeps_the_whole_object():
    image, disc = _grooved_disc()
    depth = np.where(disc, 2.0 + 0.003 * XX, 3.0 + 0.01 * YY).astype(np.float32)
    seg = make_segmenter("fallback")
    seg.set_view(image)                                  # colour alone: the grooves stop the walk
    assert mask_iou(_kept(seg.predict(points=CLICK, multimask=True)), disc) < 0.85
    seg.set_view(image, depth=depth)
    multi = seg.predict(points=CLICK, multimask=True)
    assert 2 <= len(multi.masks) <= MAX_CANDIDATES
    assert mask_iou(_kept(multi), disc) >= 0.9
    single = seg.predict(points=CLICK, multimask=False)  # one mask: the most stable candidate
    assert single.masks.shape == (1, H, W) and mask_iou(single.masks[0], _kept(multi)) == 1.0


def test_a_depth_without_edges_leaves_the_colour_candidate_in_charge():
    """A flat object (a printed disc on a board: one depth plane), red on blue: the depth encloses
    nothing, so its shape candidate is unstable and the colour walk's mask is kept."""
    disc = (XX - 64) ** 2 + (YY - 48) ** 2 <= 24 ** 2
    image = np.where(disc[..., None], [200, 40, 30], [40, 70, 190]).astype(np.float32)
    image = np.clip(image + np.random.default_rng(1).normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    depth = (4.0 + 0.01 * YY + np.random.default_rng(2).normal(0, 0.005, (H, W))).astype(np.float32)
    seg = make_segmenter("fallback")
    seg.set_view(image, depth=depth)
    assert mask_iou(_kept(seg.predict(points=np.array([[64.0, 48.0]], np.float32), multimask=True)), disc) >= 0.9
