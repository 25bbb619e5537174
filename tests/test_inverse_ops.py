"""Mask inverse rendering: hand-checked numbers, and the sparse fast path (numpy) against autograd (torch)."""

import numpy as np
import pytest
import torch

from systems.inverse.ops import (
    accumulate_votes,
    binarise_rendered,
    build_view_weights,
    coverage_mask,
    gate_iou,
    instance_ids,
    mask_iou,
    naive_render,
    naive_vote,
    projection_loss,
    render_mask,
    trilinear_corners,
    view_votes,
)


def _two_voxels():
    """Grid of 2 voxels along x (Z=Y=1), an image of 1 x 2 pixels (two rays).

    Ray 0: a sample at x=-1 (all on voxel 0), weight 0.5, and one at x=0 (half on each voxel),
    weight 0.4. Ray 1: a sample at x=+1 (voxel 1), weight 0.8. So
        A = [[0.5 + 0.4/2, 0.4/2],      = [[0.7, 0.2],
             [0,           0.8  ]]         [0.0, 0.8]]
    """
    ray_ids = torch.tensor([0, 0, 1])
    coords = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    weights = torch.tensor([0.5, 0.4, 0.8])
    return ray_ids, coords, weights


def test_two_voxel_two_ray_matrix_loss_vote_and_average():
    ray_ids, coords, weights = _two_voxels()
    view = build_view_weights(ray_ids, coords, weights, 1, 2, (1, 1, 2))
    assert np.allclose(view.A.toarray(), [[0.7, 0.2], [0.0, 0.8]])
    sam = np.array([[True, False]])
    # lambda 5: target t = S - 5 (1 - S) = [1, -5]; vote = A^T t = [0.7, 0.2 - 4.0] = [0.7, -3.8].
    # Check against L(V) = -M0 + 5 M1 = -(0.7 v0 + 0.2 v1) + 5 (0.8 v1) = -0.7 v0 + 3.8 v1.
    vote = view_votes(view, sam, 0, 1, 5.0)
    assert np.allclose(vote, [[0.7, -3.8]])
    V = np.array([[2.0, 1.0]], np.float32)
    loss = projection_loss(torch.from_numpy(render_mask(view, V)[0]), torch.from_numpy(sam), 5.0)
    assert float(loss) == pytest.approx(-0.7 * 2 + 3.8 * 1)
    votes, counts = np.zeros((1, 1, 1, 2), np.float32), np.zeros((1, 1, 1, 2), np.float32)
    assert accumulate_votes(votes, counts, view, vote) == 2
    assert np.allclose(votes.flatten(), [0.7, -3.8]) and counts.sum() == 2
    # Rendered now: M = A V = [0.7*0.7 + 0.2*(-3.8), 0.8*(-3.8)] = [-0.27, -3.04].
    assert np.allclose(render_mask(view, votes)[0], [[-0.27, -3.04]])
    # A second view (lambda 1, S = [1, 1]): vote = A^T [1, 1] = [0.7, 1.0];
    # averaged: v0 = (0.7 * 1 + 0.7) / 2 = 0.7, v1 = (-3.8 * 1 + 1.0) / 2 = -1.4; counts 2.
    accumulate_votes(votes, counts, view, view_votes(view, np.array([[True, True]]), 0, 1, 1.0))
    assert np.allclose(votes.flatten(), [0.7, -1.4]) and np.all(counts == 2)


def test_zero_votes_leave_voxels_and_counts_untouched():
    view = build_view_weights(*_two_voxels(), 1, 2, (1, 1, 2))
    votes, counts = np.array([[0.0, 0.5]], np.float32), np.array([[0.0, 3.0]], np.float32)
    assert accumulate_votes(votes, counts, view, np.array([[0.0, 0.0]], np.float32)) == 0
    assert np.array_equal(votes, [[0.0, 0.5]]) and np.array_equal(counts, [[0.0, 3.0]])
    with pytest.raises(ValueError, match="contiguous"):
        accumulate_votes(np.zeros((2, 2), np.float32).T, np.zeros((2, 2), np.float32).T, view,
                         np.ones((2, 2), np.float32))


def test_coverage_mask_needs_a_majority_of_the_pixel():
    view = build_view_weights(*_two_voxels(), 1, 2, (1, 1, 2))
    # A = [[0.7, 0.2], [0, 0.8]]: only voxel 0 positive covers pixel 0 by 0.7, pixel 1 by 0.
    assert coverage_mask(view, np.array([[3.0, -1.0]])).tolist() == [[[True, False]]]
    # only voxel 1 positive: pixel 0 covered 0.2 (a grazing ray, M > 0 but no majority), pixel 1 0.8.
    assert coverage_mask(view, np.array([[-0.5, 3.0]])).tolist() == [[[False, True]]]
    assert render_mask(view, np.array([[-0.5, 3.0]]))[0, 0, 0] > 0
    # a constant backdrop takes 0.9 more of pixel 1: voxel 1 now holds 0.8 / 1.7 < half of it
    backed = build_view_weights(*_two_voxels(), 1, 2, (1, 1, 2), backdrop=np.array([0.1, 0.9], np.float32))
    assert coverage_mask(backed, np.array([[-0.5, 3.0]])).tolist() == [[[False, False]]]
    # a soft field (every weight halved, the rest in faint samples under the cutoff): same shares
    ray_ids, coords, weights = _two_voxels()
    soft = build_view_weights(ray_ids, coords, weights * 0.5, 1, 2, (1, 1, 2))
    assert coverage_mask(soft, np.array([[3.0, -1.0]])).tolist() == [[[True, False]]]


def test_instance_ids_give_each_pixel_to_the_object_covering_most_of_it():
    view = build_view_weights(*_two_voxels(), 1, 2, (1, 1, 2))
    # object 1 = voxel 0 (covers pixel 0 by 0.7), object 2 = voxel 1 (pixel 0 by 0.2, pixel 1 by 0.8)
    votes = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)
    assert instance_ids(view, votes).tolist() == [[1, 2]]
    # object 2 alone also covers pixel 0, by 0.2 only: no id there; no objects: all zero
    assert instance_ids(view, votes[1:]).tolist() == [[0, 1]]
    assert instance_ids(view, votes[:0]).tolist() == [[0, 0]]


def test_multi_object_vote_pushes_other_channels_down_inside_the_sam_mask():
    view = build_view_weights(*_two_voxels(), 1, 2, (1, 1, 2))
    sam = np.array([[True, False]])
    vote = view_votes(view, sam, 1, 3, 5.0)
    # Channels 0 and 2 get -A^T S = -[0.7, 0.2]; channel 1 the usual vote.
    assert np.allclose(vote[0], [-0.7, -0.2]) and np.array_equal(vote[0], vote[2])
    assert np.allclose(vote[1], [0.7, -3.8])
    assert np.count_nonzero(view_votes(view, sam, 1, 3, 5.0, exclusive=False)[0]) == 0


def test_trilinear_corners_match_grid_sample():
    torch.manual_seed(0)
    grid = torch.randn(3, 4, 5)
    coords = torch.rand(50, 3) * 2.2 - 1.1                     # a few outside: border padding
    ids, w = trilinear_corners(coords, (3, 4, 5))
    fast = (grid.reshape(-1)[ids] * w).sum(1)
    slow = torch.nn.functional.grid_sample(grid[None, None], coords.reshape(1, 1, 1, -1, 3),
                                           align_corners=True, padding_mode="border").reshape(-1)
    assert torch.allclose(fast, slow, atol=1e-5)


def _random_view(seed=1, H=6, W=7, shape=(4, 5, 6), samples=400):
    g = torch.Generator().manual_seed(seed)
    ray_ids = torch.randint(0, H * W, (samples,), generator=g)
    coords = torch.rand(samples, 3, generator=g) * 2 - 1
    weights = torch.rand(samples, generator=g) * 0.3
    return ray_ids, coords, weights, H, W, shape


def test_fast_render_and_vote_equal_the_autograd_reference():
    ray_ids, coords, weights, H, W, shape = _random_view()
    view = build_view_weights(ray_ids, coords, weights, H, W, shape, chunk_rays=5)
    V = torch.randn(1, *shape)
    assert np.allclose(render_mask(view, V.numpy())[0], naive_render(V[0], ray_ids, coords, weights, H, W).numpy(),
                       atol=1e-5)
    sam = torch.rand(H, W) > 0.5
    fast = np.zeros((1, int(np.prod(shape))), np.float32)
    fast[:, view.primitives] = view_votes(view, sam.numpy(), 0, 1, 5.0)
    slow = naive_vote(V[0], ray_ids, coords, weights, sam, 5.0)
    assert np.allclose(fast.reshape(shape), slow.numpy(), atol=1e-5)


def test_min_entry_drops_small_entries_only():
    ray_ids, coords, weights, H, W, shape = _random_view()
    full = build_view_weights(ray_ids, coords, weights, H, W, shape)
    pruned = build_view_weights(ray_ids, coords, weights, H, W, shape, min_entry=0.05)
    assert pruned.nnz < full.nnz
    assert (pruned.A.data > 0.05).all()


def test_binarisation_and_iou_gate():
    M = np.array([[0.0, 0.1, 0.9], [-1.0, 0.8, 0.2]], np.float32)     # mean 1/6
    assert binarise_rendered(M).tolist() == [[False, False, True], [False, True, True]]
    sam = np.array([[False, False, True], [False, True, False]])
    assert gate_iou(M, sam) == pytest.approx(2 / 3)
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0
