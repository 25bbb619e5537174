"""The scene without an object: its voxels emptied, the support under it filled from around it.

Only the object goes: its solid mask grown by a voxel or two (the field's soft rim), less the
voxels of other visible surfaces and what lies beyond the support plane it stands on, so the
floor or table under it stays. That support was never seen where the object stood: the trained
field holds arbitrary density and colour there (often the object's own colour, or nothing).
`fill_support` rebuilds it from what the views saw around the object: every layer of the support
(from `below_voxels` under the plane to a voxel over its contact band) takes, under the object's footprint,
the density and colour of the nearest voxel of the same layer outside it (up to the top of its
contact band). This needs the support
to be a grid layer: world-space fields (the up axis is a world axis, see axes.py); NDC fields
are left with the object's voxels emptied only.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy import ndimage

from systems.export import carving, ops


def removal_mask(solid: carving.SolidMask, field, grow: int) -> np.ndarray:
    """bool [Z, Y, X]: the voxels an object's removal empties: its solid mask grown by `grow`
    voxels, less the voxels of other visible surfaces and those beyond its support plane."""
    removed = ops.grow_mask(solid.mask, grow) & ~(solid.other_surface & ~solid.mask)
    if solid.plane is not None:
        ids = np.flatnonzero(removed & ~solid.mask)
        centres = carving.to_world(field, carving.voxel_centres(field, ids))
        removed.reshape(-1)[ids[solid.plane.distance(centres) < 0]] = False
    return removed


def removed_field(field, solid: carving.SolidMask, grow: int, above_voxels: float, below_voxels: int = 3):
    """A copy of `field` without the object (module docstring); the support's layers from
    `below_voxels` under its plane to `above_voxels` over it (its contact band and one more) are
    refilled under the object."""
    edited = copy.deepcopy(field)
    removed = removal_mask(solid, field, grow)
    with torch.no_grad():
        density = edited.density[0, 0]
        density[torch.from_numpy(removed)] = ops.EMPTY_RAW
        if solid.plane is not None and field.space == "world":
            axis = int(np.argmax(np.abs(solid.plane.normal)))                   # world x, y, z
            fill_support(density, edited.color[0], removed, solid.plane, field, axis, above_voxels, below_voxels)
    return edited


def fill_support(density: torch.Tensor, color: torch.Tensor, removed: np.ndarray, plane, field, axis: int,
                 above_voxels: float, below_voxels: int, rim_voxels: int = 3) -> None:
    """Fill, in place, the support layers under the footprint of `removed` [Z, Y, X] (grown by
    `rim_voxels`: the support right at the object's foot was barely seen either) from the nearest
    voxel of the same layer outside it. density [Z, Y, X] and color [3, Z, Y, X] are raw values;
    `axis` is the world axis of the plane's normal (grid axis 2 - axis)."""
    grid_axis = 2 - axis
    footprint = ndimage.binary_dilation(removed.any(axis=grid_axis), iterations=rim_voxels)   # [2D]
    if not footprint.any() or footprint.all():
        return
    bbox = field.bbox.detach().cpu().double().numpy()
    n = removed.shape[grid_axis]
    heights = np.linspace(bbox[0, axis], bbox[1, axis], n)                            # layer heights
    spacing = (bbox[1, axis] - bbox[0, axis]) / (n - 1)
    level = -plane.offset / plane.normal[axis]                                        # the plane's height
    rising = plane.normal[axis] > 0
    distance = (heights - level) if rising else (level - heights)                     # above the plane > 0
    layers = np.flatnonzero((distance <= above_voxels * spacing) & (distance >= -below_voxels * spacing))
    _, nearest = ndimage.distance_transform_edt(footprint, return_indices=True)       # [2, ...]
    rows, cols = np.nonzero(footprint)
    src_rows, src_cols = nearest[0][rows, cols], nearest[1][rows, cols]
    for layer in layers:
        index = [slice(None)] * 3
        index[grid_axis] = int(layer)
        plane_density, plane_color = density[tuple(index)], color[(slice(None), *index)]
        plane_density[rows, cols] = plane_density[src_rows, src_cols].clone()
        plane_color[:, rows, cols] = plane_color[:, src_rows, src_cols].clone()
