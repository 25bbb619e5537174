"""The built-in table-top scene: its objects, cameras and a vectorised numpy ray tracer.

World frame: +Z up, ground = the textured square |x|, |y| <= GROUND_HALF of the plane z = 0.
Everything a camera sees is either inside BBOX (ground and objects) or the constant BACKGROUND
colour, so a field that models only BBOX and composites onto BACKGROUND can reproduce the images.
Shading is Lambert + ambient with one fixed light and no shadows (colours depend on the surface
only, never on the view), plus a soft fake contact shadow on the ground. Pure numpy, deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.scenes.builtin_geometry import Box, Cone, Cylinder, GroundSquare, Sphere, rows_times

GROUND_HALF = 1.0
BBOX = np.array([[-1.05, -1.05, -0.05], [1.05, 1.05, 0.8]], dtype=np.float32)  # [2, 3] min / max
BACKGROUND = (0.80, 0.87, 0.96)          # sky-blue backdrop behind everything outside BBOX
LIGHT_DIR = np.array([0.45, -0.55, 0.75]) / np.linalg.norm([0.45, -0.55, 0.75])  # towards the light
AMBIENT = 0.38
FOV_X_DEG = 34.0
TARGET = np.array([0.0, 0.0, 0.25])       # point every orbit camera looks at
NEAR, FAR = 1.0, 5.5                      # camera depth range covering BBOX from every camera


@dataclass(frozen=True)
class SceneObject:
    name: str                              # short lowercase name
    color: tuple[float, float, float]      # albedo in [0, 1]
    shape: Sphere | Box | Cylinder | Cone


OBJECTS: tuple[SceneObject, ...] = (
    SceneObject("sphere", (0.86, 0.16, 0.13), Sphere((0.40, -0.22, 0.28), 0.28)),
    SceneObject("box", (0.16, 0.36, 0.86), Box((-0.32, -0.28, 0.20), (0.20, 0.20, 0.20), 20.0)),
    SceneObject("cylinder", (0.16, 0.68, 0.26), Cylinder((-0.18, 0.40), 0.16, 0.0, 0.55)),
    SceneObject("cone", (0.95, 0.80, 0.15), Cone((0.42, 0.40), 0.20, 0.0, 0.50)),
    SceneObject("block", (0.58, 0.26, 0.76), Box((-0.30, -0.30, 0.52), (0.15, 0.10, 0.12), -25.0)),
)
GROUND = GroundSquare(GROUND_HALF)


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[4, 4] T_world_camera (OpenCV: +Z forward, +Y down) at `position` looking at `target`."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, np.cross(forward, right), forward], 1)
    T[:3, 3] = position
    return T


def camera_poses() -> np.ndarray:
    """[60, 4, 4] T_world_camera: two orbit rings (24 + 24 views) and 12 forward-facing views."""
    poses = []
    for elevation, radius, offset in ((22.0, 3.3, 0.0), (48.0, 3.1, 7.5)):
        for azimuth in np.arange(24) * 15.0 + offset:
            a, e = np.radians(azimuth), np.radians(elevation)
            position = TARGET + radius * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a),
                                                   np.sin(e)])
            poses.append(look_at(position, TARGET))
    centre = look_at(TARGET + 3.2 * np.array([0.0, -np.cos(0.55), np.sin(0.55)]), TARGET)
    for dy in (-0.3, 0.0, 0.3):                    # forward-facing: one shared viewing direction
        for dx in (-0.45, -0.15, 0.15, 0.45):
            T = centre.copy()
            T[:3, 3] += centre[:3, :3] @ np.array([dx, dy, 0.0])
            poses.append(T)
    return np.stack(poses)


def intrinsics(size: int) -> np.ndarray:
    """[3, 3] pixel intrinsics of a size x size image with a FOV_X_DEG horizontal field of view."""
    f = 0.5 * size / np.tan(np.radians(FOV_X_DEG) / 2)
    return np.array([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])


def trace(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First hit of rays o, d [M, 3]: t [M] (inf = background), id [M] (-1 background, 0 ground,
    k = object k), normal [M, 3]. Objects only test the rays that pass their bounding sphere."""
    t_best, normals = GROUND.intersect(o, d)
    normals = np.array(normals)
    ids = np.where(np.isfinite(t_best), 0, -1)
    for k, obj in enumerate(OBJECTS, start=1):
        centre, radius = bounding_sphere(obj.shape)
        oc = o - centre                                                           # [M, 3]
        dd, od = (d * d).sum(1), (oc * d).sum(1)
        near = np.flatnonzero(od * od - dd * ((oc * oc).sum(1) - radius ** 2) >= 0)
        t, n = obj.shape.intersect(o[near], d[near])
        closer = t < t_best[near]
        rows = near[closer]
        t_best[rows], ids[rows], normals[rows] = t[closer], k, n[closer]
    return t_best, ids, normals


def bounding_sphere(shape) -> tuple[np.ndarray, float]:
    """Centre [3] and radius of a sphere enclosing a primitive."""
    if isinstance(shape, Sphere):
        return np.asarray(shape.center), shape.radius
    if isinstance(shape, Box):
        return np.asarray(shape.center), float(np.linalg.norm(shape.half_size))
    if isinstance(shape, Cylinder):
        half = 0.5 * (shape.z1 - shape.z0)
        return np.array([*shape.center_xy, shape.z0 + half]), float(np.hypot(shape.radius, half))
    half = 0.5 * shape.height
    return np.array([*shape.center_xy, shape.z0 + half]), float(np.hypot(shape.radius, half))


def ground_albedo(xy: np.ndarray) -> np.ndarray:
    """[M, 3] ground colour at [M, 2] points: a soft two-tone checker, low-frequency tint and
    darkening around each object's footprint (a fake contact shadow)."""
    cell = np.floor(xy / 0.25).astype(np.int64).sum(1) % 2                    # [M]
    base = np.where(cell[:, None] == 1, [0.80, 0.76, 0.68], [0.56, 0.52, 0.46])
    tint = 1.0 + 0.07 * np.sin(3.1 * xy[:, :1] + 1.3) * np.cos(2.3 * xy[:, 1:] - 0.4)
    shade = np.ones(len(xy))
    for obj in OBJECTS:
        c, r = _footprint(obj.shape)
        gap = np.maximum(np.linalg.norm(xy - c, axis=1) - r, 0.0)
        shade *= 1.0 - 0.35 * np.exp(-(gap / 0.12) ** 2)
    return base * tint * shade[:, None]


def _footprint(shape) -> tuple[np.ndarray, float]:
    """Centre [2] and radius of a disk roughly covering where a shape rests on the ground."""
    if isinstance(shape, Sphere):
        return np.asarray(shape.center[:2]), 0.12 * shape.radius
    if isinstance(shape, Box):
        return np.asarray(shape.center[:2]), 0.9 * min(shape.half_size[:2])
    return np.asarray(shape.center_xy), 0.9 * shape.radius


def shade(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trace and shade rays [M, 3]: rgb [M, 3] in [0, 1], object id [M] (0 = ground/background,
    k = object k) and hit t [M] (inf for background)."""
    t, ids, normals = trace(o, d)
    rgb = np.tile(np.asarray(BACKGROUND), (len(o), 1))
    hit = ids >= 0
    p = o[hit] + t[hit, None] * d[hit]
    colors = np.array([obj.color for obj in OBJECTS])
    albedo = np.where((ids[hit] == 0)[:, None], ground_albedo(p[:, :2]),
                      colors[np.maximum(ids[hit] - 1, 0)])
    lambert = np.clip((normals[hit] * LIGHT_DIR).sum(1), 0.0, 1.0)
    rgb[hit] = albedo * (AMBIENT + (1.0 - AMBIENT) * lambert)[:, None]
    return np.clip(rgb, 0.0, 1.0), np.maximum(ids, 0), t


def render_view(K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int,
                supersample: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view: rgb uint8 [H, W, 3] (supersample^2 rays per pixel, box filtered),
    instance ids uint8 [H, W] and depth [H, W] (inf = background) of the pixel-centre ray."""
    s = supersample
    offsets = (np.arange(s) + 0.5) / s                                        # [s]
    ys, xs = np.meshgrid(np.arange(H * s) // s + np.tile(offsets, H),
                         np.arange(W * s) // s + np.tile(offsets, W), indexing="ij")
    rgb, _, _ = shade(*_rays(K, T_world_camera, xs, ys))
    rgb = rgb.reshape(H, s, W, s, 3).mean((1, 3))
    yc, xc = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    _, ids, depth = shade(*_rays(K, T_world_camera, xc, yc))
    return (np.round(rgb * 255).astype(np.uint8), ids.reshape(H, W).astype(np.uint8),
            depth.reshape(H, W))


def _rays(K: np.ndarray, T_world_camera: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """World rays through pixel positions xs, ys (any shape): origins, dirs [M, 3]; dirs have
    camera-z component 1, so t along them is the camera depth."""
    pix = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1)            # [M, 3]
    d = rows_times(pix, np.linalg.inv(K).T @ T_world_camera[:3, :3].T)
    return np.broadcast_to(T_world_camera[:3, 3], d.shape).copy(), d
