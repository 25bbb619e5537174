"""The voxel field, its renderer and its checkpoint: hand-computed rays, fast paths vs references."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.field.checkpoint import FieldCheckpointError, load_field, save_field
from engine.field.grid import VoxelField, grid_sample_points, resolution_for
from engine.field.render import composite_weights, render_rays, render_view
from engine.math.rays import camera_rays


def _set_sigma(field: VoxelField, sigma: float) -> None:
    """Make the density constant: raw such that softplus(raw + shift) * scale = sigma."""
    raw = math.log(math.expm1(sigma / float(field.density_scale))) - float(field.density_shift)
    with torch.no_grad():
        field.density.fill_(raw)


def _unit_field(background=(0.0, 0.0, 1.0)) -> VoxelField:
    # Box [0, 1]^3, 2 voxels per axis: spacing 1, voxel_size 1, step 0.5 world units.
    return VoxelField([[0, 0, 0], [1, 1, 1]], (2, 2, 2), background=background)


def test_weights_match_a_hand_computed_ray():
    field = _unit_field()
    _set_sigma(field, 2 * math.log(2))   # alpha = 1 - exp(-2 ln2 * 0.5) = 0.5 per step
    with torch.no_grad():
        field.color.fill_(0.0)           # sigmoid(0) = 0.5 grey
    # Camera at (0.5, 0.5, -1) looking +z: enters at t = 1, leaves at t = 2, step 0.5 ->
    # samples at t = 1.25, 1.75 (k + 0.5). alphas 0.5, 0.5; T = 1, 0.5; w = 0.5, 0.25; T_final 0.25.
    # rgb = 0.75 * 0.5 grey + 0.25 * blue = (0.375, 0.375, 0.625)
    # depth = 0.5 * 1.25 + 0.25 * 1.75 + 0.25 * 2 (background at the exit) = 1.5625, opacity 0.75.
    K = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [0.5, 0.5, -1.0]
    view = render_view(field, K, T, 1, 1, keep_weights=True)
    assert torch.allclose(view.rgb[0, 0], torch.tensor([0.375, 0.375, 0.625]), atol=1e-5)
    assert view.depth[0, 0].item() == pytest.approx(1.5625, abs=1e-5)
    assert view.opacity[0, 0].item() == pytest.approx(0.75, abs=1e-5)
    s = view.samples
    assert s.ray_ids.tolist() == [0, 0]
    assert torch.allclose(s.weights, torch.tensor([0.5, 0.25]), atol=1e-6)
    # normalised coords: x = y = 0.5 -> 0; z = 0.25, 0.75 -> -0.5, 0.5
    assert torch.allclose(s.coords, torch.tensor([[0.0, 0.0, -0.5], [0.0, 0.0, 0.5]]), atol=1e-6)


def test_composite_weights_two_rays_by_hand():
    # ray 0: alphas 0.5, 0.2, 0.1 -> w = 0.5, 0.5*0.2 = 0.1, 0.4*0.1 = 0.04; T_final = 0.5*0.8*0.9 = 0.36
    # ray 1: no samples -> T_final = 1; ray 2: alpha 0.9 -> w = 0.9, T_final 0.1
    alpha = torch.tensor([0.5, 0.2, 0.1, 0.9])
    ray_ids = torch.tensor([0, 0, 0, 2])
    weights, t_final = composite_weights(alpha, ray_ids, 3)
    assert torch.allclose(weights, torch.tensor([0.5, 0.1, 0.04, 0.9]), atol=1e-6)
    assert torch.allclose(t_final, torch.tensor([0.36, 1.0, 0.1]), atol=1e-6)


def test_exit_background_is_an_opaque_sample():
    field = _unit_field(background=None)
    _set_sigma(field, 2 * math.log(2))
    origins, dirs = torch.tensor([[0.5, 0.5, -1.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    out = render_rays(field, origins, dirs, keep_weights=True)
    assert torch.allclose(out.samples.weights, torch.tensor([0.5, 0.25, 0.25]), atol=1e-6)
    assert out.samples.coords[-1, 2].item() == pytest.approx(1.0)   # the exit point z = 1
    assert torch.allclose(out.rgb, torch.full((1, 3), 0.5), atol=1e-6)


def _random_field(seed=0, resolution=(12, 10, 14), background=(1.0, 1.0, 1.0)) -> VoxelField:
    torch.manual_seed(seed)
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], resolution, background=background, near=0.1, far=10.0)
    with torch.no_grad():
        field.density.normal_(0.0, 3.0)
        field.color.normal_(0.0, 2.0)
    return field


def _camera(H=24, W=20):
    K = np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [0.1, -0.2, -3.0]
    return K, T


def test_chunked_render_equals_unchunked():
    field = _random_field()
    K, T = _camera()
    whole = render_view(field, K, T, 24, 20, keep_weights=True, chunk=10_000)
    parts = render_view(field, K, T, 24, 20, keep_weights=True, chunk=37)
    for name in ("rgb", "depth", "opacity"):
        assert torch.allclose(getattr(whole, name), getattr(parts, name), atol=1e-5)
    assert torch.equal(whole.samples.ray_ids, parts.samples.ray_ids)
    assert torch.allclose(whole.samples.weights, parts.samples.weights, atol=1e-6)


def test_empty_space_skipping_changes_nothing_visible():
    field = _random_field()
    with torch.no_grad():
        field.density[:, :, :, :, :7] = -30.0          # half the box empty
    K, T = _camera()
    full = render_view(field, K, T, 24, 20)
    occupied = field.update_occupancy(alpha_threshold=1e-5)
    assert occupied < 0.9
    skipped = render_view(field, K, T, 24, 20)
    assert torch.allclose(full.rgb, skipped.rgb, atol=2e-4)
    assert torch.allclose(full.opacity, skipped.opacity, atol=2e-4)


def test_split_grid_sample_equals_plain_grid_sample():
    torch.manual_seed(1)
    grid = torch.randn(1, 3, 5, 6, 7)
    coords = torch.rand(10_001, 3) * 2 - 1
    plain = F.grid_sample(grid, coords.reshape(1, 1, 1, -1, 3), align_corners=True,
                          padding_mode="border")[0, :, 0, 0].T
    assert torch.allclose(grid_sample_points(grid, coords), plain, atol=1e-6)


def test_render_is_differentiable():
    field = _random_field()
    origins, dirs = camera_rays(*_camera(6, 5), 6, 5)
    out = render_rays(field, origins, dirs, jitter=True)
    out.rgb.sum().backward()
    assert field.density.grad.abs().sum() > 0 and field.color.grad.abs().sum() > 0


def test_resolution_follows_the_box_aspect_and_values_have_grid_shapes():
    assert resolution_for([[0, 0, 0], [2, 1, 1]], 10) == (8, 8, 16)
    field = VoxelField([[0, 0, 0], [2, 1, 1]], (8, 8, 16))
    assert field.resolution == (8, 8, 16)
    assert field.density_values().shape == (8, 8, 16)
    assert field.rgb_values().shape == (8, 8, 16, 3)
    # init alpha: raw 0 gives alpha 1e-2 over one step
    alpha = 1 - torch.exp(-field.density_values() * field.step_size)
    assert torch.allclose(alpha, torch.full_like(alpha, 1e-2), rtol=1e-4)


def test_upsample_keeps_the_rendered_image_close():
    field = _random_field(resolution=(6, 6, 6))
    with torch.no_grad():
        field.density.mul_(0.3)
    K, T = _camera()
    before = render_view(field, K, T, 24, 20).rgb
    field.upsample((11, 11, 11))
    assert field.resolution == (11, 11, 11)
    after = render_view(field, K, T, 24, 20).rgb
    assert (before - after).abs().mean() < 0.05


def test_checkpoint_round_trip(tmp_path):
    field = _random_field(background=None)
    field.update_occupancy(1e-3)
    path = tmp_path / "field.pt"
    save_field(path, field, scene_hash="abc", meta={"test_psnr": 12.5})
    loaded = load_field(path, scene_hash="abc")
    for name in ("density", "color", "bbox", "occupancy", "density_shift", "density_scale"):
        assert torch.equal(getattr(field, name), getattr(loaded, name))
    assert loaded.background_from_exit and loaded.near == 0.1 and loaded.far == 10.0
    K, T = _camera()
    assert torch.allclose(render_view(field, K, T, 8, 8).rgb, render_view(loaded, K, T, 8, 8).rgb)
    assert list(tmp_path.iterdir()) == [path]   # no temporary file left behind


def test_checkpoint_refusals_name_the_file_and_the_fix(tmp_path):
    field = _unit_field()
    path = tmp_path / "field.pt"
    save_field(path, field, scene_hash="abc")
    with pytest.raises(FieldCheckpointError, match="another scene.*main.py train"):
        load_field(path, scene_hash="other")
    state = torch.load(path, weights_only=True)
    state["version"] = 99
    torch.save(state, tmp_path / "v99.pt")
    with pytest.raises(FieldCheckpointError, match="v99.pt has checkpoint version 99"):
        load_field(tmp_path / "v99.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FieldCheckpointError, match="bad.pt is not a readable"):
        load_field(tmp_path / "bad.pt")
    with pytest.raises(FieldCheckpointError, match="no field checkpoint"):
        load_field(tmp_path / "missing.pt")
    del state["tensors"]["color"]
    state["version"] = 1
    torch.save(state, tmp_path / "damaged.pt")
    with pytest.raises(FieldCheckpointError, match="damaged"):
        load_field(tmp_path / "damaged.pt")


def _ndc_field(resolution=(3, 2, 2), bbox=((-1, -1, -1), (1, 1, 0)), **kw) -> VoxelField:
    # NDC near plane n = 1, scale (1, 1): world z in [1, 2] is NDC z in [-1, 0].
    return VoxelField(bbox, resolution, space="ndc", ndc_near=1.0, ndc_scale=(1.0, 1.0), far=1e10, **kw)


def test_ndc_ray_by_hand():
    # Spacings x 2, y 2, z 0.5: voxel_size 1.5, step 1/3 voxel = 0.5 NDC units. The centre ray of a
    # camera at the origin: o' = (0, 0, -1), d' = (0, 0, 2), s in [0, 0.5] (box z <= 0), ds = 0.25:
    # samples s = 0.125, 0.375 -> NDC z -0.75, -0.25 -> world z = 2 / (1 - z) = 8/7, 1.6 (= depth).
    # alpha 0.5 each: w = 0.5, 0.25, T_final 0.25 at the exit s = 0.5 (world z 2).
    field = _ndc_field(step_voxels=1 / 3, background=(0.0, 0.0, 1.0))
    assert field.step_size == pytest.approx(0.5)
    _set_sigma(field, 2 * math.log(2))
    K = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], np.float32)
    view = render_view(field, K, np.eye(4, dtype=np.float32), 1, 1, keep_weights=True)
    assert torch.allclose(view.samples.weights, torch.tensor([0.5, 0.25]), atol=1e-6)
    assert torch.allclose(view.samples.coords[:, 2], torch.tensor([-0.5, 0.5]), atol=1e-6)
    assert view.depth[0, 0].item() == pytest.approx(0.5 * 8 / 7 + 0.25 * 1.6 + 0.25 * 2.0, abs=1e-5)


def test_ndc_field_puts_a_world_point_at_its_pixel_and_converts_points():
    field = _ndc_field(resolution=(40, 40, 40), bbox=((-1.2, -1.2, -1), (1.2, 1.2, 0.6)),
                       background=(1.0, 1.0, 1.0))
    point = torch.tensor([[0.25, -0.15, 2.0]])                             # world
    assert torch.allclose(field.to_world(field.to_field(point)), point, atol=1e-6)
    Z, Y, X = field.resolution
    axes = [torch.linspace(float(field.bbox[0, a]), float(field.bbox[1, a]), n) for a, n in ((2, Z), (1, Y), (0, X))]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    world = field.to_world(torch.stack([xx, yy, zz], -1).reshape(-1, 3)).reshape(Z, Y, X, 3)
    near_point = (world - point).norm(dim=-1) < 0.12                       # a small world ball
    with torch.no_grad():
        field.density.copy_(torch.where(near_point, 10.0, -30.0)[None, None])
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [0.1, 0.05, -0.05]                                          # off the NDC origin
    K = np.array([[40.0, 0, 24], [0, 40.0, 24], [0, 0, 1]], np.float32)
    opacity = render_view(field, K, T, 48, 48).opacity                     # [48, 48]
    row, col = divmod(int(opacity.argmax()), 48)
    cam = point[0].numpy() - T[:3, 3]
    assert abs(col + 0.5 - (40 * cam[0] / cam[2] + 24)) < 1.5
    assert abs(row + 0.5 - (40 * cam[1] / cam[2] + 24)) < 1.5
    assert opacity.max() > 0.9 and opacity[0, 0] < 1e-3


def test_ndc_checkpoint_round_trip(tmp_path):
    field = _ndc_field(resolution=(6, 5, 4), background=None)
    with torch.no_grad():
        field.density.normal_(0.0, 2.0)
    save_field(tmp_path / "f.pt", field, scene_hash="s")
    loaded = load_field(tmp_path / "f.pt")
    assert loaded.space == "ndc" and loaded.ndc_near == 1.0 and loaded.ndc_scale == (1.0, 1.0)
    K = np.array([[4.0, 0, 4], [0, 4.0, 4], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    assert torch.allclose(render_view(field, K, T, 8, 8).rgb, render_view(loaded, K, T, 8, 8).rgb)
