"""What the cameras look at: forward-facing vs inward (360) captures, and the scene region (bbox).

`is_forward_facing`: every camera's optical axis lies within FORWARD_DEGREES of the mean one (LLFF
style); captures that walk around an object have axes spread far wider.

`visual_region` (inward captures): the region that (nearly) every camera sees. Points of a cube
around the point nearest to all optical axes, as wide as the median camera is far from it, are
kept when at least SEEN_SHARE of the cameras see them (in front of the camera beyond `near`,
inside the image); the box spans the kept points plus one cell. An object that every view shows
lies inside every frustum, so inside this box, whatever its shape: the estimate never cuts it
(views that crop the object may, up to 1 - SEEN_SHARE of them). With a sparse point cloud
(COLMAP points3D, nerfstudio's ply), `points_region` tightens the box to the points inside it.

`views_seeing_pixels` (coverage): how many other cameras see each pixel's surface point, e.g. how
many training views saw what a held-out view shows (its depth from a field's render).
"""

from __future__ import annotations

import math

import numpy as np

FORWARD_DEGREES = 40.0   # forward-facing: every optical axis within this angle of the mean axis
SEEN_SHARE = 0.9         # a point belongs to the region when this share of the cameras sees it
CELLS = 64               # the region is estimated on CELLS^3 points
POINTS_PERCENTILE = 0.5  # the point cloud's box spans these percentiles of the points inside ...
POINTS_MARGIN = 0.2      # ... plus this share of its extent on every side (sparse clouds miss edges)


def is_forward_facing(T_world_camera: np.ndarray) -> bool:
    """True when every optical axis of T_world_camera [N, 4, 4] (OpenCV, +Z forward) lies within
    FORWARD_DEGREES of their mean direction."""
    axes = T_world_camera[:, :3, 2].astype(np.float64)                      # [N, 3]
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    mean = axes.mean(0)
    if np.linalg.norm(mean) < 1e-6:
        return False
    return bool((axes @ (mean / np.linalg.norm(mean))).min() > math.cos(math.radians(FORWARD_DEGREES)))


def forward_frame(T_world_camera: np.ndarray) -> np.ndarray:
    """T_world_frame [4, 4]: origin at the mean camera position, +Z the mean viewing direction, +Y
    the mean image down (an OpenCV-like world for NDC)."""
    forward = T_world_camera[:, :3, 2].mean(0)
    forward = forward / np.linalg.norm(forward)
    right = np.cross(T_world_camera[:, :3, 1].mean(0), forward)
    right /= np.linalg.norm(right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, np.cross(forward, right), forward], 1)
    T[:3, 3] = T_world_camera[:, :3, 3].mean(0)
    return T


def look_at_point(T_world_camera: np.ndarray) -> np.ndarray:
    """[3]: the point nearest (least squares) to every camera's optical axis."""
    origins, axes = T_world_camera[:, :3, 3], T_world_camera[:, :3, 2]       # [N, 3] each
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    projectors = np.eye(3) - axes[:, :, None] * axes[:, None, :]             # [N, 3, 3]
    return np.linalg.lstsq(projectors.sum(0), (projectors @ origins[:, :, None]).sum(0),
                           rcond=None)[0][:, 0]


def seen_counts(points: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int,
                near: float) -> np.ndarray:
    """int [P]: how many cameras (K [N, 3, 3], T_world_camera [N, 4, 4]) see each point [P, 3]
    in their H x W image beyond camera depth `near`."""
    counts = np.zeros(len(points), np.int64)
    for K_i, T_i in zip(K.astype(np.float64), T_world_camera.astype(np.float64)):
        cam = (points - T_i[:3, 3]) @ T_i[:3, :3]                            # [P, 3] camera coords
        z = cam[:, 2]
        pix = cam @ K_i.T                                                    # [P, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = pix[:, 0] / z, pix[:, 1] / z
        counts += (z > near) & (x >= 0) & (x <= W) & (y >= 0) & (y <= H)
    return counts


def views_seeing_pixels(K: np.ndarray, T_world_camera: np.ndarray, depth: np.ndarray, K_others: np.ndarray,
                        T_others: np.ndarray, near: float) -> np.ndarray:
    """int [H, W]: how many of the cameras K_others [M, 3, 3], T_others [M, 4, 4] (images as large
    as this one) see the point of each pixel (on the ray through its centre: camera_rays) of the view
    K [3, 3], T_world_camera [4, 4] at camera depth `depth` [H, W] (occlusion not considered)."""
    from engine.math.rays import camera_rays

    H, W = depth.shape
    origins, dirs = camera_rays(K, T_world_camera, H, W)                       # [P, 3] each, dirs' z = 1
    world = origins.numpy() + dirs.numpy() * depth.reshape(-1, 1)              # [P, 3]
    return seen_counts(world, K_others, T_others, H, W, near).reshape(H, W)


def visual_region(K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int, near: float
                  ) -> np.ndarray | None:
    """bbox [2, 3] float32 of the region SEEN_SHARE of the cameras see (module docstring), or None
    when the cameras share no region."""
    centre = look_at_point(T_world_camera)
    radius = float(np.median(np.linalg.norm(T_world_camera[:, :3, 3] - centre, axis=1)))
    axis = np.linspace(-radius, radius, CELLS)
    cell = axis[1] - axis[0]
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + centre  # [P, 3]
    need = math.ceil(SEEN_SHARE * len(T_world_camera))
    inside = points[seen_counts(points, K, T_world_camera, H, W, near) >= need]  # [Q, 3]
    if len(inside) == 0:
        return None
    return np.stack([inside.min(0) - cell, inside.max(0) + cell]).astype(np.float32)


def points_region(points: np.ndarray, bbox: np.ndarray) -> np.ndarray | None:
    """bbox [2, 3] float32 of the sparse points [P, 3] inside `bbox` [2, 3] (robust percentiles plus a
    margin, clipped to bbox), or None with fewer than 10 such points."""
    inside = points[np.all((points >= bbox[0]) & (points <= bbox[1]), axis=1)]
    if len(inside) < 10:
        return None
    lo, hi = (np.percentile(inside, q, axis=0) for q in (POINTS_PERCENTILE, 100 - POINTS_PERCENTILE))
    margin = POINTS_MARGIN * (hi - lo)
    return np.stack([np.maximum(lo - margin, bbox[0]), np.minimum(hi + margin, bbox[1])]).astype(np.float32)
