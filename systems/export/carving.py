"""The solid mask of an object from the frozen field's views (glue around systems/export/solid.py).

A `CarvingView` is one camera with its frozen weights (systems/inverse: the matrix segment
builds) and its surface depth per pixel. `solid_object_mask` carves an object's votes into the
region it occupies (solid.py's docstring) and returns it with the voxels of other visible
surfaces and the support plane, which the object-removed renders need (removal keeps them).
Voxel centres go to world coordinates through the field (`to_world`), so NDC fields carve in
the same world the cameras live in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from components.camera import Camera
from systems.export import solid
from systems.inverse.ops import ViewWeights, coverage_mask

NDC_Z_LIMIT = 1.0 - 1e-6   # NDC z = 1 is infinitely far: voxel centres are clamped below it


@dataclass(frozen=True, eq=False)
class CarvingView:
    camera: Camera
    weights: ViewWeights     # the view's frozen pixel -> voxel weights
    front: np.ndarray        # [H*W] float32 camera depth where the light starts to stop (solid.py; inf: backdrop)
    back: np.ndarray         # [H*W] float32 camera depth where little light goes further


@dataclass(frozen=True, eq=False)
class SolidMask:
    mask: np.ndarray                 # [Z, Y, X] bool the region the object occupies
    other_surface: np.ndarray        # [Z, Y, X] bool voxels on a visible surface of something else
    plane: solid.Plane | None        # the support plane the object stands on (world), if found
    surface_voxels: int              # voxels of its surface mask in pieces of speck_voxels or more (0: only specks)


def voxel_centres(field, flat_ids: np.ndarray) -> np.ndarray:
    """Field-space centres [N, 3] (x, y, z) of voxels with flat ids (z * Y + y) * X + x."""
    Z, Y, X = field.resolution
    z, rest = np.divmod(np.asarray(flat_ids, np.int64), Y * X)
    y, x = np.divmod(rest, X)
    bbox = field.bbox.detach().cpu().double().numpy()
    spacing = (bbox[1] - bbox[0]) / (np.array([X, Y, Z], np.float64) - 1.0)
    return bbox[0] + np.stack([x, y, z], axis=1) * spacing


def to_world(field, points: np.ndarray) -> np.ndarray:
    """Field-space points [N, 3] -> world [N, 3] float64 (NDC z clamped short of infinity)."""
    if field.space != "ndc":
        return np.asarray(points, np.float64)
    clamped = np.asarray(points, np.float64).copy()
    clamped[:, 2] = np.minimum(clamped[:, 2], NDC_Z_LIMIT)
    return field.to_world(torch.from_numpy(clamped)).numpy()


def world_voxel_size(field, centres: np.ndarray) -> np.ndarray:
    """[N] world length of one voxel step at field-space centres [N, 3] (the longest of the three
    axis steps: NDC voxels stretch with depth)."""
    if field.space != "ndc":
        return np.full(len(centres), field.voxel_size)
    bbox = field.bbox.detach().cpu().double().numpy()
    spacing = (bbox[1] - bbox[0]) / (np.array(field.resolution[::-1], np.float64) - 1.0)
    here = to_world(field, centres)
    return np.max([np.linalg.norm(to_world(field, centres + np.eye(3)[a] * spacing[a]) - here, axis=1)
                   for a in range(3)], axis=0)


def carving_view(field, camera: Camera, weights: ViewWeights) -> CarvingView:
    """The CarvingView of `camera`: its surface depths (solid.SEEN_THROUGH, solid.LIGHT_ENDS) from
    the weights' voxels' camera depths."""
    centres = to_world(field, voxel_centres(field, weights.primitives))            # [U, 3]
    T_camera_world = np.linalg.inv(np.asarray(camera.T_world_camera, np.float64))
    entry_depth = centres @ T_camera_world[2, :3] + T_camera_world[2, 3]               # [U]
    front, back = solid.surface_depths(weights.A, entry_depth, weights.pixel_weight,
                                       shares=(1.0 - solid.SEEN_THROUGH, 1.0 - solid.LIGHT_ENDS))
    return CarvingView(camera=camera, weights=weights, front=front, back=back)


def camera_carving_views(field, cameras: Iterable[Camera], *, weight_cutoff: float = 1e-2,
                         min_entry: float = 1e-3) -> list[CarvingView]:
    """CarvingViews of cameras, each rendered once with the frozen field (no cache)."""
    from systems.inverse.frozen import frozen_view_weights

    return [carving_view(field, camera, frozen_view_weights(field, camera, weight_cutoff=weight_cutoff,
                                                            min_entry=min_entry, color=False)[0])
            for camera in cameras]


def solid_object_mask(field, votes: np.ndarray, views: list[CarvingView], up: np.ndarray,
                      settings: solid.CarveSettings | None = None) -> SolidMask:
    """Carve the object with votes [Z, Y, X] (its surface mask is votes > 0) from `views`; `up` [3]
    is the scene's up direction (world), across which a support plane is looked for."""
    settings = settings or solid.CarveSettings()
    surface_mask = votes > 0
    shape = surface_mask.shape
    kept = solid.clean_mask(surface_mask, settings.speck_voxels)
    if not kept.any():                                           # only specks: nothing to carve
        empty = np.zeros(shape, bool)
        return SolidMask(mask=empty, other_surface=empty, plane=None, surface_voxels=0)
    region = _region(kept, pad=4)                                                      # [Z, Y, X]
    ids = np.flatnonzero(region)                                                       # [N]
    centres_field = voxel_centres(field, ids)
    centres = to_world(field, centres_field)                                           # [N, 3]
    voxel_size = world_voxel_size(field, centres_field)                                # [N]
    margin, band = settings.margin_voxels * voxel_size, settings.surface_voxels * voxel_size
    tally = solid.Tally.zeros(len(ids))
    masks = []
    for view in views:
        cam = view.camera
        mask2d = coverage_mask(view.weights, votes[None])[0].reshape(-1)
        masks.append(mask2d)
        pixels, depth = solid.project(centres, cam.K, cam.T_world_camera, cam.H, cam.W)
        solid.tally_view(tally, pixels, depth, margin, band, view.front, view.back, mask2d)
    carved, seen_through = np.zeros(shape, bool), np.zeros(shape, bool)
    carved.reshape(-1)[ids] = solid.carve(tally, settings)
    seen_through.reshape(-1)[ids] = tally.skin > 0
    carved = solid.shave_skin(carved, seen_through, settings.skin_voxels)
    other = np.zeros(shape, bool)
    other.reshape(-1)[ids] = tally.other >= settings.other_views
    plane = None
    if carved.any():
        ring = ndimage.binary_dilation(carved, np.ones((3, 3, 3), bool), iterations=settings.plane_ring) & ~carved
        points = _surface_points_in(field, views, masks, ring & other)
        inside = to_world(field, voxel_centres(field, np.flatnonzero(carved))).mean(0)
        plane = solid.support_plane(points, up, inside, settings.plane_tolerance * float(np.median(voxel_size)))
        if plane is not None:
            beyond = np.zeros(shape, bool)
            beyond.reshape(-1)[ids] = plane.distance(centres) < settings.plane_lift * voxel_size
            carved &= ~beyond
    mask = solid.clean_mask(carved, settings.speck_voxels)
    return SolidMask(mask=mask, other_surface=other, plane=plane, surface_voxels=int(kept.sum()))


def _region(mask: np.ndarray, pad: int) -> np.ndarray:
    """bool [Z, Y, X]: the bounding box of `mask` grown by `pad` voxels (clipped to the grid)."""
    region = np.zeros(mask.shape, bool)
    if mask.any():
        lo = [max(0, int(np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != d))).min()) - pad)
              for d in range(3)]
        hi = [min(n, int(np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != d))).max()) + pad + 1)
              for d, n in enumerate(mask.shape)]
        region[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return region


def _surface_points_in(field, views: list[CarvingView], masks: list[np.ndarray], region: np.ndarray
                       ) -> np.ndarray:
    """World points [M, 3] where the light of the views' non-object pixels ends inside `region`."""
    Z, Y, X = region.shape
    bbox = field.bbox.detach().cpu().double().numpy()
    points = [np.zeros((0, 3))]
    for view, mask2d in zip(views, masks):
        cam = view.camera
        pixels = np.flatnonzero(~mask2d & np.isfinite(view.back))
        y, x = np.divmod(pixels, cam.W)
        rays = np.stack([(x + 0.5 - cam.K[0, 2]) / cam.K[0, 0], (y + 0.5 - cam.K[1, 2]) / cam.K[1, 1],
                         np.ones(len(x))], axis=1) * view.back[pixels, None]            # [M, 3] camera
        T = np.asarray(cam.T_world_camera, np.float64)
        world = rays @ T[:3, :3].T + T[:3, 3]
        grid = field.to_field(torch.from_numpy(world)).numpy() if field.space == "ndc" else world
        index = np.round((grid - bbox[0]) / (bbox[1] - bbox[0]) * (np.array([X, Y, Z]) - 1.0)).astype(np.int64)
        ok = np.all((index >= 0) & (index < [X, Y, Z]), axis=1)
        ok[ok] = region[index[ok, 2], index[ok, 1], index[ok, 0]]
        points.append(world[ok])
    return np.concatenate(points)


def visible(field, points: np.ndarray, views: list[CarvingView], margin_voxels: float) -> np.ndarray:
    """bool [N]: world points [N, 3] that lie on the surface some view sees: between its front less
    the margin and its back plus the margin at all four pixels around them (one pixel off, the
    ground in front of an object's foot lies at the depth of its unseen base)."""
    field_points = field.to_field(torch.from_numpy(np.asarray(points, np.float64))).numpy() \
        if field.space == "ndc" else points
    margin = margin_voxels * world_voxel_size(field, field_points)                     # [N]
    seen = np.zeros(len(points), bool)
    for view in views:
        cam = view.camera
        pixels, depth = solid.project(points, cam.K, cam.T_world_camera, cam.H, cam.W)
        ok = pixels[:, 0] >= 0
        d, m, q = depth[ok, None], margin[ok, None], pixels[ok]
        seen[ok] |= ((d >= view.front[q] - m) & (d <= view.back[q] + m)).all(axis=1)
    return seen


def visible_surface_points(mesh, count: int, field, views: list[CarvingView], settings: solid.CarveSettings,
                           rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """`count` points [count, 3] and colours [count, 3] uint8 spread by area over the part of
    `mesh` (world) that some view sees (its unseen base and inside faces are left out); fewer
    when the visible part is too small to reach `count` in `rounds` samplings."""
    from systems.export.ops import sample_surface

    points, colors = [], []
    for seed in range(rounds):
        p, c = sample_surface(mesh, 2 * count, seed=seed)
        keep = visible(field, p, views, settings.surface_voxels)
        points.append(p[keep])
        colors.append(c[keep])
        if sum(len(q) for q in points) >= count:
            break
    return np.concatenate(points)[:count], np.concatenate(colors)[:count]
