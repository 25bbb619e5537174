"""The fallback's edges from two cues, each in units of its own grain (issue 12): a textured object
that stands out in depth is one object, whatever the depth of the room behind it."""

from __future__ import annotations

import numpy as np

from systems.inverse.ops import mask_iou
from systems.sam import make_segmenter
from systems.sam.walker import edge_differences, grain, log_depth

H, W = 96, 128
RNG = np.random.default_rng(1)


def test_log_depth_makes_a_step_a_ratio_and_reads_invalid_depth_as_the_farthest():
    depth = np.array([[1.0, 2.0, 4.0, 0.0, np.nan]], np.float32)
    out = log_depth(depth)[..., 0]
    # log 1, log 2, log 4, then the two invalid pixels at the farthest valid depth (log 4)
    assert np.allclose(out, np.log([1.0, 2.0, 4.0, 4.0, 4.0]))
    dh, _ = edge_differences(log_depth(depth * 10.0))           # the same scene ten times larger
    assert np.allclose(dh[0, :2], np.log(2.0) ** 2)              # the same steps
    assert np.allclose(log_depth(np.zeros((2, 2), np.float32)), 0.0)


def test_grain_is_a_multiple_of_the_median_step_never_below_its_floor():
    dh = np.array([[0.0, 1.0, 2.0]])                             # with dv: steps 0, 1, 2, 3, 9
    dv = np.array([[3.0], [9.0]])
    assert grain(dh, dv, 4.0, 0.5) == 8.0                        # median 2, times 4
    assert grain(dh, dv, 4.0, 10.0) == 10.0                      # the floor


def _shades(size: int) -> np.ndarray:
    """[H, W, 1]: random brightness 0.35..1 in size x size blocks (an embossed or grained surface)."""
    cells = RNG.uniform(0.35, 1.0, (H // size + 1, W // size + 1, 1))
    return np.repeat(np.repeat(cells, size, 0), size, 1)[:H, :W]


def test_a_click_on_a_textured_object_that_stands_out_in_depth_gives_the_whole_object():
    """An embossed gold disc on grained wood of nearly its hue, in front of a far room (an
    object-centric capture): colour has edges everywhere and no boundary; depth has one step, at
    the disc's outline, small next to the room's distance (a depth scaled by its range hid it)."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    disc = (xx - 64) ** 2 + (yy - 48) ** 2 <= 30 ** 2
    gold, wood = np.array([210, 165, 60.0]) * _shades(3), np.array([200, 150, 75.0]) * _shades(5)
    image = np.clip(np.where(disc[..., None], gold, wood), 0, 255).astype(np.uint8)
    depth = np.where(disc, 2.0 + 0.004 * xx, np.where(yy < 30, 100.0, 6.0 + 0.02 * yy)).astype(np.float32)
    seg = make_segmenter("fallback")
    seg.set_view(image, depth=depth)
    result = seg.predict(points=np.array([[64.0, 48.0]], np.float32), multimask=True)
    assert mask_iou(result.masks[int(np.argmax(result.scores))], disc) >= 0.9
