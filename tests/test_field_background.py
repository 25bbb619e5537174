"""The unbounded kind's background grid: the contraction and a ray by hand, compositing with the
foreground and the mask rule, its checkpoint, and training on a scene with a room around the object."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.field.background import BackgroundField, background_start, contract, inner_half_extent
from engine.field.checkpoint import load_field, save_field
from engine.field.grid import VoxelField
from engine.field.render import render_rays, render_training_rays, render_view
from engine.field.train import TrainConfig, _training_rays, evaluate_psnr, train_field
from engine.math.rays import camera_rays
from engine.scenes.scene import Scene


def test_contraction_by_hand():
    # inside the box: unchanged; |p|_inf = 2 -> 2 - 1/2 = 1.5; (4, 2, 0): |p| = 4 -> 1.75 (1, 0.5, 0)
    points = torch.tensor([[0.5, -0.2, 0.0], [2.0, 0.0, 0.0], [4.0, 2.0, 0.0], [0.0, 0.0, -1e6]])
    expected = torch.tensor([[0.5, -0.2, 0.0], [1.5, 0.0, 0.0], [1.75, 0.875, 0.0], [0.0, 0.0, -2.0]])
    assert torch.allclose(contract(points), expected, atol=1e-5)


def test_background_start_is_the_exit_or_the_closest_point():
    origins = torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.0, -3.0], [0.0, 0.0, -0.1]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    t = background_start(origins, dirs, torch.zeros(3), torch.tensor([4.0, 0.0, 1.1]),
                         torch.tensor([True, False, True]), near=0.5)
    assert t.tolist() == pytest.approx([4.0, 3.0, 1.1])    # ray 1 misses: closest to the centre at t = 3
    t = background_start(origins[1:2], -dirs[1:2], torch.zeros(3), torch.zeros(1), torch.tensor([False]), 0.5)
    assert t.tolist() == pytest.approx([0.5])              # closest point behind the camera: near


def test_a_background_ray_by_hand():
    # Box [-1, 1]^3, a ray from the centre along +x starting at the exit t_s = 1. With N = 4 bins,
    # edges t_j = 1 / (1 - j/4) contract to 2 - 1/t_j = 1 + j/4: every bin is 1/4 contracted units
    # long. sigma = 4 ln 2 gives alpha = 1 - exp(-ln 2) = 1/2 per bin, the last one is opaque:
    # weights 1/2, 1/4, 1/8, 1/8. Samples at t = 1 / (1 - (j + .5)/4) = 8/7, 8/5, 8/3, 8:
    # depth = 4/7 + 2/5 + 1/3 + 1 = 2.3048; colour raw 0 everywhere -> grey 0.5.
    bg = BackgroundField([[-1, -1, -1], [1, 1, 1]], 8, samples=4)
    raw = math.log(math.expm1(4 * math.log(2) / float(bg.density_scale))) - float(bg.density_shift)
    with torch.no_grad():
        bg.grid[:, 0] = raw
    out = bg.render(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]), torch.ones(1))
    assert out.depth.item() == pytest.approx(4 / 7 + 2 / 5 + 1 / 3 + 1, abs=1e-4)
    assert torch.allclose(out.rgb, torch.full((1, 3), 0.5))


def room_field() -> VoxelField:
    """A ball in the box [-1, 1]^3, and a room around it: a dense shell at contracted radius ~1.5
    (twice the box, in box units) whose colour varies with direction."""
    outside = BackgroundField([[-1, -1, -1], [1, 1, 1]], 24, samples=24)
    field = VoxelField([[-1, -1, -1], [1, 1, 1]], (20, 20, 20), near=0.2, outside=outside)
    axis = torch.linspace(-1, 1, 20)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    side = torch.linspace(-2, 2, 24)
    bz, by, bx = torch.meshgrid(side, side, side, indexing="ij")
    shell = 6.0 - 30.0 * (torch.stack([bx, by, bz]).abs().amax(0) - 1.5).abs()
    with torch.no_grad():
        field.density.copy_(torch.where(xx**2 + yy**2 + zz**2 < 0.4, 8.0, -20.0)[None, None])
        field.color.copy_(torch.stack([4 * xx, 4 * yy, 4 * zz])[None])
        outside.grid.copy_(torch.stack([shell, 3 * torch.sin(2 * bx), 3 * torch.cos(2 * by), 2 * bz])[None])
    field.update_occupancy()
    return field


def _camera(position) -> np.ndarray:
    forward = -np.asarray(position, float) / np.linalg.norm(position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    T[:3, 3] = position
    return T.astype(np.float32)


def test_unbounded_field_composites_and_keeps_the_background_out_of_the_mask_samples(tmp_path):
    field = room_field()
    assert field.kind == "unbounded" and not field.background_from_exit
    K = np.array([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]], np.float32)
    view = render_view(field, K, _camera([2.5, 1.0, 0.5]), 32, 32, keep_weights=True, weight_cutoff=0.0)
    s = view.samples
    kept = torch.zeros(32 * 32).index_add(0, s.ray_ids, s.weights).reshape(32, 32)
    assert torch.allclose(kept, view.opacity, atol=1e-5)          # only foreground samples are kept
    assert 0.1 < float(view.opacity.mean()) < 0.9                 # the ball, and the room around it
    assert float(view.rgb[view.opacity < 0.01].std(0).min()) > 0.1  # the room is not one colour
    save_field(tmp_path / "f.pt", field, scene_hash="s")
    again = load_field(tmp_path / "f.pt", scene_hash="s")
    assert again.kind == "unbounded" and again.outside.samples == 24
    assert torch.equal(render_view(again, K, _camera([2.5, 1.0, 0.5]), 32, 32, keep_weights=True).rgb, view.rgb)


def _room_scene(size: int = 24, views: int = 16) -> Scene:
    truth = room_field()
    K = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], np.float32)
    poses = [_camera([3 * math.cos(a), 3 * math.sin(a), 0.6 + 0.4 * (i % 2)])
             for i, a in enumerate(np.linspace(0, 2 * math.pi, views, endpoint=False))]
    images = [(render_view(truth, K, T, size, size).rgb.numpy() * 255).round().astype(np.uint8) for T in poses]
    test = tuple(range(0, views, 8))
    return Scene(name="room", source="test", kind="colmap", images=np.stack(images),
                 K=np.repeat(K[None], views, 0), T_world_camera=np.stack(poses),
                 view_names=tuple(f"v{i}" for i in range(views)),
                 train_ids=tuple(i for i in range(views) if i not in test), test_ids=test,
                 bbox=np.array([[-1, -1, -1], [1, 1, 1]], np.float32), near=0.2, far=20.0)


def test_background_weights_hold_what_the_box_leaves():
    # The background bins' weights returned for the distortion loss are scaled by the transmittance
    # that leaves the box: with the foreground's, they sum to 1 on every ray.
    field = room_field()
    K = np.array([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]], np.float32)
    origins, dirs = camera_rays(K, _camera([2.5, 1.0, 0.5]), 32, 32)
    with torch.no_grad():
        out = render_rays(field, origins, dirs)
    assert out.background_weights.shape == (32 * 32, 24)
    total = out.opacity + out.background_weights.sum(1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    assert 0.1 < float(out.opacity.mean()) < 0.9                  # both parts carry weight


def test_the_room_counts_as_not_object_in_a_views_masks():
    # An unbounded field's view weights add the weight that reaches the background grid to each
    # pixel's total (the backdrop), so a 3D mask of every box voxel covers a pixel by the box's
    # opacity only: the ball's pixels are object, the pixels that see the room are not.
    from components.camera import Camera
    from systems.inverse.frozen import frozen_view_weights
    from systems.inverse.ops import coverage_mask

    field = room_field()
    K = np.array([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]], np.float32)
    view, rendered = frozen_view_weights(field, Camera(K, _camera([2.5, 1.0, 0.5]), 32, 32),
                                         weight_cutoff=1e-3, min_entry=0.0)
    assert np.allclose(view.pixel_weight.reshape(32, 32), 1.0, atol=1e-2)
    everything = np.ones((1, *field.resolution), np.float32)
    mask = coverage_mask(view, everything)[0]                             # [H, W]
    opacity = rendered.opacity.numpy()
    assert mask[opacity > 0.9].all() and not mask[opacity < 0.1].any()
    assert 0.05 < mask.mean() < 0.95


def test_training_models_the_room_around_the_box():
    scene = _room_scene()
    config = TrainConfig(resolution=16, background_resolution=16, background_samples=16, batch_rays=1024,
                         max_iterations=200, stage_starts=(0.0, 0.1, 0.3))
    unbounded = train_field(scene, max_seconds=None, config=config)
    box = train_field(scene, max_seconds=None, config=dataclasses.replace(config, space="box"))
    assert unbounded.field.kind == "unbounded" and box.field.kind == "box"
    assert unbounded.test_psnr > box.test_psnr + 2.0
    assert evaluate_psnr(unbounded.field, scene, scene.train_ids[:2]) > 20.0


def test_a_training_view_scores_alike_in_the_training_batches_and_in_the_evaluation():
    # The room scene's photos are renders of room_field, so the evaluation (render_view of a view's
    # pose) scores a training view as its own photo, and the rays and colours that training batches
    # are drawn from must line up with it pixel for pixel: rendered without jitter they give the
    # evaluation's image, with the training path's jitter they stay near it; a pose, size or
    # half-pixel mismatch between the two paths would not (a one-pixel shift drops under 22 dB).
    scene, truth = _room_scene(), room_field()
    origins, dirs, colours = _training_rays(scene, "cpu")
    n = scene.H * scene.W
    for k in range(2):
        rays = slice(k * n, (k + 1) * n)
        view = render_view(truth, scene.K[scene.train_ids[k]], scene.T_world_camera[scene.train_ids[k]],
                           scene.H, scene.W)
        assert evaluate_psnr(truth, scene, [scene.train_ids[k]]) > 45.0
        with torch.no_grad():
            plain = render_rays(truth, origins[rays], dirs[rays]).rgb.clamp(0, 1)
            batch = render_training_rays(truth, origins[rays], dirs[rays], torch.zeros(truth.resolution)).rgb
        assert torch.allclose(plain, view.rgb.reshape(-1, 3), atol=1e-3)
        truth_colours = colours[rays].reshape(scene.H, scene.W, 3)
        assert _psnr(batch, truth_colours.reshape(-1, 3)) > 28.0
        assert _psnr(batch, truth_colours.roll(1, 1).reshape(-1, 3)) < 22.0


def _psnr(rgb: torch.Tensor, target: torch.Tensor) -> float:
    return -10.0 * math.log10(float(((rgb - target) ** 2).mean()))


def test_the_inner_cube_holds_the_box_and_the_cameras():
    box = [[-1.0, -0.5, 0.0], [1.0, 0.5, 1.0]]                          # centre (0, 0, 0.5)
    assert inner_half_extent(box, np.array([[3.0, 0.0, 0.5], [0.0, -2.0, 1.0]])) == pytest.approx(3.0)
    assert inner_half_extent(box, np.array([[0.2, 0.1, 0.4]])) == pytest.approx(1.0)   # the box's own
    bg = BackgroundField(box, 8, samples=4, half_extent=3.0)
    assert bg.half_extent.tolist() == [3.0, 3.0, 3.0] and bg.centre.tolist() == [0.0, 0.0, 0.5]


def test_space_between_the_box_and_the_cameras_is_linear_and_beyond_them_contracted():
    # Inner cube of half size 4 around the origin; a ray from a camera at (3, 0, 0) along +x from
    # t_s = 0.5 has its 4 samples at t = 0.5 / (1 - (j + 0.5) / 4) = 0.571, 0.8, 1.333, 4, i.e. at
    # x = 3.571, 3.8 (inside the cube: contracted x = x / 4 = 0.893, 0.95), 4.333, 7 (beyond:
    # 2 - 4 / x). The grid is opaque only for contracted x in [0.9375, 1] and its raw red is the
    # contracted x: the second sample takes all the weight, with red sigmoid(0.95).
    bg = BackgroundField([[-1, -1, -1], [1, 1, 1]], 65, samples=4, half_extent=4.0)
    side = torch.linspace(-2, 2, 65)                                     # 1/16 apart
    with torch.no_grad():
        bg.grid[:, 0] = torch.where((side >= 0.93) & (side <= 1.01), 30.0, -30.0).view(1, 1, 65)
        bg.grid[0, 1] = side.view(1, 1, 65).expand(65, 65, 65)
    out = bg.render(torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0.5]))
    assert out.depth.item() == pytest.approx(0.8, abs=0.01)
    assert out.rgb[0, 0].item() == pytest.approx(float(torch.sigmoid(torch.tensor(0.95))), abs=1e-3)
    box = BackgroundField([[-1, -1, -1], [1, 1, 1]], 65, samples=4)     # contracted from the box on
    box.grid.data.copy_(bg.grid.data)
    assert box.render(torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]),
                      torch.tensor([0.5])).depth.item() > 2.0              # 3.8 is 1.74 there: clear
