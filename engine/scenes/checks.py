"""Checks of the numbers a scene file holds, made where they are read: type, shape and finiteness.

Every failure is a SceneError that names the file, the entry (frame, row, camera) and the fix, so a
NaN in one pose is reported as that pose instead of surfacing later as a failed SVD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.scenes.scene import SceneError

ROTATION_TOLERANCE = 1e-2   # |R^T R - I| above this: the 3x3 part is not a rotation


def numbers(value, shape: tuple[int, ...] | tuple[tuple[int, ...], ...], where: str, fix: str) -> np.ndarray:
    """float64 array of `value` with one of the shapes given, every entry finite; SceneError naming
    `where` (file and entry) and `fix` otherwise. `shape` is one shape or a tuple of allowed shapes."""
    shapes = shape if shape and isinstance(shape[0], tuple) else (shape,)
    if isinstance(value, (str, bytes, bool)):
        raise SceneError(f"{where} is {type(value).__name__} {str(value)[:40]!r}, not numbers; {fix}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SceneError(f"{where} is not numbers ({str(value)[:60]}); {fix}") from None
    if array.shape not in shapes:
        wanted = " or ".join("x".join(map(str, s)) or "a number" for s in shapes)
        raise SceneError(f"{where} has shape {'x'.join(map(str, array.shape)) or 'scalar'}, expected {wanted}; {fix}")
    if not np.isfinite(array).all():
        raise SceneError(f"{where} holds NaN or infinity; {fix}")
    return array


def number(value, where: str, fix: str, *, positive: bool = False) -> float:
    """One finite float (positive when asked); SceneError naming `where` otherwise."""
    result = float(numbers(value, (), where, fix))
    if positive and result <= 0:
        raise SceneError(f"{where} is {result:g}, it must be positive; {fix}")
    return result


def check_cameras(K: np.ndarray, T_world_camera: np.ndarray, names: list[str] | tuple[str, ...],
                  where: Path | str, fix: str) -> None:
    """Refuse intrinsics K [N, 3, 3] or poses T_world_camera [N, 4, 4] that are not finite, have a
    focal length <= 0 or a rotation part that is not a rotation; the message names the view. The
    check runs on their float32 values (what the scene keeps), so 1e308 counts as infinite."""
    with np.errstate(over="ignore", invalid="ignore"):
        K, T_world_camera = K.astype(np.float32), T_world_camera.astype(np.float32)
    for i, name in enumerate(names):
        if not (np.isfinite(K[i]).all() and np.isfinite(T_world_camera[i]).all()):
            raise SceneError(f"{where}: the camera of view {name} holds NaN or infinity; {fix}")
        if K[i, 0, 0] <= 0 or K[i, 1, 1] <= 0:
            raise SceneError(f"{where}: view {name} has focal length {K[i, 0, 0]:g}, {K[i, 1, 1]:g}; "
                             f"it must be positive; {fix}")
        R = T_world_camera[i, :3, :3].astype(np.float64)
        if np.abs(R.T @ R - np.eye(3)).max() > ROTATION_TOLERANCE or np.linalg.det(R) <= 0:
            raise SceneError(f"{where}: the pose of view {name} is not a rotation and a position "
                             f"(its 3x3 part is not orthonormal); {fix}")


def check_region(bbox, near: float, far: float, where: Path | str, *, nonempty: bool = False) -> None:
    """Refuse a scene box or near / far bounds that are not finite; when `nonempty` (a field is to
    be trained in them), also a box with a side <= 0 and bounds that are not 0 <= near < far."""
    box = np.asarray(bbox, dtype=np.float64)
    if box.shape != (2, 3) or not np.isfinite(box).all() or (nonempty and not (box[0] < box[1]).all()):
        raise SceneError(f"{where}: the scene box {box.tolist()} is not a finite [min, max] pair with "
                         "min < max; fix the box in the scene file, or pass train --bbox=X0,Y0,Z0,X1,Y1,Z1")
    if not (np.isfinite(near) and np.isfinite(far)) or (nonempty and not 0 <= near < far):
        raise SceneError(f"{where}: near {near:g} and far {far:g} must be finite with 0 <= near < far; "
                         "fix them in the scene file")
