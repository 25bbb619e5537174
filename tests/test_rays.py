"""Camera rays and ray-box intersection on hand-checkable cases."""

import numpy as np
import pytest
import torch

from engine.math.rays import camera_rays, ray_box


def test_camera_rays_pixel_centres_and_depth_convention():
    K = np.array([[2.0, 0, 2.0], [0, 2.0, 1.0], [0, 0, 1]], np.float32)   # W=4, H=2, cx=2, cy=1
    T = np.eye(4, dtype=np.float32)
    T[:3, 3] = [1.0, 2.0, 3.0]
    origins, dirs = camera_rays(K, T, 2, 4)
    assert origins.shape == (8, 3) and dirs.shape == (8, 3)
    assert torch.allclose(origins, torch.tensor([1.0, 2.0, 3.0]).expand(8, 3))
    # pixel (x=0, y=0): centre (0.5, 0.5) -> ((0.5 - 2) / 2, (0.5 - 1) / 2, 1)
    assert torch.allclose(dirs[0], torch.tensor([-0.75, -0.25, 1.0]))
    # pixel (x=3, y=1) is index 1 * 4 + 3 = 7: centre (3.5, 1.5)
    assert torch.allclose(dirs[7], torch.tensor([0.75, 0.25, 1.0]))


def test_camera_rays_rotate_with_the_camera():
    K = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]], np.float32)
    T = np.eye(4, dtype=np.float32)
    T[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]   # third column: camera +Z looks along world +X
    _, dirs = camera_rays(K, T, 1, 1)
    assert torch.allclose(dirs[0], torch.tensor([1.0, 0.0, 0.0]))   # the camera's z axis in world


def test_ray_box_enter_exit_and_miss():
    bbox = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[0.5, 0.5, -1.0], [0.5, 0.5, 0.5], [2.0, 2.0, -1.0], [-1.0, 0.5, 0.5]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    t_enter, t_exit = ray_box(origins, dirs, bbox)
    assert torch.allclose(t_enter[[0, 1, 3]], torch.tensor([1.0, -0.25, 1.0]))
    assert torch.allclose(t_exit[[0, 1, 3]], torch.tensor([2.0, 0.25, 2.0]))
    assert t_exit[2] <= t_enter[2]


def test_ndc_maps_near_to_minus_one_and_round_trips():
    from engine.math.rays import ndc_to_world, world_to_ndc

    points = torch.tensor([[0.3, -0.2, 0.9], [1.0, 2.0, 4.0], [-2.0, 0.5, 100.0]])
    ndc = world_to_ndc(points, 0.9, (1.5, 2.0))
    assert ndc[0, 2].item() == pytest.approx(-1.0)
    # x = 1.5 * 1 / 4, y = 2 * 2 / 4, z = 1 - 2 * 0.9 / 4
    assert torch.allclose(ndc[1], torch.tensor([0.375, 1.0, 0.55]))
    assert torch.allclose(ndc_to_world(ndc, 0.9, (1.5, 2.0)), points, rtol=1e-5)


def test_ndc_rays_are_the_images_of_world_rays():
    from engine.math.rays import ndc_rays, world_to_ndc

    origins = torch.tensor([[0.1, -0.05, 0.02], [0.0, 0.0, -0.1]])
    dirs = torch.tensor([[0.2, 0.1, 1.0], [-0.3, 0.4, 1.0]])
    o_ndc, d_ndc = ndc_rays(origins, dirs, 1.0, (1.2, 1.6))
    assert torch.allclose(o_ndc[:, 2], torch.tensor([-1.0, -1.0]))
    for t in (0.5, 2.0, 9.0):                      # world points beyond the near plane z = 1
        world = origins + t * dirs                 # [2, 3]
        s = 1.0 - 1.0 / world[:, 2]                # world z = near / (1 - s)
        assert torch.allclose(o_ndc + s[:, None] * d_ndc, world_to_ndc(world, 1.0, (1.2, 1.6)), atol=1e-5)
