"""The GLSL ray marcher against the torch renderer, in a headless EGL context."""

import math

import numpy as np
import pytest
import torch

from engine.field.grid import VoxelField
from engine.field.render import render_view

pytestmark = pytest.mark.gl


@pytest.fixture(scope="module")
def ctx():
    from engine.platform.gl import GLUnavailableError, headless_context

    try:
        context = headless_context()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    yield context
    context.release()


def blob_field(background=(1.0, 1.0, 1.0)) -> VoxelField:
    """Three soft coloured blobs in a 40^3 box, occupancy computed as after training."""
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], (40, 40, 40), background=background)
    zs, ys, xs = torch.meshgrid(*(torch.linspace(-1, 1, 40),) * 3, indexing="ij")
    raw = torch.full_like(xs, -12.0)
    color = torch.zeros(3, 40, 40, 40)
    for (cx, cy, cz), r, rgb in [((-0.4, 0.0, 0.1), 0.35, (2, -2, -1)), ((0.45, 0.3, -0.2), 0.3, (-2, 2, -1)),
                                  ((0.1, -0.45, 0.4), 0.25, (-1, -1, 2))]:
        inside = 1.0 - ((xs - cx) ** 2 + (ys - cy) ** 2 + (zs - cz) ** 2).sqrt() / r   # > 0 inside
        raw = torch.maximum(raw, 12.0 * inside.clamp(min=-1) + 2.0 * inside.clamp(max=0) * 4)
        color += torch.tensor(rgb, dtype=torch.float32)[:, None, None, None] * inside.clamp(min=0, max=0.2) * 5
    with torch.no_grad():
        field.density.copy_(raw[None, None])
        field.color.copy_(color[None])
    field.update_occupancy()
    return field


def look_at(position, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """T_world_camera [4, 4] (OpenCV) at `position` looking at `target`, world +z up."""
    position, target = np.asarray(position, float), np.asarray(target, float)
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, forward], axis=1)
    T[:3, 3] = position
    return T.astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0 ** 2
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@pytest.mark.parametrize("precision", ["f16", "u8"])
def test_gl_image_matches_torch_render_view(ctx, precision):
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.ops import volume_arrays

    field = blob_field()
    H, W = 72, 96
    K = np.array([[150.0, 0, W / 2], [0, 150.0, H / 2], [0, 0, 1]], np.float32)
    T = look_at([1.6, -2.0, 1.0])
    torch_rgb = (render_view(field, K, T, H, W).rgb.numpy() * 255).round().astype(np.uint8)  # [H, W, 3]
    marcher = GLRayMarcher(ctx)
    marcher.load_volume(volume_arrays(field, precision=precision))
    gl_rgb = marcher.render_image(K, T, H, W)                                               # [H, W, 3]
    assert gl_rgb.shape == (H, W, 3)
    assert (torch_rgb != 255).any(axis=-1).mean() > 0.2          # the blobs fill part of the view
    assert psnr(gl_rgb, torch_rgb) >= 35.0


def test_overlay_tints_only_the_masked_object(ctx):
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.ops import volume_arrays

    field = blob_field()
    H, W = 48, 64
    K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]], np.float32)
    T = look_at([0.0, -3.0, 0.0])
    marcher = GLRayMarcher(ctx)
    marcher.load_volume(volume_arrays(field))
    ids = np.zeros(field.resolution, np.uint8)
    ids[:, :, :20] = 1                                            # the half x < 0: the red blob
    marcher.set_object_ids(ids)
    marcher.set_objects(np.array([[0, 0, 255]], np.uint8), np.array([True]))
    plain = marcher.render_image(K, T, H, W).astype(int)
    tinted = marcher.render_image(K, T, H, W, overlay=True).astype(int)
    alone = marcher.render_image(K, T, H, W, view_mode=1, selected=1).astype(int)
    removed = marcher.render_image(K, T, H, W, view_mode=2, selected=1).astype(int)
    changed = np.abs(tinted - plain).sum(-1) > 30                 # [H, W]
    assert changed[:, : W // 2 - 4].mean() > 0.05 and changed[:, W // 2 + 4:].mean() == 0
    assert (tinted[changed][:, 2] > plain[changed][:, 2]).all()   # shifted towards blue
    white = (np.abs(alone - 255).sum(-1) < 6)
    assert white[:, W // 2 + 4:].all() and not white[:, : W // 2 - 4].all()
    assert (np.abs(removed - 255).sum(-1) < 6)[:, : W // 2 - 4].all()


@pytest.mark.parametrize("precision", ["f16", "u8"])
def test_gl_matches_torch_on_a_trained_field_with_fog(ctx, precision):
    """A trained field has thin density everywhere (no voxel is skipped): merged samples and the
    early end of rays must keep the image within the agreement tolerance."""
    from engine.field.fixtures import trained_builtin_field
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.ops import volume_arrays

    scene, field = trained_builtin_field()
    volume = volume_arrays(field, precision=precision)
    assert (volume.groups > 2).mean() > 0.2                      # fog is merged in larger groups ...
    assert (volume.groups == 2).any()                             # ... than the objects
    K, T = scene.K[0] * np.array([[2], [2], [1]]), scene.T_world_camera[0]
    H, W = 2 * scene.H, 2 * scene.W
    torch_rgb = (render_view(field, K, T, H, W).rgb.numpy() * 255).round().astype(np.uint8)
    marcher = GLRayMarcher(ctx)
    marcher.load_volume(volume)
    assert psnr(marcher.render_image(K, T, H, W), torch_rgb) >= 35.0


def test_block_distance_and_group_sizes():
    from systems.render.ops import block_distance, group_sizes

    occupancy = np.zeros((8, 12, 16), np.uint8)
    occupancy[0, 0, 0] = 255
    distance = block_distance(occupancy, 4)                      # [2, 3, 4] blocks
    assert distance.shape == (2, 3, 4) and distance[0, 0, 0] == 0 and distance[1, 2, 3] == 3
    assert (block_distance(np.zeros_like(occupancy), 4) == 255).all()
    alpha = torch.zeros(24, 24, 24)
    alpha[12, 12, 12] = 0.5                                       # one dense voxel in clear space
    sizes = group_sizes(alpha, levels=((8, 0.01), (2, 0.1)))
    assert sizes[12, 12, 12] == 1 and sizes[0, 0, 0] == 8
    assert group_sizes(alpha)[12, 12, 12] == 2                    # default levels: pairs everywhere
    assert sizes[12, 12, 15] == 1 and sizes[12, 12, 16] == 2 and sizes[12, 12, 18] == 2 and sizes[12, 12, 19] == 8


def test_gl_image_matches_torch_for_an_ndc_field(ctx):
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.ops import volume_arrays

    blobs = blob_field(background=None)         # the blobs, now in an NDC box of world z in [1, 4]
    field = VoxelField([[-1, -1, -1], [1, 1, 0.5]], blobs.resolution, background=None, space="ndc",
                       ndc_near=1.0, ndc_scale=(1.2, 1.6), far=1e10)
    with torch.no_grad():
        field.density.copy_(blobs.density)
        field.color.copy_(blobs.color)
    field.update_occupancy()
    H, W = 60, 80
    K = np.array([[48.0, 0, W / 2], [0, 64.0, H / 2], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [0.05, -0.03, 0.02]
    torch_rgb = (render_view(field, K, T, H, W).rgb.numpy() * 255).round().astype(np.uint8)  # [H, W, 3]
    marcher = GLRayMarcher(ctx)
    marcher.load_volume(volume_arrays(field, precision="f16"))
    gl_rgb = marcher.render_image(K, T, H, W)                                               # [H, W, 3]
    assert psnr(gl_rgb, torch_rgb) >= 35.0


def unbounded_blob_field() -> VoxelField:
    """The blobs in their box, and around it a background grid of smooth colour bands with a denser
    shell (a 'room') at contracted radius ~1.5: rays that pass the blobs see the room."""
    from engine.field.background import BackgroundField

    blobs = blob_field(background=None)
    outside = BackgroundField([[-1, -1, -1], [1, 1, 1]], 32, samples=24, half_extent=1.5)  # inner cube > box
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], blobs.resolution, background=None, near=0.05,
                       far=1e10, outside=outside)
    zs, ys, xs = torch.meshgrid(*(torch.linspace(-2, 2, 32),) * 3, indexing="ij")
    radius = torch.stack([xs, ys, zs]).abs().amax(0)                           # [32, 32, 32]
    grid = torch.stack([4.0 - 40.0 * (radius - 1.5).abs(), 3 * torch.sin(2 * xs), 3 * torch.cos(3 * ys),
                        2 * torch.sin(zs + xs)])
    with torch.no_grad():
        field.density.copy_(blobs.density)
        field.color.copy_(blobs.color)
        outside.grid.copy_(grid[None])
    field.update_occupancy()
    return field


def test_gl_image_matches_torch_for_an_unbounded_field(ctx):
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.ops import volume_arrays

    field = unbounded_blob_field()
    H, W = 72, 96
    K = np.array([[80.0, 0, W / 2], [0, 80.0, H / 2], [0, 0, 1]], np.float32)
    T = look_at([1.6, -2.0, 1.0])                  # outside the box: some rays miss it entirely
    torch_rgb = (render_view(field, K, T, H, W).rgb.numpy() * 255).round().astype(np.uint8)  # [H, W, 3]
    marcher = GLRayMarcher(ctx)
    marcher.load_volume(volume_arrays(field, precision="f16"))
    gl_rgb = marcher.render_image(K, T, H, W)                                               # [H, W, 3]
    assert torch_rgb.reshape(-1, 3).std(0).min() > 20             # the room's colour varies over the view
    assert psnr(gl_rgb, torch_rgb) >= 35.0
