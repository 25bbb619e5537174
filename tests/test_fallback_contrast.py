"""The fallback's click on a desaturated photo (issue 12, spinnerf-box): a colour cut set by the view's
own contrast to the click, and colour background seeds only where a whole disk is beyond the cut."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from systems.inverse.ops import mask_iou
from systems.sam import make_segmenter
from systems.sam.fallback import FallbackConfig, FallbackSegmenter, wholly_beyond

H, W = 96, 128


def _cardboard_box(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cardboard box seen from above: a lit top and a shaded front face (the same colour at 55% of
    the light: a lightness edge between them, no chromaticity one), on grey-brown gravel (left) and a
    blue-grey bench (right), through a lens's blur. The squared rg-chromaticity distances of gravel
    and bench to the cardboard, about 0.0025 and 0.006, lie under every fixed colour cut (0.01 and
    up): only the view's own contrast tells them apart. Image [H, W, 3] uint8, box, front face."""
    yy, xx = np.mgrid[0:H, 0:W]
    top = (abs(xx - 64) <= 24) & (yy >= 22) & (yy < 48)
    front = (abs(xx - 64) <= 24) & (yy >= 48) & (yy < 70)
    image = np.where((xx < 64)[..., None], [130, 125, 118], [150, 155, 165]).astype(np.float32)
    image[top] = (200, 170, 130)
    image[front] = np.array([200, 170, 130]) * 0.55
    image = ndimage.gaussian_filter(image, (1.0, 1.0, 0))          # a lens's blur: edges over ~2 px
    image += np.random.default_rng(seed).normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), top | front, front


def test_a_click_on_a_desaturated_box_keeps_its_shaded_face():
    image, box, front = _cardboard_box()
    seg = make_segmenter("fallback")
    seg.set_view(image)
    click = np.array([[64.0, 34.0]], np.float32)                    # on the lit top
    single = seg.predict(points=click, multimask=False).masks[0]
    assert mask_iou(single, box) >= 0.9
    assert (single & front).sum() >= 0.9 * front.sum()
    multi = seg.predict(points=click, multimask=True)
    assert mask_iou(multi.masks[int(np.argmax(multi.scores))], single) == 1.0


def test_a_region_beyond_the_cut_seeds_background_a_speck_does_not():
    dist = np.zeros((12, 12), np.float32)
    dist[2:4, 2:4] = 1.0                   # a 2x2 speck (a highlight): no disk of radius 1 fits in it
    dist[5:10, 5:10] = 1.0                 # a 5x5 region: its 3x3 inside holds whole disks
    beyond = wholly_beyond(dist, 0.5, 1.0)
    assert not beyond[2:4, 2:4].any()
    assert beyond[6:9, 6:9].all() and beyond.sum() == 9
    # the image's outside counts as beyond: a region along the border keeps its border pixels
    edge = np.zeros((6, 6), np.float32)
    edge[:, :2] = 1.0
    assert wholly_beyond(edge, 0.5, 1.0)[:, 0].all()


def test_a_grey_photo_gets_no_contrast_cut():
    """A light grey disc on a dark grey wall: the chromaticity of grey pixels is the photo's noise
    (larger on the dark wall), so a cut set by the view's contrast would carve that noise; the view
    answers as it would without the contrast cut."""
    yy, xx = np.mgrid[0:H, 0:W]
    disc = (xx - 64) ** 2 + (yy - 48) ** 2 <= 22 ** 2
    image = np.where(disc[..., None], 170.0, 90.0) + np.random.default_rng(0).normal(0, 4, (H, W, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    click = np.array([[64.0, 48.0]], np.float32)
    with_cut, without = make_segmenter("fallback"), FallbackSegmenter(FallbackConfig(contrast_cut=0.0))
    for seg in (with_cut, without):
        seg.set_view(image)
    a, b = with_cut.predict(points=click, multimask=True), without.predict(points=click, multimask=True)
    assert np.array_equal(a.masks, b.masks) and np.allclose(a.scores, b.scores)
