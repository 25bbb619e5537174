"""Fly / orbit camera math with hand-checked poses (world +z up, camera at the origin looking +x)."""

import math

import numpy as np

from systems.camera import ops

UP = np.array([0.0, 0.0, 1.0])


def start_pose():
    return ops.look_at(np.zeros(3), np.array([1.0, 0.0, 0.0]), UP)


def test_look_at_builds_an_opencv_frame():
    T = start_pose()
    R = T[:3, :3]
    # right = forward x up = (1,0,0) x (0,0,1) = (0,-1,0); down = -up.
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(R[:, 1], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(R[:, 2], [1, 0, 0], atol=1e-12)
    assert math.isclose(np.linalg.det(R), 1.0)


def test_mouse_look_right_and_down():
    T = ops.mouse_look(start_pose(), dx=100, dy=0, up=UP, radians_per_pixel=math.pi / 400)
    # 45 degrees to the right of +x is (1, -1, 0) / sqrt 2.
    np.testing.assert_allclose(T[:3, 2], [math.sqrt(0.5), -math.sqrt(0.5), 0], atol=1e-9)
    T = ops.mouse_look(start_pose(), dx=0, dy=100, up=UP, radians_per_pixel=math.pi / 400)
    np.testing.assert_allclose(T[:3, 2], [math.sqrt(0.5), 0, -math.sqrt(0.5)], atol=1e-9)
    np.testing.assert_allclose(T[:3, 3], 0)


def test_mouse_look_never_flips_over_the_pole():
    T = ops.mouse_look(start_pose(), dx=0, dy=-1000, up=UP, radians_per_pixel=math.pi / 400)
    np.testing.assert_allclose(T[:3, 2], [1, 0, 0], atol=1e-9)   # a 450 degree pitch is refused
    assert abs(T[:3, 2] @ UP) < ops.MAX_PITCH_COS


def test_fly_moves_along_camera_axes_and_world_up():
    T = ops.fly(start_pose(), move=[0, 0, 1], rise=0, distance=2.0, up=UP)   # W: forward
    np.testing.assert_allclose(T[:3, 3], [2, 0, 0], atol=1e-12)
    T = ops.fly(start_pose(), move=[1, 0, 0], rise=0, distance=1.0, up=UP)   # D: right = -y
    np.testing.assert_allclose(T[:3, 3], [0, -1, 0], atol=1e-12)
    T = ops.fly(start_pose(), move=[0, 0, 1], rise=1, distance=math.sqrt(2), up=UP)  # W + E
    np.testing.assert_allclose(T[:3, 3], [1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(ops.fly(start_pose(), [0, 0, 0], 0, 5.0, UP), start_pose())


def test_orbit_keeps_distance_and_looks_at_the_target():
    target = np.array([3.0, 0.0, 0.0])
    T = ops.orbit(start_pose(), target, dx=200, dy=0, up=UP, radians_per_pixel=math.pi / 400)
    # A quarter turn: from (0,0,0) around (3,0,0) by -90 degrees about +z -> (3, 3, 0).
    np.testing.assert_allclose(T[:3, 3], [3, 3, 0], atol=1e-9)
    np.testing.assert_allclose(T[:3, 2], [0, -1, 0], atol=1e-9)
    T = ops.orbit(start_pose(), target, dx=0, dy=100, up=UP, radians_per_pixel=math.pi / 400)
    assert T[2, 3] > 0 and math.isclose(np.linalg.norm(T[:3, 3] - target), 3.0)
    np.testing.assert_allclose(T[:3, 3] + 3.0 * T[:3, 2], target, atol=1e-9)


def test_dolly_and_orbit_target():
    target = ops.orbit_target(start_pose(), np.array([4.0, 1.0, 0.5]))
    np.testing.assert_allclose(target, [4, 0, 0])
    T = ops.dolly(start_pose(), target, 0.5)
    np.testing.assert_allclose(T[:3, 3], [2, 0, 0])


def test_world_up_and_nearest_view():
    views = np.stack([ops.look_at(np.array([4.0 * math.cos(a), 4.0 * math.sin(a), 2.0]), np.zeros(3), UP)
                      for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)])
    up = ops.world_up(views)
    assert up[2] > 0.99
    near_view_3 = views[3].copy()
    near_view_3[:3, 3] += [0.1, -0.1, 0.2]
    assert ops.nearest_view(near_view_3, views, scale=4.0) == 3


def test_viewer_intrinsics_keep_the_horizontal_field_of_view():
    K = ops.viewer_intrinsics(np.array([[100.0, 0, 64], [0, 100.0, 64], [0, 0, 1]]), 128, H=360, W=640)
    np.testing.assert_allclose(K, [[500, 0, 320], [0, 500, 180], [0, 0, 1]])
