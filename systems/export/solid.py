"""Solid 3D masks by carving (numpy / scipy only): the region an object occupies, unseen inside included.

SA3D's votes (V > 0) mark the voxels whose rendered weight fell inside the object's 2D masks: the
object's *visible surface*, plus stray voxels of the ground it stands on. The solid mask is carved
from the views instead. For every view we know, per pixel, whether it belongs to the object's 2D
mask and two camera depths (`surface_depths`): where the frozen field's transmittance falls to
SEEN_THROUGH (`front`: the light starts to stop) and to LIGHT_ENDS (`back`: little light goes
further); inf where the backdrop takes that much. Trained fields are soft: an object's surface
spreads its weight over a few voxels, a ground over more (the front lies within a voxel of the
true surface on the built-in scene's objects, the back within one of its ground). A voxel centre
x at camera depth d, between the four pixel centres around its projection, is then

    free      d < front - margin at all four,      the view sees past the object through x: empty
              none of the four in the mask         space
    skin      d < front - margin at all four,      the view sees through x and still ends on the
              one of the four in the mask          object: x is not deep inside it (below)
    support   neither, one of the four in the mask
                                                   x lies on or behind the object's visible surface
    other     neither, none in the mask, d <= back + band at one of the four
                                                   x lies on a visible surface that is not the object
    hidden    otherwise                            something else hides x: this view says nothing

(a silhouette passing between the four pixels decides nothing: it would carve the object's rim).
`carve` keeps the voxels that fewer than `free_views` views see past the object through, that lie
on another visible surface in fewer than `other_views` views, and that at least `support_share` of
the views that say anything place inside the object: the hull the object's silhouettes and the
other surfaces leave. `shave_skin` then takes off the voxels of its outer `skin_voxels` layer that a
view of the object's own pixels sees through (the soft surface of a trained field, one layer wide,
that silhouettes cannot tell from the object), where there is a core under them (a part as thin as
its skin, a sheet or a flat patch, stays whole). Deeper, such light says nothing: it passes x and
still ends on the object, and a trained face can be a fog (the built-in box's: alpha 0.1 a voxel
all the way down) that lets several views see half into the object. What no camera sees stays:
the inside of the object (only ever hidden behind its own surface) and the space below its base
(hidden behind the support it stands on). The second is cut by `support_plane`: the level (normal
to the scene's up) where the light of the visible non-object surface around the carved region's
foot ends, the floor or table it stands on; voxels less than `plane_lift` voxels above it are its
contact band and go too (on the trained built-in scene the ground's light ends about a voxel
below its surface; on an exact surface this drops one layer of the object's foot).
Then `clean_mask` fills enclosed cavities and drops specks smaller than a size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage, sparse

SEEN_THROUGH = 0.9        # a ray sees through what it meets while its transmittance is above this
LIGHT_ENDS = 0.1          # ... and little light goes beyond where it falls below this


@dataclass(frozen=True)
class CarveSettings:
    margin_voxels: float = 0.5        # a voxel this far (in voxels) in front of a surface is still not free
    surface_voxels: float = 1.0       # ... and one up to this far behind where its light ends lies on it
    free_views: int = 1               # a voxel this many views see past the object through is empty
    skin_voxels: float = 1.0          # the object's own pixels carve this deep into that hull at most
    other_views: int = 2              # a voxel on a non-object surface in this many views is not the object
    support_share: float = 0.75       # share of the informative views (support + other) that must support it
    plane_ring: int = 2               # voxels around the carved region whose surface points fit the plane
    plane_tolerance: float = 0.75     # the support's height: points within this many voxels of it count
    plane_lift: float = 1.5           # voxels less than this high above the support are its contact band
    speck_voxels: int = 64            # connected pieces of fewer voxels are dropped


@dataclass
class Tally:
    """Per-voxel view counts of the states (module docstring), over a list of voxels."""
    free: np.ndarray       # [N] int32
    support: np.ndarray    # [N] int32
    other: np.ndarray      # [N] int32
    skin: np.ndarray       # [N] int32

    @classmethod
    def zeros(cls, n: int) -> Tally:
        return cls(*(np.zeros(n, np.int32) for _ in fields(cls)))


def surface_depths(A: sparse.csr_matrix, entry_depth: np.ndarray, pixel_weight: np.ndarray,
                   shares: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """[P] camera depths, one per share, at which each pixel's transmittance falls to 1 - share:
    where its accumulated weight reaches that share of its modelled weight (row sum plus what
    reaches the backdrop); inf where it never does (the pixel mostly sees the backdrop).

    A [P, U] CSR holds a view's per-pixel weights on U voxels (systems/inverse/ops.ViewWeights)
    and entry_depth [U] the camera depth of each voxel centre. Entries are taken in depth order
    (sorted once for all shares), each centred on its depth (the accumulated weight at an entry's
    depth counts half of it), and the crossing is interpolated linearly between the two entries
    around it (the deepest entry's depth when the share is only reached within it).
    """
    P = A.shape[0]
    rows = np.repeat(np.arange(P), np.diff(A.indptr))                  # [nnz]
    depth = entry_depth[A.indices]                                      # [nnz]
    order = np.lexsort((depth, rows))                                   # by row, then depth
    rows, depth, weight = rows[order], depth[order], A.data[order].astype(np.float64)
    cumulative = np.cumsum(weight)                                      # [nnz]
    before_row = np.concatenate([[0.0], cumulative])[A.indptr[:-1]]    # [P] sum of earlier rows
    within = cumulative - before_row[rows]                              # [nnz] accumulated in the row
    centred = within - 0.5 * weight
    last = np.zeros(len(rows), bool)
    last[A.indptr[1:][np.diff(A.indptr) > 0] - 1] = True                # each row's deepest entry
    row_weight = pixel_weight[rows]                                     # [nnz]
    return tuple(_crossing(rows, depth, within, centred, last, share * row_weight, P) for share in shares)


def _crossing(rows: np.ndarray, depth: np.ndarray, within: np.ndarray, centred: np.ndarray, last: np.ndarray,
              target: np.ndarray, P: int) -> np.ndarray:
    """[P] depth where each row's centred accumulated weight crosses target [nnz] (surface_depths)."""
    first = np.flatnonzero((centred >= target) | (last & (within >= target)))
    surface = np.full(P, np.inf, np.float32)
    hit_rows, at = np.unique(rows[first], return_index=True)
    i = first[at]                                                       # first entry past the target
    previous = np.maximum(i - 1, 0)
    same_row = (i > 0) & (rows[previous] == hit_rows)
    span = np.where(same_row, centred[i] - centred[previous], 1.0)
    fraction = np.clip(np.where(same_row, (target[i] - centred[previous]) / np.maximum(span, 1e-12), 1.0), 0, 1)
    surface[hit_rows] = np.where(same_row, depth[previous] + fraction * (depth[i] - depth[previous]), depth[i])
    return surface


def project(points: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """The four pixels p = y * W + x [N, 4] whose centres surround each world point [N, 3] (-1 for a
    point behind the camera or off the image), and its camera depth [N] (OpenCV camera, pixel
    centres at + 0.5; at the image border the nearest pixels repeat)."""
    T_camera_world = np.linalg.inv(np.asarray(T_world_camera, np.float64))
    cam = points @ T_camera_world[:3, :3].T + T_camera_world[:3, 3]     # [N, 3]
    depth = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = cam[:, :2] / depth[:, None] * np.diag(K)[:2] + np.asarray(K)[:2, 2]   # [N, 2]
    inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    uv = np.where(inside[:, None], uv, 0.5)
    x0, y0 = np.floor(uv[:, 0] - 0.5), np.floor(uv[:, 1] - 0.5)        # [N] the upper-left centre
    xs = np.clip(np.stack([x0, x0 + 1, x0, x0 + 1], 1), 0, W - 1)      # [N, 4]
    ys = np.clip(np.stack([y0, y0, y0 + 1, y0 + 1], 1), 0, H - 1)
    pixels = (ys * W + xs).astype(np.int64)
    return np.where(inside[:, None], pixels, -1), depth


def tally_view(tally: Tally, pixels: np.ndarray, depth: np.ndarray, margin: np.ndarray, band: np.ndarray,
               front: np.ndarray, back: np.ndarray, object_mask: np.ndarray) -> None:
    """Add one view to `tally`: voxels at pixels [N, 4] (`project`; -1: not in view) and camera
    depth [N], depth tolerances margin [N] (seen through: in front of the front surface by more) and band
    [N] (on a surface: behind its back by less), the view's surface depths where the light starts
    and ends (front [P], back [P]) and its 2D object mask [P] bool.

    A voxel centre falls between four pixel centres; the view sees through it only when it lies in
    front of all four surfaces (free when none of the four is the object's, skin otherwise), and
    puts it on another surface only when none of the four is the object's: a silhouette passing
    between them decides nothing (it would carve the object's rim).
    """
    seen = pixels[:, 0] >= 0
    p = np.where(seen[:, None], pixels, 0)
    inside = object_mask[p].any(axis=1)
    through = seen & (depth < front[p].min(axis=1) - margin)
    tally.free += through & ~inside
    tally.skin += through & inside
    tally.support += seen & ~through & inside
    tally.other += seen & ~through & ~inside & (depth <= back[p].min(axis=1) + band)


def carve(tally: Tally, settings: CarveSettings) -> np.ndarray:
    """bool [N]: the voxels the views leave to the object (module docstring)."""
    informative = tally.support + tally.other
    return ((tally.free < settings.free_views) & (tally.other < settings.other_views)
            & (tally.support > 0) & (tally.support >= settings.support_share * informative))


def shave_skin(hull: np.ndarray, seen_through: np.ndarray, skin_voxels: float) -> np.ndarray:
    """hull [Z, Y, X] bool less the voxels that seen_through [Z, Y, X] bool marks within skin_voxels
    of its outside (distance to the nearest voxel off the hull, in voxels: 1 is its outer layer),
    where a core deeper than that lies next to them: a part no thicker than its skin on both sides
    (a sheet, a thin rim, a flat object's patch) is all skin and stays whole."""
    depth = ndimage.distance_transform_edt(hull)
    core = depth > skin_voxels
    over_core = ndimage.binary_dilation(core, np.ones((3, 3, 3), bool), iterations=max(1, math.ceil(skin_voxels)))
    return hull & ~(seen_through & (depth <= skin_voxels) & over_core)


@dataclass(frozen=True)
class Plane:
    normal: np.ndarray     # [3] unit, pointing into the object's side
    offset: float          # points x with normal . x + offset < 0 lie beyond the plane

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance [N] of points [N, 3]: positive on the object's side."""
        return points @ self.normal + self.offset


def support_plane(points: np.ndarray, up: np.ndarray, inside_point: np.ndarray, tolerance: float, *,
                  min_points: int = 30, min_sectors: int = 6) -> Plane | None:
    """The level plane (normal `up` [3]) that the object above it stands on: the height, below
    `inside_point` [3], that holds the most surface points [N, 3] within `tolerance` (the mean
    height of those), or None when fewer than `min_points` lie there or they fill fewer than
    `min_sectors` of 12 directions around `inside_point` (a floor or table top spreads around
    what stands on it; a few points on one side are no support)."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    heights = points @ up                                                             # [N]
    below = heights < inside_point @ up
    heights, points = heights[below], points[below]
    if len(heights) < min_points:
        return None
    near = np.abs(heights[:, None] - heights[None, :]) <= tolerance if len(heights) <= 4096 else None
    counts = near.sum(1) if near is not None else np.array(
        [(np.abs(heights - h) <= tolerance).sum() for h in heights])
    best = int(np.argmax(counts))
    on_plane = np.abs(heights - heights[best]) <= tolerance
    if on_plane.sum() < min_points:
        return None
    u = np.cross(up, np.eye(3)[int(np.argmin(np.abs(up)))])
    u /= np.linalg.norm(u)
    v = np.cross(up, u)
    offsets = points[on_plane] - inside_point                                         # [M, 3]
    sectors = np.floor((np.arctan2(offsets @ v, offsets @ u) + np.pi) / (2 * np.pi) * 12).astype(int) % 12
    if len(np.unique(sectors)) < min_sectors:
        return None
    return Plane(normal=up, offset=-float(heights[on_plane].mean()))


def clean_mask(mask: np.ndarray, speck_voxels: int) -> np.ndarray:
    """mask [Z, Y, X] bool with enclosed cavities filled and 26-connected pieces of fewer than
    `speck_voxels` voxels dropped."""
    filled = ndimage.binary_fill_holes(mask)
    labels, count = ndimage.label(filled, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return filled
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= speck_voxels
    keep[0] = False
    return keep[labels]
