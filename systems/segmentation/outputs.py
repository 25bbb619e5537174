"""What a segmentation writes: mask_grid.npz (systems/segmentation/grid_file.py) and per-view masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.resources import MaskGrid, SceneData
from engine.io import atomic_path
from systems.inverse.ops import coverage_mask
from systems.segmentation.grid_file import save_mask_grid
from systems.segmentation.views import scene_view_entry


def view_mask(app, view: int, channel: int) -> np.ndarray:
    """bool [H, W]: the object's 2D mask in scene view `view`, rendered from the 3D mask
    (systems.inverse.ops.coverage_mask)."""
    votes = app.resource(MaskGrid).votes[channel:channel + 1]
    return coverage_mask(scene_view_entry(app, view).weights, votes)[0]


def write_view_masks(app, folders, channels, views_of, progress=None) -> None:
    """Write `<view name>.png` (0/255) of object i (mask grid channel `channels[i]`) into `folders[i]`
    for every view in `views_of[i]`, atomically. A view's masks of every object that wants it are
    rendered together: one gather and one sparse product over the view's weights."""
    from PIL import Image

    scene = app.resource(SceneData).scene
    votes = app.resource(MaskGrid).votes
    selections = {}                        # objects -> their channels' votes (one copy per distinct set)
    for view in sorted(set().union(*map(set, views_of))):
        wanted = tuple(i for i, views in enumerate(views_of) if view in views)
        if wanted not in selections:
            selections[wanted] = votes[[channels[i] for i in wanted]]
        masks = coverage_mask(scene_view_entry(app, view).weights, selections[wanted])
        for i, mask in zip(wanted, masks):
            with atomic_path(Path(folders[i]) / f"{scene.view_names[view]}.png") as tmp:
                Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(tmp, format="PNG")
            if progress is not None:
                progress()


def write_segment_outputs(app, folder: Path, objects, results, seconds: dict, masks_start: float, start: float,
                          *, segmenter, settings) -> None:
    """`segment`'s outputs in `folder`: mask_grid.npz, the masks of every view per object (only the
    prompted view for an object whose every view was rejected: masks/<view>.png for one object,
    masks/<object name>/<view>.png for several) and summary.json (views accepted / rejected with
    IoU, the early stop, seconds per stage, segmenter, settings, split)."""
    import dataclasses
    import json
    import time

    from tqdm import tqdm

    from components.resources import ViewCache
    from engine.io import atomic_write

    scene = app.resource(SceneData).scene
    save_mask_grid(app, folder / "mask_grid.npz")
    written = [[obj.view] if result.failed else list(range(len(scene))) for obj, result in zip(objects, results)]
    folders = [folder / "masks" / (obj.name if len(objects) > 1 else "") for obj in objects]
    with tqdm(total=sum(map(len, written)), desc="masks", unit="view") as bar:
        write_view_masks(app, folders, [result.channel for result in results], written,
                         progress=lambda: bar.update(1))
    cache = app.resource(ViewCache)
    seconds["write_outputs"] = time.perf_counter() - masks_start
    seconds["view_weights_total"] = cache.seconds
    seconds["total"] = time.perf_counter() - start
    names = scene.view_names

    def views_iou(pairs):
        return [{"view": names[v], "iou": round(iou, 4)} for v, iou in pairs]

    per_object = [{"object": obj.name, "prompted_view": names[obj.view], "prompts": obj.given,
                   "accepted": views_iou(r.accepted), "rejected": views_iou(r.rejected),
                   "not_tried": [names[v] for v in r.not_tried], "stopped_early": r.stopped_early,
                   "message": r.message, "masks_written": [names[v] for v in views],
                   "start_check": r.start_check.summary() if r.start_check is not None else None}
                  for obj, r, views in zip(objects, results, written)]
    summary = {
        "scene": scene.name, "scene_hash": scene.content_hash(), "field_hash": app.resource(SceneData).field_hash,
        "segmenter": segmenter.name, "segmenter_notice": segmenter.notice,
        "settings": dataclasses.asdict(settings),
        "train_views": [names[i] for i in scene.train_ids], "test_views": [names[i] for i in scene.test_ids],
        **(per_object[0] if len(objects) == 1 else {"objects": per_object}),
        "view_weights": {"built": cache.built, "read_from_cache": cache.loaded},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    atomic_write(folder / "summary.json", json.dumps(summary, indent=1))
