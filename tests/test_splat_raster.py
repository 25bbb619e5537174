"""The splat rasteriser: hand-checked projections and compositing, and the tile paths (torch,
compiled CPU) against the brute-force per-pixel reference."""

import math

import numpy as np
import pytest
import torch

from engine.splats.cloud import SH_C0, from_vertex, vertex_table
from engine.splats.project import DILATION, SH_C1, project, sh_to_rgb
from engine.splats.raster import render_splats


def cloud_of(means, scales, opacity, sh=None, quats=None):
    means = np.asarray(means, np.float32).reshape(-1, 3)
    n = len(means)
    sh = np.zeros((n, 1, 3), np.float32) if sh is None else np.asarray(sh, np.float32)
    quats = np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32) if quats is None else quats
    return from_vertex(vertex_table(means, sh, np.asarray(opacity, np.float32).reshape(n),
                                    np.asarray(scales, np.float32).reshape(n, 3), quats))


def random_cloud(n, seed=0):
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    return cloud_of(rng.uniform(-1, 1, (n, 3)), np.exp(rng.uniform(-3.5, -1.2, (n, 3))),
                    rng.uniform(0.02, 1.0, n), sh=rng.normal(0, 0.5, (n, 16, 3)),
                    quats=quats / np.linalg.norm(quats, axis=1, keepdims=True))


def camera(W, H, f, z=-3.0):
    """K and a camera on the -Z axis at depth `z` looking along +Z (OpenCV axes = world axes)."""
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[2, 3] = z
    return K, T


def test_an_isotropic_gaussian_projects_to_its_hand_computed_footprint():
    # mean (0.3, -0.2, 2) in camera coords, sigma 0.05, f = 100: sigma_2d = f sigma / z = 2.5 px
    # (the centre's offset only rotates the footprint by J's third column: kept small here).
    cloud = cloud_of([0.3, -0.2, -1.0], [0.05] * 3, 0.8)
    K, T = camera(64, 48, 100.0)
    p = project(cloud, K, T, 48, 64)
    u, v, z = 0.15, -0.1, 2.0
    J = np.array([[100 / z, 0, -100 * u / z], [0, 100 / z, -100 * v / z]])
    cov = J @ (0.05 ** 2 * np.eye(3)) @ J.T + DILATION * np.eye(2)
    a, b, c = cov[0, 0], cov[0, 1], cov[1, 1]
    det = a * c - b * b
    assert p.means2d[0].tolist() == pytest.approx([100 * u + 32, 100 * v + 24])
    assert p.conics[0].tolist() == pytest.approx([c / det, -b / det, a / det], rel=1e-5)
    reach = 2 * math.log(255 * 0.8)                   # alpha >= 1/255 inside d^T conic d <= reach
    exact = [math.sqrt(reach * a), math.sqrt(reach * c)]
    assert p.extent[0].tolist() == pytest.approx([e * 1.0001 + 1e-3 for e in exact], rel=1e-5)  # + margin
    assert float(p.depths[0]) == pytest.approx(2.0)


def test_gaussians_behind_the_near_plane_off_screen_or_transparent_are_culled():
    cloud = cloud_of([[0, 0, -2.9], [0, 0, -4.0], [40, 0, 0], [0, 0, 0], [0.1, 0, 0]], [[0.05] * 3] * 5,
                     [0.9, 0.9, 0.9, 0.003, 0.9])
    K, T = camera(64, 48, 100.0)
    assert project(cloud, K, T, 48, 64).ids.tolist() == [4]


def test_two_gaussians_composite_front_to_back_with_hand_computed_weights():
    # Two wide Gaussians on the optical axis: at the centre pixel alpha = opacity exactly (d = 0
    # for a pixel centre on the mean: W = 64 puts cx = 32 on the corner between pixels, so use 63).
    cloud = cloud_of([[0, 0, 1.0], [0, 0, -1.0]], [[0.3] * 3] * 2, [0.5, 0.6],
                     sh=np.array([[[(0.9 - 0.5) / SH_C0, -0.5 / SH_C0, -0.5 / SH_C0]],
                                  [[-0.5 / SH_C0, (0.8 - 0.5) / SH_C0, -0.5 / SH_C0]]]))
    K, T = camera(63, 47, 100.0)
    for method in ("reference", "torch", "cpu"):
        view = render_splats(cloud, K, T, 47, 63, background=(0.0, 0.0, 1.0), method=method)
        pixel = 23 * 63 + 31
        front, back = 0.6, 0.5 * (1 - 0.6)          # index 1 is nearer (depth 2 against 4)
        assert view.weights[pixel, 1] == pytest.approx(front) and view.weights[pixel, 0] == pytest.approx(back)
        rest = 1 - front - back
        assert view.rgb[23, 31].tolist() == pytest.approx([0.9 * back, 0.8 * front, rest], abs=1e-6)
        assert float(view.depth[23, 31]) == pytest.approx((2 * front + 4 * back) / (front + back))


def test_compositing_stops_before_the_transmittance_falls_under_1e_4():
    # Three stacked Gaussians of alpha 0.98 at the centre: T = 0.02, 4e-4, then 8e-6 < 1e-4, so the
    # third is not composited and the pixel keeps T_final = 4e-4.
    cloud = cloud_of([[0, 0, -1.0], [0, 0, 0.0], [0, 0, 1.0]], [[0.3] * 3] * 3, [0.98] * 3)
    K, T = camera(63, 47, 100.0)
    for method in ("reference", "torch", "cpu"):
        view = render_splats(cloud, K, T, 47, 63, background=(1.0, 1.0, 1.0), method=method)
        row = view.weights[23 * 63 + 31].toarray()[0]
        assert row == pytest.approx([0.98, 0.02 * 0.98, 0.0], rel=1e-5)
        assert float(view.opacity[23, 31]) == pytest.approx(1 - 4e-4, abs=1e-6)


@pytest.mark.parametrize("method", ["torch", "cpu"])
def test_tile_paths_match_the_brute_force_reference(method):
    cloud = random_cloud(400)
    H, W = 45, 67                                   # not multiples of the tile size
    K, T = camera(W, H, 50.0)
    reference = render_splats(cloud, K, T, H, W, background=(0.2, 0.3, 0.4), method="reference")
    tiled = render_splats(cloud, K, T, H, W, background=(0.2, 0.3, 0.4), method=method)
    assert reference.weights.nnz > 10 * H * W      # many overlaps per pixel
    assert float(reference.opacity.max()) > 0.99 and float(reference.opacity.min()) < 0.5
    assert abs(reference.weights - tiled.weights).max() < 1e-5
    canonical = tiled.weights.copy()
    canonical.has_sorted_indices = False
    canonical.sort_indices()                                      # rows come sorted by Gaussian index
    assert np.array_equal(canonical.indices, tiled.weights.indices)
    assert np.array_equal(canonical.data, tiled.weights.data)
    for name in ("rgb", "depth", "opacity"):
        assert torch.allclose(getattr(reference, name), getattr(tiled, name), atol=1e-4)


def test_the_weights_matrix_is_the_lifting_matrix_of_the_view():
    cloud = random_cloud(300, seed=3)
    K, T = camera(40, 30, 30.0)
    view = render_splats(cloud, K, T, 30, 40, background=(0.0, 0.0, 0.0))
    assert view.weights.shape == (30 * 40, 300)
    assert np.allclose(np.asarray(view.weights.sum(1)).ravel(), view.opacity.reshape(-1).numpy(), atol=1e-5)
    colours = sh_to_rgb(cloud.sh, torch.nn.functional.normalize(cloud.means - torch.from_numpy(T[:3, 3]), dim=1))
    assert np.allclose(view.weights @ colours.numpy(), view.rgb.reshape(-1, 3).numpy(), atol=1e-5)


def test_without_colour_the_weights_and_depth_are_the_same_and_rgb_is_the_background_share():
    cloud = random_cloud(300, seed=4)
    K, T = camera(40, 30, 30.0)
    full = render_splats(cloud, K, T, 30, 40, background=(0.2, 0.3, 0.4))
    bare = render_splats(cloud, K, T, 30, 40, background=(0.2, 0.3, 0.4), color=False)
    assert (full.weights != bare.weights).nnz == 0
    assert torch.equal(full.depth, bare.depth) and torch.equal(full.opacity, bare.opacity)
    left = (1.0 - bare.opacity)[..., None] * torch.tensor([0.2, 0.3, 0.4])
    assert torch.allclose(bare.rgb, left, atol=1e-5) and not torch.allclose(full.rgb, left, atol=1e-2)


def test_sh_degree_one_follows_the_basis():
    sh = torch.zeros(1, 4, 3)
    sh[0, 0] = 1.0
    sh[0, 2] = torch.tensor([1.0, 0.0, -1.0])       # the z band
    up = sh_to_rgb(sh, torch.tensor([[0.0, 0.0, 1.0]]))
    side = sh_to_rgb(sh, torch.tensor([[1.0, 0.0, 0.0]]))
    assert up[0].tolist() == pytest.approx([SH_C0 + SH_C1 + 0.5, SH_C0 + 0.5, SH_C0 - SH_C1 + 0.5])
    assert side[0].tolist() == pytest.approx([SH_C0 + 0.5] * 3)


def test_higher_bands_average_out_over_the_sphere():
    # Every band above 0 integrates to zero: the mean colour over uniform directions is the DC term.
    rng = np.random.default_rng(1)
    sh = torch.from_numpy(rng.normal(0, 0.05, (1, 16, 3)).astype(np.float32))
    dirs = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    mean = sh_to_rgb(sh.expand(len(dirs), 16, 3), dirs).mean(0)
    assert mean.tolist() == pytest.approx((SH_C0 * sh[0, 0] + 0.5).tolist(), abs=2e-3)
