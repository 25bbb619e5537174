"""Cross-view self-prompting on tiny hand-checked images."""

import numpy as np

from systems.inverse.ops import binarise_rendered
from systems.self_prompt.ops import (
    normalised_depth,
    normalised_distance,
    prompt_box,
    prompt_radius,
    select_self_prompts,
)


def _two_blobs(far_value):
    """9 x 9 mask: 1.0 at (x=1, y=1), 0.9 at (x=2, y=1), `far_value` at (x=7, y=7).

    area = 1.9 + far_value < 3 -> sqrt(area / pi) < 1 -> r = max(0 // 2, 2) = 2: the square
    x, y in 0..3 around p0 = (1, 1) is excluded, which removes (2, 1).
    With constant depth, G = (row / 9, col / 9, 0); from p0 the farthest pixel is (8, 8) at
    sqrt(2) * 7 / 9 and (7, 7) is at sqrt(2) * 6 / 9, so its normalised distance is 6 / 7 and its
    decayed score is far_value - 6/7 * M(p0) = far_value - 0.857.
    """
    M = np.zeros((9, 9), np.float32)
    M[1, 1], M[1, 2], M[7, 7] = 1.0, 0.9, far_value
    return M, np.ones((9, 9), np.float32)


def test_second_prompt_is_taken_when_its_decayed_score_stays_positive():
    M, depth = _two_blobs(0.95)                    # 0.95 - 0.857 = +0.093 > 0
    assert prompt_radius(M) == 2
    assert select_self_prompts(M, depth, 3).tolist() == [[1, 1], [7, 7]]   # third: all scores < 0


def test_prompting_stops_when_the_decayed_score_is_not_positive():
    M, depth = _two_blobs(0.8)                     # 0.8 - 0.857 < 0
    assert select_self_prompts(M, depth, 3).tolist() == [[1, 1]]


def test_no_prompt_for_a_mask_without_positive_pixels_and_num_prompts_caps():
    assert select_self_prompts(-np.ones((5, 5), np.float32), np.ones((5, 5), np.float32), 3).shape == (0, 2)
    M, depth = _two_blobs(0.95)
    assert select_self_prompts(M, depth, 1).tolist() == [[1, 1]]


def test_depth_makes_a_pixel_at_the_chosen_depth_more_attractive():
    M = np.zeros((1, 20), np.float32)
    M[0, 0], M[0, 10], M[0, 19] = 1.0, 0.9, 0.9
    depth = np.ones((1, 20), np.float32)
    # decay of (10, 0): 1.0 (farthest, by depth); of (19, 0): 0.95 / 1.118 = 0.85
    depth[0, 10] = 5.0
    assert select_self_prompts(M, depth, 2).tolist() == [[0, 0], [19, 0]]


def test_separable_distance_equals_the_min_max_normalised_feature_distance():
    depth = np.random.default_rng(0).random((7, 9), np.float32) * 3
    H, W = depth.shape
    rows, cols = np.meshgrid(np.arange(H) / H, np.arange(W) / W, indexing="ij")
    G = np.stack([rows, cols, normalised_depth(depth)], -1)          # G(p) of the module docstring
    d = np.linalg.norm(G - G[2, 5], axis=-1)
    expected = (d - d.min()) / (d.max() - d.min())
    assert np.allclose(normalised_distance(normalised_depth(depth), 5, 2), expected, atol=1e-6)


def test_prompt_box_pads_the_binarised_mask_and_stays_in_the_image():
    M = np.full((10, 20), -1.0, np.float32)
    M[2:6, 4:12] = 2.0                       # the mean is < 0, so M > 0 is the binarised mask:
    M[8, 18] = 0.01                          # rows 2..5 and 8, columns 4..11 and 18
    box = prompt_box(binarise_rendered(M), pad=0.25)   # rows [2, 9) x columns [4, 19): h 7, w 15, padded
    assert box.tolist() == [4 - 3.75, 2 - 1.75, 20.0, 10.0]
    assert prompt_box(binarise_rendered(-np.ones((4, 4), np.float32))) is None
