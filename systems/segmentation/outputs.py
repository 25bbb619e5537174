"""What a segmentation writes: mask_grid.npz (layout: README, "Data formats") and per-view masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.resources import MaskGrid, SceneData
from engine.io import atomic_path
from systems.inverse.ops import coverage_mask
from systems.segmentation.objects import objects_by_channel
from systems.segmentation.views import scene_view_entry

MASK_GRID_VERSION = 1


def save_mask_grid(app, path: str | Path) -> None:
    """Write the App's MaskGrid with its objects' names/colours (channel order) atomically."""
    grid, data = app.resource(MaskGrid), app.resource(SceneData)
    objects = objects_by_channel(app)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle, votes=grid.votes.numpy().astype(np.float32), counts=grid.counts.numpy().astype(np.float32),
                names=np.array([o.name for o in objects], dtype=str),
                colors=np.array([o.color for o in objects], dtype=np.uint8).reshape(-1, 3),
                bbox=np.asarray(grid.bbox, np.float32), space=np.array(grid.space),
                scene_hash=np.array(data.scene.content_hash()), field_hash=np.array(data.field_hash),
                version=np.array(MASK_GRID_VERSION))


def view_mask(app, view: int, channel: int) -> np.ndarray:
    """bool [H, W]: the object's 2D mask in scene view `view`, rendered from the 3D mask
    (systems.inverse.ops.coverage_mask)."""
    votes = app.resource(MaskGrid).votes[channel:channel + 1]
    return coverage_mask(scene_view_entry(app, view).weights, votes)[0].numpy()


def write_view_masks(app, folder: str | Path, channel: int, views, progress=None) -> None:
    """Write `<view name>.png` (0/255) for every view in `views` into `folder`, atomically."""
    from PIL import Image

    scene = app.resource(SceneData).scene
    for view in views:
        mask = view_mask(app, view, channel)
        with atomic_path(Path(folder) / f"{scene.view_names[view]}.png") as tmp:
            Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(tmp, format="PNG")
        if progress is not None:
            progress()
