"""export_object: write one segmented object (or the whole grid) in one of the export formats.

Formats (`FORMATS`), all written atomically (engine/io.py):
  npz              the object grid (layout: systems/export/formats.py); every object unless one is named
  ply              binary PLY point cloud: `points` coloured points spread by area over the mesh below
  obj, mesh-ply    the object's mesh (systems/export/ops.py: the field's density cut at the 3D
                   mask and filled, iso surface where alpha over one ray-marching step = `alpha_iso`,
                   Taubin-smoothed `smooth` times, colours from the colour grid), world coordinates
  masks            0/255 PNG masks <camera name>.png: the 2D mask in each camera (inverse.ops.coverage_mask)
  object-renders   RGB PNGs of the object alone (density outside the grown 3D mask removed)
  removed-renders  RGB PNGs of the scene without the object (density inside the grown 3D mask removed)
The per-camera formats write a folder (`out`) as a unit (engine/io.atomic_dir: an interrupted
export leaves the previous folder whole), with `export.json` naming the format, object and files,
and, with `video`, also an .mp4 or .gif of the frames.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.field.grid import VoxelField
from engine.io import atomic_dir, atomic_write
from engine.media import png_bytes, write_video
from systems.export import formats, ops, views
from systems.export.grid_file import ExportError, MaskGridFile, check_matches_field

FORMATS = ("npz", "ply", "obj", "mesh-ply", "masks", "object-renders", "removed-renders")
MESH_FORMATS = ("ply", "obj", "mesh-ply")
VIEW_FORMATS = ("masks", "object-renders", "removed-renders")
FOLDER_MARKER = "export.json"    # every per-camera export folder holds it


@dataclass(frozen=True)
class ExportOptions:
    format: str                      # one of FORMATS
    object: str | None = None        # object name; None = the only one (npz: all of them)
    smooth: int = 10                 # Taubin smoothing iterations of the mesh (0 = none)
    alpha_iso: float = 0.05          # mesh surface: alpha over one ray-marching step (ops.py docstring)
    grow_voxels: int = 1             # renders: the 3D mask is grown by this many voxels before cutting
    points: int = 100_000            # points of the `ply` point cloud
    video: Path | None = None        # per-camera formats: also write this .mp4 / .gif
    fps: int = 12                    # frames per second of the video


def export_object(grid: MaskGridFile, field: VoxelField, out: str | Path, options: ExportOptions, *,
                  cameras: list[views.NamedCamera] | None = None, field_hash: str | None = None) -> list[Path]:
    """Write `options.format` of an object of `grid` (segmented with `field`) to `out`.

    Reads the mask grid, the frozen field and, for the per-camera formats, `cameras` (scene views
    or a camera path). `field_hash`, when given, must equal the grid's. Returns the written paths.
    Raises ExportError for an unknown format or object, an empty mask or surface, missing cameras
    and a grid that does not match the field.
    """
    if options.format not in FORMATS:
        raise ExportError(f"unknown export format '{options.format}': choose one of {', '.join(FORMATS)}")
    check_matches_field(grid, resolution=field.resolution, bbox=field.bbox.cpu().numpy(),
                        space=field.space, field_hash=field_hash)
    out = Path(out)
    if options.format == "npz":
        return [write_object_grid(grid, out, options.object)]
    index = grid.object_index(options.object)
    mask = grid.object_mask(index)                                    # [Z, Y, X] bool
    if options.format in MESH_FORMATS:
        return [_write_mesh(grid.names[index], mask, field, out, options)]
    if not cameras:
        raise ExportError(f"format '{options.format}' renders views: give a scene or a camera path")
    return _write_views(grid, index, mask, field, cameras, out, options)


def object_mesh(field: VoxelField, mask: np.ndarray, options: ExportOptions) -> ops.Mesh:
    """The coloured mesh of the object `mask` [Z, Y, X] bool in `field` (see ops.object_mesh), with
    world-coordinate vertices (field.to_world for NDC fields)."""
    sigma = ops.iso_density(options.alpha_iso, field.step_size)
    # the field's activation sigma = softplus(raw + shift) * scale, inverted at sigma_iso
    raw_level = math.log(math.expm1(sigma / float(field.density_scale))) - float(field.density_shift)
    raw = field.density[0, 0].detach().float().cpu().numpy()               # [Z, Y, X]
    mesh = ops.object_mesh(raw, field.rgb_values().cpu().numpy(), mask, field.bbox.cpu().numpy(),
                           raw_level=raw_level, empty_raw=ops.EMPTY_RAW, smooth_iterations=options.smooth)
    if field.space == "world" or len(mesh.vertices) == 0:
        return mesh
    # an NDC field's mesh is built in NDC; the map to world keeps the winding (positive Jacobian)
    world = field.to_world(torch.from_numpy(np.asarray(mesh.vertices, np.float32)))   # [V, 3]
    return ops.Mesh(vertices=world.numpy().astype(np.float32), faces=mesh.faces, colors=mesh.colors)


def write_object_grid(grid: MaskGridFile, out: Path, name: str | None) -> Path:
    """The `npz` format: object `name`'s votes (every object's for None) in the object grid layout."""
    keep = list(range(len(grid.names))) if name is None else [grid.object_index(name)]
    for k in keep:
        grid.object_mask(k)                                           # refuses empty objects
    atomic_write(out, formats.object_grid_npz(
        votes=grid.votes[keep], names=[grid.names[k] for k in keep], colors=grid.colors[keep],
        bbox=grid.bbox, space=grid.space, scene_hash=grid.scene_hash, field_hash=grid.field_hash))
    return out


def _write_mesh(name: str, mask: np.ndarray, field: VoxelField, out: Path, options: ExportOptions) -> Path:
    mesh = object_mesh(field, mask, options)
    if len(mesh.faces) == 0:
        raise ExportError(f"object '{name}' has no surface: no density inside its 3D mask reaches alpha "
                          f"{options.alpha_iso}; lower it with --alpha-iso or segment again")
    if options.format == "ply":
        points, colors = ops.sample_surface(mesh, options.points)
        data = formats.ply_points(points, colors)
    elif options.format == "obj":
        data = formats.obj_mesh(mesh.vertices, mesh.faces, mesh.colors)
    else:
        data = formats.ply_mesh(mesh.vertices, mesh.faces, mesh.colors)
    atomic_write(out, data)
    return out


def _write_views(grid: MaskGridFile, index: int, mask: np.ndarray, field: VoxelField,
                 cameras: list[views.NamedCamera], out: Path, options: ExportOptions) -> list[Path]:
    grown = ops.grow_mask(mask, options.grow_voxels)                  # [Z, Y, X] bool
    if options.format == "object-renders":
        edited = views.edited_field(field, ~grown)
    elif options.format == "removed-renders":
        edited = views.edited_field(field, grown)
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
