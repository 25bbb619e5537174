"""Exports of a segmented splat scene: the object's Gaussians, the scene without them, their points.

The object (or the rest) is written as a 3DGS `.ply` holding exactly the input's vertex properties
(names, order, dtypes, bits: engine/splats/plyio.py), which SuperSplat, the INRIA viewer, gsplat and
nerfstudio load. A Gaussian belongs to the object when its SA3D vote (one value per Gaussian, the
views' averaged votes) is above `min_vote` (0: the paper's rule). A positive `min_vote` drops the
ambiguous ones, whose views disagreed (typically at the object's boundary, half in and half out
of the SAM masks), as SA3D-GS's second pass does. `--format ply` of a splat scene is the centres
of the object's Gaussians in their view-independent (DC) colours. Per view: the object's 2D mask
(the pixels whose weight lies more than half on its Gaussians, systems/inverse/ops.py's rule; a
splat pixel's weight is its opacity plus the backdrop's share, 1 in all), and renders of the object
alone or of the scene without it (the other Gaussians left out: they neither show nor occlude).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.io import atomic_write
from engine.splats.cloud import SH_C0, GaussianCloud
from engine.splats.plyio import write_splats
from engine.splats.raster import render_splats
from systems.export.formats import ply_points
from systems.export.registry import scene_formats
from systems.inverse.ops import MASK_COVERAGE


def selected_gaussians(votes: np.ndarray, min_vote: float = 0.0) -> np.ndarray:
    """bool [N]: the Gaussians whose vote [N] exceeds min_vote."""
    return np.asarray(votes) > min_vote


def write_object_splats(path: str | Path, cloud: GaussianCloud, selected: np.ndarray) -> int:
    """The selected Gaussians as a 3DGS .ply with the input's properties; returns their count."""
    part = cloud.subset(np.asarray(selected, bool))
    write_splats(path, part)
    return len(part)


def write_removed_splats(path: str | Path, cloud: GaussianCloud, selected: np.ndarray) -> int:
    """The scene without the selected Gaussians, as write_object_splats; returns the count kept."""
    return write_object_splats(path, cloud, ~np.asarray(selected, bool))


def write_object_points(path: str | Path, cloud: GaussianCloud, selected: np.ndarray) -> int:
    """The selected Gaussians' centres and DC colours as a coloured point cloud PLY; returns the count."""
    keep = np.asarray(selected, bool)
    rgb = np.clip(SH_C0 * cloud.sh[:, 0].numpy()[keep] + 0.5, 0.0, 1.0)
    atomic_write(path, ply_points(cloud.means.numpy()[keep], np.round(rgb * 255).astype(np.uint8)))
    return int(keep.sum())


def view_mask(cloud: GaussianCloud, selected: np.ndarray, K, T_world_camera, H: int, W: int) -> np.ndarray:
    """bool [H, W]: the pixels of the view whose weight lies more than MASK_COVERAGE on the selected Gaussians."""
    weights = render_splats(cloud, K, T_world_camera, H, W, with_weights=True).weights          # [H*W, N]
    return (weights @ np.asarray(selected, np.float32) > MASK_COVERAGE).reshape(H, W)


def view_render(cloud: GaussianCloud, selected: np.ndarray, K, T_world_camera, H: int, W: int, *,
                background=(0.0, 0.0, 0.0), removed: bool = False) -> np.ndarray:
    """uint8 [H, W, 3]: the selected Gaussians alone (or, `removed`, all the others) over `background`."""
    keep = np.asarray(selected, bool)
    part = cloud.subset(~keep if removed else keep)
    rgb = render_splats(part, K, T_world_camera, H, W, background=background, with_weights=False).rgb
    return np.round(np.clip(rgb.numpy(), 0.0, 1.0) * 255).astype(np.uint8)


SPLAT_FORMATS = tuple(f.name for f in scene_formats("gaussians"))


def export_splat_object(grid, splats, fmt: str, out: str | Path, *, object_name: str | None = None,
                        min_vote: float = 0.0, cameras=None) -> list[Path]:
    """Write format `fmt` of an object of `grid` (a MaskGridFile segmented in the SplatScene `splats`).

    splats / splats-removed: a 3DGS .ply of the object's Gaussians / of all the others; ply: their
    centres as a point cloud; masks, object-renders, removed-renders: a PNG per camera of `cameras`
    (systems/export/views.py's NamedCamera list) in the folder `out`; npz: the object's votes (every
    object's without `object_name`), as for voxels. Raises ExportError for a grid of other Gaussians
    (a grid of an in-memory model, field hash "none", is checked by its size only), an unknown
    format or object, or an empty selection."""
    import json

    from engine.io import atomic_dir, file_sha256
    from engine.media import png_bytes
    from systems.export.axes import scene_up
    from systems.export.export import FOLDER_MARKER, ExportError, write_object_grid

    if fmt not in SPLAT_FORMATS:
        raise ExportError(f"format '{fmt}' is not one of a splat scene's: {', '.join(SPLAT_FORMATS)}")
    cloud = splats.cloud
    if grid.votes.shape[1:] != (len(cloud),) or grid.field_hash not in ("none", file_sha256(splats.ply)):
        raise ExportError(f"{grid.path} was not segmented in {splats.ply} ({len(cloud)} Gaussians): give the "
                          "splat scene it was segmented in with --scene")
    out = Path(out)
    if fmt == "npz":
        keep = list(range(len(grid.names))) if object_name is None else [grid.object_index(object_name)]
        masks = np.stack([grid.object_mask(k) for k in keep])               # refuses empty objects
        return [write_object_grid(grid, keep, masks, scene_up(splats.scene.T_world_camera), out)]
    index = grid.object_index(object_name)
    selected = selected_gaussians(grid.votes[index], min_vote)
    if not selected.any():
        raise ExportError(f"object '{grid.names[index]}' holds no Gaussian with a vote over {min_vote}: "
                          "lower --min-vote or segment again")
    if fmt in ("splats", "splats-removed", "ply"):
        writer = {"splats": write_object_splats, "splats-removed": write_removed_splats,
                  "ply": write_object_points}[fmt]
        writer(out, cloud, selected)
        return [out]
    background = splats.scene.background or (0.0, 0.0, 0.0)
    written = []
    with atomic_dir(out, marker=FOLDER_MARKER) as tmp:
        for named in cameras:
            c = named.camera
            if fmt == "masks":
                image = np.where(view_mask(cloud, selected, c.K, c.T_world_camera, c.H, c.W), 255, 0).astype(np.uint8)
            else:
                image = view_render(cloud, selected, c.K, c.T_world_camera, c.H, c.W, background=background,
                                    removed=fmt == "removed-renders")
            (tmp / f"{named.name}.png").write_bytes(png_bytes(image))
            written.append(out / f"{named.name}.png")
        (tmp / FOLDER_MARKER).write_text(json.dumps({"format": fmt, "object": grid.names[index], "grid": str(grid.path),
                                                     "files": [p.name for p in written]}, indent=1) + "\n")
    return written
