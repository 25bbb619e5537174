"""Fly and orbit camera math on OpenCV poses (pure numpy).

A pose is T_world_camera [4, 4]: columns 0, 1, 2 of its rotation are the camera's right, down and
forward axes in world coordinates, column 3 its position. `up` is the world's up direction [3]
(unit). Mouse deltas are window pixels (x right, y down); angles are radians.
"""

from __future__ import annotations

import math

import numpy as np

MAX_PITCH_COS = 0.995   # the forward axis never comes closer to straight up or down than this


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix [3, 3] by `angle` (right-handed) about the unit `axis` [3] (Rodrigues)."""
    x, y, z = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    c, s = math.cos(angle), math.sin(angle)
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return c * np.eye(3) + s * cross + (1 - c) * np.outer([x, y, z], [x, y, z])


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """T_world_camera [4, 4] at `position` [3] looking at `target` [3], camera down = -up projected."""
    forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:                      # looking straight along up: any right will do
        right = np.cross(forward, np.roll(up, 1))
    right /= np.linalg.norm(right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    T[:3, 3] = position
    return T


def world_up(T_views: np.ndarray) -> np.ndarray:
    """The world up direction [3] of a capture: minus the mean camera down axis of T_views [N, 4, 4]."""
    up = -np.asarray(T_views, np.float64)[:, :3, 1].mean(axis=0)
    norm = np.linalg.norm(up)
    return up / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])


def mouse_look(T: np.ndarray, dx: float, dy: float, up: np.ndarray, radians_per_pixel: float) -> np.ndarray:
    """Turn the camera in place: dx > 0 looks right (yaw about up), dy > 0 looks down (pitch).

    The pitch is dropped when it would bring the forward axis within MAX_PITCH_COS of up / down.
    """
    T = np.asarray(T, np.float64).copy()
    R = rotation(up, -dx * radians_per_pixel) @ T[:3, :3]
    pitched = rotation(R[:, 0], -dy * radians_per_pixel) @ R
    if abs(float(pitched[:, 2] @ up)) < MAX_PITCH_COS:
        R = pitched
    T[:3, :3] = _level(R, up)
    return T


def fly(T: np.ndarray, move: np.ndarray, rise: float, distance: float, up: np.ndarray) -> np.ndarray:
    """Translate by `distance` along move [3] = (right, down, forward) in camera axes plus `rise`
    along world up (each component in -1..1; the direction is normalised)."""
    T = np.asarray(T, np.float64).copy()
    direction = T[:3, :3] @ np.asarray(move, np.float64) + rise * np.asarray(up, np.float64)
    norm = np.linalg.norm(direction)
    if norm > 1e-9:
        T[:3, 3] += direction / norm * distance
    return T


def orbit(T: np.ndarray, target: np.ndarray, dx: float, dy: float, up: np.ndarray,
          radians_per_pixel: float) -> np.ndarray:
    """Swing the camera around `target` [3]: dx > 0 moves it left around the target (the scene
    turns right), dy > 0 moves it up; it keeps looking at the target."""
    T = np.asarray(T, np.float64)
    offset = T[:3, 3] - target
    yawed = rotation(up, -dx * radians_per_pixel) @ offset
    right = np.cross(-yawed, up)
    if np.linalg.norm(right) > 1e-9:
        pitched = rotation(right, -dy * radians_per_pixel) @ yawed
        if abs(float(pitched @ up)) / np.linalg.norm(pitched) < MAX_PITCH_COS:
            yawed = pitched
    return look_at(target + yawed, target, up)


def dolly(T: np.ndarray, target: np.ndarray, factor: float) -> np.ndarray:
    """Scale the camera's distance to `target` by factor (> 0), keeping its direction."""
    T = np.asarray(T, np.float64).copy()
    T[:3, 3] = target + (T[:3, 3] - target) * factor
    return T


def orbit_target(T: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The point on the camera's forward axis nearest to `centre` [3] (at least a small step ahead)."""
    T = np.asarray(T, np.float64)
    forward = T[:3, 2]
    depth = max(float((np.asarray(centre) - T[:3, 3]) @ forward), 1e-3)
    return T[:3, 3] + depth * forward


def nearest_view(T: np.ndarray, T_views: np.ndarray, scale: float) -> int:
    """Index of the view in T_views [N, 4, 4] closest to pose T: position distance / scale plus
    (1 - cos) of the angle between forward axes."""
    T_views = np.asarray(T_views, np.float64)
    dist = np.linalg.norm(T_views[:, :3, 3] - T[:3, 3], axis=1) / max(scale, 1e-9)    # [N]
    turn = 1.0 - T_views[:, :3, 2] @ np.asarray(T, np.float64)[:3, 2]                  # [N]
    return int(np.argmin(dist + turn))


def viewer_intrinsics(K_ref: np.ndarray, W_ref: int, H: int, W: int) -> np.ndarray:
    """K [3, 3] for an H x W viewer with the horizontal field of view of K_ref (a W_ref-wide
    image), square pixels and the principal point at the image centre."""
    f = float(K_ref[0, 0]) * W / W_ref
    return np.array([[f, 0.0, W / 2.0], [0.0, f, H / 2.0], [0.0, 0.0, 1.0]], np.float32)


def _level(R: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Re-orthonormalise R [3, 3] keeping its forward axis and a right axis perpendicular to up."""
    forward = R[:, 2] / np.linalg.norm(R[:, 2])
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        right = R[:, 0]
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward], axis=1)
