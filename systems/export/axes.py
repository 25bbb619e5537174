"""Which way is up: the scene's up axis from its cameras, and the turn that puts it where a file
format expects it (OBJ: +Y, PLY as Blender, MeshLab and Open3D show it: +Z).

Scenes keep their loaders' world frames (the built-in scene is +Z up; LLFF worlds are recentred on
the cameras, +Z along the mean view). The up axis is the world axis nearest to the mean of the
cameras' up directions (-Y of each OpenCV camera): people hold cameras upright, and an orbit or a
forward-facing capture tilts them about that axis. Exports turn the world by a rotation made of
axis swaps and sign flips (a multiple of 90 degrees: lengths, handedness and the faces' winding
stay as they are), written into each file's header.
"""

from __future__ import annotations

import numpy as np

FILE_UP = {"y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}


def scene_up(T_world_cameras: np.ndarray) -> np.ndarray:
    """[3] the world axis (a signed unit vector) nearest to the cameras' mean up direction, from
    camera poses [N, 4, 4] (OpenCV: +Y down). +Z when the cameras give no direction."""
    ups = -np.asarray(T_world_cameras, np.float64)[:, :3, 1]                       # [N, 3]
    mean = ups.mean(0)
    if not np.isfinite(mean).all() or np.linalg.norm(mean) < 1e-9:
        return FILE_UP["z"].copy()
    axis = int(np.argmax(np.abs(mean)))
    up = np.zeros(3)
    up[axis] = np.sign(mean[axis])
    return up


def up_rotation(world_up: np.ndarray, file_up: str) -> np.ndarray:
    """[3, 3] rotation (integer entries, det +1) taking the signed axis `world_up` to the file's up
    axis `file_up` ("y" or "z"), by the smallest turn."""
    u, t = np.asarray(world_up, np.float64), FILE_UP[file_up]
    if np.allclose(u, t):
        return np.eye(3)
    if np.allclose(u, -t):                     # half a turn about an axis perpendicular to both
        a = np.roll(t, 1)
        return 2.0 * np.outer(a, a) - np.eye(3)
    a = np.cross(u, t)                         # a quarter turn about u x t
    cross = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.round(np.outer(a, a) + cross).astype(np.float64)


def describe(rotation: np.ndarray) -> str:
    """'file (x, y, z) = world (x, z, -y)': what each file axis holds, for a file's header."""
    names = []
    for row in np.asarray(rotation):
        axis = int(np.argmax(np.abs(row)))
        names.append(("-" if row[axis] < 0 else "") + "xyz"[axis])
    return f"file (x, y, z) = world ({', '.join(names)})"
