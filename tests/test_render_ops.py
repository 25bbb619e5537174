"""The render room's pure math: object ids uploaded to the GL ray marcher (highest positive vote, grown
into empty neighbours) and the overlay tint on the CPU."""

import numpy as np
from scipy import ndimage

from systems.render.ops import OVERLAY_TINT, object_ids, tint_pixels


def test_ids_take_the_highest_positive_vote_and_grow_one_voxel_into_empty_space():
    votes = -np.ones((2, 1, 1, 6), np.float32)
    votes[0, 0, 0, 1] = 0.5                     # object 1 at x = 1
    votes[1, 0, 0, 2:4] = 0.7                   # object 2 at x = 2, 3 (touching object 1)
    votes[0, 0, 0, 3] = 0.9                     # ... but object 1 votes higher at x = 3
    ids = object_ids(votes, (1, 1, 6), grow_voxels=0)
    assert ids[0, 0].tolist() == [0, 1, 2, 1, 0, 0]
    grown = object_ids(votes, (1, 1, 6), grow_voxels=1)
    # x = 0 and x = 4 were empty and take their neighbour's id; labelled voxels keep theirs.
    assert grown[0, 0].tolist() == [1, 1, 2, 1, 1, 0]


def _whole_grid_ids(votes, grow_voxels):
    """The ids computed over the whole grid (the reference the boxed computation must equal)."""
    best = votes.argmax(axis=0)
    ids = np.where(np.take_along_axis(votes, best[None], axis=0)[0] > 0, best + 1, 0).astype(np.uint8)
    for _ in range(grow_voxels):
        ids = np.where(ids == 0, ndimage.grey_dilation(ids, size=(3, 3, 3)), ids)
    return ids


def test_ids_computed_in_the_box_around_the_votes_equal_the_whole_grid_ones():
    rng = np.random.default_rng(0)
    for case in range(12):
        votes = -np.ones((2, 9, 10, 11), np.float32)
        for k in range(2):
            lo = rng.integers(0, [9, 10, 11])                                  # boxes touching the edges too
            hi = np.minimum(lo + rng.integers(1, 5, 3), [9, 10, 11])
            votes[k, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = rng.uniform(-0.5, 1.0, tuple(hi - lo))
        for grow in (0, 1, 2):
            assert np.array_equal(object_ids(votes, (9, 10, 11), grow), _whole_grid_ids(votes, grow)), (case, grow)


def test_no_objects_give_an_empty_id_grid():
    assert object_ids(None, (2, 3, 4)).shape == (2, 3, 4)
    assert not object_ids(np.zeros((0, 2, 3, 4)), (2, 3, 4)).any()


def test_the_cpu_overlay_mixes_the_one_tint_where_an_object_is():
    rgb = np.full((1, 2, 3), 0.2, np.float32)                                    # [H, W, 3]
    ids = np.array([[0, 1]])
    colors = np.array([[0, 0, 0], [1.0, 0.0, 0.0]], np.float32)
    out = tint_pixels(rgb, ids, colors)
    assert np.allclose(out[0, 0], 0.2)                                           # no object: untouched
    # 0.45 * 0.2 + 0.55 * (1, 0, 0) with OVERLAY_TINT = 0.55
    assert OVERLAY_TINT == 0.55 and np.allclose(out[0, 1], [0.09 + 0.55, 0.09, 0.09])
