"""Pure helpers of the recorder: how far a camera moved, and whether a pose is worth a line."""

from __future__ import annotations

import math

import numpy as np


def pose_change(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(distance between the camera centres in world units, rotation angle in radians) of two
    camera-to-world poses T_a, T_b [4, 4]."""
    T_a = np.asarray(T_a, np.float64)
    T_b = np.asarray(T_b, np.float64)
    distance = float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))
    R = T_a[:3, :3].T @ T_b[:3, :3]                                 # [3, 3] relative rotation
    cos = (np.trace(R) - 1.0) / 2.0
    return distance, math.acos(min(1.0, max(-1.0, cos)))


def keep_pose(T_new: np.ndarray, t_new: float, T_last: np.ndarray | None, t_last: float, *,
              max_hz: float, min_move: float, min_turn: float) -> bool:
    """Whether a camera pose T_new [4, 4] at time t_new (s) is recorded, given the last recorded
    one (T_last at t_last, None if none): at most `max_hz` poses per second, and only when the
    camera moved more than `min_move` world units or turned more than `min_turn` radians."""
    if T_last is None:
        return True
    if t_new - t_last < 1.0 / max_hz:
        return False
    distance, angle = pose_change(T_last, T_new)
    return distance > min_move or angle > min_turn
