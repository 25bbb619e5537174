"""Cameras of a splat scene: the 3DGS output's `cameras.json`, or an orbit around the splats.

`cameras.json` (written by the INRIA trainer) lists per view `img_name`, `width`, `height`,
`position` (the camera centre), `rotation` (3x3 camera-to-world, COLMAP/OpenCV axes: +X right,
+Y down, +Z forward) and `fx`, `fy`; the principal point is the image centre. Views of another
size than the most common one are rescaled to it (intrinsics scaled, the pose kept).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.scenes.builtin_render import look_at
from engine.splats.cloud import SplatError

ORBIT_SIZE = (378, 504)          # H, W of the orbit views
ORBIT_FOV_X_DEG = 50.0
ORBIT_RINGS = ((15.0, 24), (45.0, 12))    # (elevation in degrees, views) per ring


@dataclass(frozen=True)
class Cameras:
    K: np.ndarray                  # [N, 3, 3] float32
    T_world_camera: np.ndarray     # [N, 4, 4] float32, OpenCV camera to world
    H: int
    W: int
    names: tuple[str, ...]


def read_cameras_json(path: Path, downscale: int = 1) -> Cameras:
    """The views of a 3DGS `cameras.json`; SplatError naming the entry and key that is wrong."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SplatError(f"cannot read {path} ({error}); remove it to orbit the splats instead") from None
    if not isinstance(entries, list) or not entries:
        raise SplatError(f"{path} is not a list of cameras; give the cameras.json the 3DGS trainer wrote")
    views = []
    for i, entry in enumerate(entries):
        try:
            rotation = np.asarray(entry["rotation"], np.float64).reshape(3, 3)
            position = np.asarray(entry["position"], np.float64).reshape(3)
            size = (int(entry["height"]), int(entry["width"]))
            focal = (float(entry["fx"]), float(entry["fy"]))
            name = str(entry.get("img_name", f"view_{i:03d}"))
        except (KeyError, TypeError, ValueError) as error:
            raise SplatError(f"{path}: camera {i} has a missing or malformed key ({error!r}); each needs "
                             "img_name, width, height, position [3], rotation [3][3], fx, fy") from None
        if min(size) <= 0 or min(focal) <= 0 or not (np.isfinite(rotation).all() and np.isfinite(position).all()):
            raise SplatError(f"{path}: camera {i} ({name}) has a non-positive size or focal length or "
                             "non-finite pose; fix or remove it")
        views.append((name, rotation, position, size, focal))
    H, W = Counter(v[3] for v in views).most_common(1)[0][0]
    H, W = H // downscale, W // downscale
    K = np.zeros((len(views), 3, 3), np.float32)
    T = np.tile(np.eye(4, dtype=np.float32), (len(views), 1, 1))
    for i, (_, rotation, position, (h, w), (fx, fy)) in enumerate(views):
        K[i] = [[fx * W / w, 0, W / 2], [0, fy * H / h, H / 2], [0, 0, 1]]
        T[i, :3, :3], T[i, :3, 3] = rotation, position
    names = _unique([v[0] for v in views])
    return Cameras(K, T, H, W, names)


def _unique(names: list[str]) -> tuple[str, ...]:
    """Names with a suffix added to repeats, so that every view has its own."""
    seen: Counter = Counter()
    out = []
    for name in names:
        out.append(name if not seen[name] else f"{name}_{seen[name]}")
        seen[name] += 1
    return tuple(out)


def orbit_cameras(means: np.ndarray, opacity: np.ndarray, downscale: int = 1) -> Cameras:
    """Views on ORBIT_RINGS around the splats' robust centre, looking at it, ORBIT_SIZE / downscale pixels.

    The centre is the median of the Gaussians with opacity > 0.1 (all when none), the radius the
    80th percentile of their distance to it, seen so that it fills 0.7 of the view's width. Up is the
    axis along which those Gaussians spread least (a ground or table is flat), pointing to where
    their mean lies from their median (the ground holds most of them, what stands on it rises above)."""
    solid = means[opacity > 0.1] if (opacity > 0.1).any() else means
    centre = np.median(solid, axis=0)
    offsets = solid - centre
    radius = max(float(np.percentile(np.linalg.norm(offsets, axis=1), 80)), 1e-3)
    _, _, axes = np.linalg.svd(offsets - offsets.mean(0), full_matrices=False)
    up = axes[-1] * (1.0 if (offsets @ axes[-1]).mean() >= 0 else -1.0)       # offsets: from the median
    H, W = ORBIT_SIZE[0] // downscale, ORBIT_SIZE[1] // downscale
    f = 0.5 * W / np.tan(np.radians(ORBIT_FOV_X_DEG) / 2)
    distance = radius * f / (0.35 * W)
    side = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    R_world_local = np.stack([side, np.cross(up, side), up], 1)             # local +Z = up
    poses = []
    for elevation, count in ORBIT_RINGS:
        e = np.radians(elevation)
        for a in 2 * np.pi * np.arange(count) / count:
            local = look_at(distance * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)]),
                            np.zeros(3))
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R_world_local @ local[:3, :3], centre + R_world_local @ local[:3, 3]
            poses.append(T)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], np.float32)
    names = tuple(f"orbit_{i:03d}" for i in range(len(poses)))
    return Cameras(np.tile(K, (len(poses), 1, 1)), np.stack(poses).astype(np.float32), H, W, names)
