"""export_object: write one segmented object (or the whole grid) in one of the export formats.

The formats are listed in systems/export/registry.py; their files in systems/export/formats.py.
Everything an object export shows is its *solid mask* (systems/export/carving.py): the region
the object occupies, unseen inside included, carved from the scene's views; the grid's votes
(its visible surface) only seed it.
  npz              solid masks and votes of the objects (layout: formats.py)
  obj, mesh-ply    the object's mesh: the field's density inside the solid mask, filled inside,
                   iso surface where alpha over one ray-marching step = `alpha_iso`, Taubin-smoothed
                   `smooth` times, colours from the colour grid; world units, turned so that `up` is
                   the scene's up (axes.py), clamped to the field's box
  ply              `points` coloured points on the mesh where some view sees it (the visible surface)
  masks            0/255 PNG masks <camera name>.png: the 2D mask in each camera (inverse.ops.coverage_mask)
  object-renders   RGB PNGs of the object alone (density outside the grown solid mask removed)
  removed-renders  RGB PNGs of the scene without the object (removal.py: the grown solid mask emptied,
                   never other visible surfaces or the support it stands on, which is filled under it)
The per-camera formats write a folder (`out`) as a unit (engine/io.atomic_dir: an interrupted
export leaves the previous folder whole), with `export.json` naming the format, object and files,
and, with `video`, also an .mp4 or .gif of the frames.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
import torch

from components.resources import SegmentationSettings
from engine.errors import UserFacingError
from engine.field.grid import VoxelField
from engine.io import atomic_dir, atomic_write
from engine.media import png_bytes, write_video
from systems.export import axes, carving, formats, ops, removal, views
from systems.export.registry import FORMATS
from systems.export.solid import CarveSettings
from systems.segmentation.grid_file import MaskGridFile, check_matches_field

FOLDER_MARKER = "export.json"    # every per-camera export folder holds it
DEFAULT_UP = {"obj": "y", "mesh-ply": "z", "ply": "z"}   # OBJ's convention; PLY as Blender / MeshLab show it


class ExportError(UserFacingError):
    """An export that cannot be made; the message names the problem and what to do."""


@dataclass(frozen=True)
class ExportOptions:
    format: str                      # a name of registry.FORMATS
    object: str | None = None        # object name; None = the only one (npz: all of them)
    smooth: int = 10                 # Taubin smoothing iterations of the mesh (0 = none)
    alpha_iso: float = SegmentationSettings.weight_cutoff   # mesh surface: alpha over one step (ops.py docstring)
    grow_voxels: int = 1             # renders: the solid mask is grown by this many voxels before cutting
    points: int = 100_000            # points of the `ply` point cloud
    up: str | None = None            # meshes and points: "y" or "z" up in the file; None = DEFAULT_UP
    carve: CarveSettings = dataclass_field(default_factory=CarveSettings)   # the solid masks
    video: Path | None = None        # per-camera formats: also write this .mp4 / .gif
    fps: int = 12                    # frames per second of the video


@dataclass(frozen=True)
class ExportScene:
    """What the export sees of the scene besides the field."""
    carving_views: Callable[[], list[carving.CarvingView]]   # the scene's views, built when first needed
    world_up: np.ndarray                                      # [3] the scene's up axis (axes.scene_up)
    cameras: list[views.NamedCamera] | None = None            # what per-camera formats render


def export_object(grid: MaskGridFile, field: VoxelField, out: str | Path, options: ExportOptions,
                  scene: ExportScene, *, field_hash: str | None = None) -> list[Path]:
    """Write `options.format` of an object of `grid` (segmented with `field`) to `out`.

    Reads the mask grid, the frozen field and `scene` (views to carve solid masks, cameras to
    render). `field_hash`, when given, must equal the grid's. Returns the written paths.
    Raises ExportError (or MaskGridError) for an unknown format or object, an empty mask (or one
    of specks only) or surface, missing cameras and a grid that does not match the field.
    """
    kind = FORMATS.get(options.format)
    if kind is None:
        raise ExportError(f"unknown export format '{options.format}': choose one of {', '.join(FORMATS)}")
    if "voxels" not in kind.scenes:
        raise ExportError(f"format '{kind.name}' writes Gaussians: give the splat scene (systems/export/splats.py)")
    check_matches_field(grid, resolution=field.resolution, bbox=field.bbox.cpu().numpy(),
                        space=field.space, field_hash=field_hash)
    out = Path(out)
    keep = [grid.object_index(options.object)] if options.object is not None or kind.name != "npz" \
        else list(range(len(grid.names)))
    for k in keep:
        grid.object_mask(k)                                               # refuses empty objects
    if kind.renders and not scene.cameras:
        raise ExportError(f"format '{kind.name}' renders views: give a scene or a camera path")
    solids = {}
    if kind.solid:
        cviews = scene.carving_views()
        solids = {k: _solid(grid, k, field, cviews, scene.world_up, options) for k in keep}
    if kind.name == "npz":
        return [_write_npz(grid, keep, solids, field, scene.world_up, out)]
    index = keep[0]
    if kind.name in DEFAULT_UP:
        return [_write_mesh(grid.names[index], solids[index], field, out, options, scene)]
    return _write_views(grid, index, solids.get(index), field, scene.cameras, out, options)


def _solid(grid: MaskGridFile, index: int, field: VoxelField, cviews, up: np.ndarray,
           options: ExportOptions) -> carving.SolidMask:
    solid = carving.solid_object_mask(field, grid.votes[index], cviews, up, options.carve)
    if solid.surface_voxels == 0:                 # nothing to carve: an object segmented later took its voxels,
        raise ExportError(                         # or its mask was a sliver
            f"object '{grid.names[index]}' is only specks: none of its {int((grid.votes[index] > 0).sum())} voxels "
            f"lies in a piece of {options.carve.speck_voxels} or more (another object segmented later took its "
            f"voxels, or its mask was a sliver); segment it again, or lower --speck-voxels")
    if not solid.mask.any():
        raise ExportError(f"object '{grid.names[index]}' carves to nothing: no voxel of it is hidden from "
                          f"every view; segment it again, or lower --speck-voxels")
    return solid


def object_mesh(field: VoxelField, mask: np.ndarray, options: ExportOptions) -> ops.Mesh:
    """The coloured mesh of the object with solid mask [Z, Y, X] bool in `field` (see
    ops.object_mesh), vertices in world coordinates (field.to_world for NDC fields)."""
    sigma = ops.iso_density(options.alpha_iso, field.step_size)
    # the field's activation sigma = softplus(raw + shift) * scale, inverted at sigma_iso
    raw_level = math.log(math.expm1(sigma / float(field.density_scale))) - float(field.density_shift)
    raw = field.density[0, 0].detach().float().cpu().numpy()               # [Z, Y, X]
    mesh = ops.object_mesh(raw, field.rgb_values().cpu().numpy(), mask, field.bbox.cpu().numpy(),
                           raw_level=raw_level, empty_raw=ops.EMPTY_RAW, smooth_iterations=options.smooth)
    if field.space == "world" or len(mesh.vertices) == 0:
        return mesh
    # an NDC field's mesh is built in NDC; the map to world keeps the winding (positive Jacobian)
    world = carving.to_world(field, mesh.vertices)                           # [V, 3]
    return ops.Mesh(vertices=world.astype(np.float32), faces=mesh.faces, colors=mesh.colors)


def _write_npz(grid: MaskGridFile, keep: list[int], solids: dict, field: VoxelField, world_up: np.ndarray,
               out: Path) -> Path:
    ndc = (field.ndc_near, field.ndc_scale) if field.space == "ndc" else None
    return write_object_grid(grid, keep, np.stack([solids[k].mask for k in keep]), world_up, out, ndc=ndc)


def write_object_grid(grid: MaskGridFile, keep: list[int], masks: np.ndarray, world_up: np.ndarray, out: Path,
                      *, ndc: tuple | None = None) -> Path:
    """The `npz` format: objects `keep` of `grid` with their masks [len(keep), ...] bool (solid for
    voxels; a splat grid's: the Gaussians voted in) in the object grid layout (formats.py)."""
    atomic_write(out, formats.object_grid_npz(
        mask=masks, votes=grid.votes[keep], names=[grid.names[k] for k in keep],
        colors=grid.colors[keep], bbox=grid.bbox, space=grid.space, ndc=ndc, up=world_up,
        scene_hash=grid.scene_hash, field_hash=grid.field_hash))
    return out


def _write_mesh(name: str, solid: carving.SolidMask, field: VoxelField, out: Path, options: ExportOptions,
                scene: ExportScene) -> Path:
    mesh = object_mesh(field, solid.mask, options)
    if len(mesh.faces) == 0:
        raise ExportError(f"object '{name}' has no surface: no density inside its 3D mask reaches alpha "
                          f"{options.alpha_iso}; lower it with --alpha-iso or segment again")
    rotation = axes.up_rotation(scene.world_up, options.up or DEFAULT_UP[options.format])
    header = f"world units; {axes.describe(rotation)}"
    if options.format == "ply":
        points, colors = carving.visible_surface_points(mesh, options.points, field, scene.carving_views(),
                                                         options.carve)
        data = formats.ply_points(points @ rotation.T, colors, comment=header)
    elif options.format == "obj":
        data = formats.obj_mesh(mesh.vertices @ rotation.T, mesh.faces, mesh.colors, comment=header)
    else:
        data = formats.ply_mesh(mesh.vertices @ rotation.T, mesh.faces, mesh.colors, comment=header)
    atomic_write(out, data)
    return out


def _write_views(grid: MaskGridFile, index: int, solid: carving.SolidMask | None,
                 field: VoxelField, cameras: list[views.NamedCamera], out: Path, options: ExportOptions) -> list[Path]:
    if options.format == "object-renders":
        edited = views.edited_field(field, ~ops.grow_mask(solid.mask, options.grow_voxels))
    elif options.format == "removed-renders":
        edited = removal.removed_field(field, solid, options.grow_voxels, above_voxels=options.carve.plane_lift + 1.0)
    votes = torch.from_numpy(grid.votes[index:index + 1])             # [1, Z, Y, X]
    written, frames = [], []
    with atomic_dir(out, marker=FOLDER_MARKER) as tmp:
        for named in cameras:
            if options.format == "masks":
                image = np.where(views.object_masks(field, votes, named.camera)[0], 255, 0).astype(np.uint8)
            else:
                image = views.render_rgb(edited, named.camera)        # [H, W, 3] uint8
            (tmp / f"{named.name}.png").write_bytes(png_bytes(image))
            written.append(out / f"{named.name}.png")
            frames.append(image)
        (tmp / FOLDER_MARKER).write_text(json.dumps(
            {"format": options.format, "object": grid.names[index], "grid": str(grid.path),
             "files": [p.name for p in written]}, indent=1) + "\n")
    if options.video is not None:
        written.append(write_video(options.video, frames, options.fps))
    return written
