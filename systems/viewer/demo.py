"""The headless demo (no display): segment the built-in scene's first object through the viewer's
own systems and the user's segmenter, driven by an input script; write screenshots that read on
their own (the scene with the object's overlay, a marker at the click and a legend; the object
alone in its own colours; the scene without it, each captioned) and summary.json (per-view IoU
against the built-in ground truth). The object is named after the ground truth's object. The folder
is written as a unit (engine/io.atomic_dir): an interrupted demo leaves the previous one whole."""

from __future__ import annotations

import json
from pathlib import Path

import esper
import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt

from components.camera import Camera
from components.resources import MaskGrid, SegmentationSettings, ViewCache
from components.segmentation import Propagation, SegObject
from engine.io import atomic_dir, atomic_write
from engine.media import write_png
from engine.scenes.builtin import builtin_truth
from engine.scenes.scene import SceneError
from systems.camera.system import ViewerCamera
from systems.segmentation.metrics import mask_scores
from systems.segmentation.outputs import view_mask
from systems.viewer.annotate import annotate
from systems.viewer.plugin import build_viewer
from systems.viewer.run import run_headless
from systems.viewer.script import ScriptPlayer

DEMO_MARKER = "summary.json"   # every demo folder holds it: an earlier demo's folder may be replaced
DEMO_VIEWS = 12        # training views the demo propagates over (evenly spaced): a bounded run
SHOTS = (("viewer.png", "the scene with the object's overlay"), ("object_alone.png", "the object alone"),
         ("object_removed.png", "the scene without the object"))


def object_click(cam: ViewerCamera, scene, instance_mask: np.ndarray, k: int) -> tuple[float, float]:
    """A viewer pixel (x, y) on object k: its mask's most interior pixel in the camera's snapped
    view (instance_mask uint8 [H, W] of that view), mapped into the viewer image."""
    inside = distance_transform_edt(instance_mask == k)                    # [H, W]
    row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
    view_K = Camera.of_view(scene, cam.view).K
    p = cam.K @ np.linalg.inv(view_K) @ np.array([col + 0.5, row + 0.5, 1.0])
    return float(p[0] / p[2]), float(p[1] / p[2])


def demo_script(click: tuple[float, float], name: str, out: Path) -> list[dict]:
    """Click the object, pick the first candidate (propagates), name it, wait, screenshot with the
    overlay, then (overlay off: its own colours) the object alone and the scene without it."""
    (viewer, _), (alone, _), (removed, _) = SHOTS
    return [{"wait": "still"}, {"click": list(click)}, {"wait": "segmented"}, {"after": 2, "key": "1"},
            {"rename": name}, {"wait": "segmented"}, {"wait": "still"}, {"screenshot": str(out / viewer)},
            {"key": "M"}, {"key": "V"}, {"after": 2, "wait": "still"}, {"screenshot": str(out / alone)},
            {"key": "V"}, {"after": 2, "wait": "still"}, {"screenshot": str(out / removed)},
            {"after": 3, "quit": True}]


def caption_shots(out: Path, name: str, color, segmenter: str, click: tuple[float, float]) -> None:
    """Caption the demo's screenshots in `out` (those written) so each reads on its own."""
    (viewer, _), (alone, _), (removed, _) = SHOTS
    captions = {viewer: dict(title=f"one click segments '{name}' in 3D ({segmenter} segmenter)",
                             legend=[(tuple(color), f"'{name}' (overlay)"), (None, "the click")], click=click),
                alone: dict(title=f"'{name}' alone, in its own colours"),
                removed: dict(title=f"the scene without '{name}'")}
    for file, caption in captions.items():
        if (out / file).is_file():
            write_png(out / file, annotate(np.asarray(Image.open(out / file).convert("RGB")), **caption))


def run_demo(scene, field, segmenter, *, H: int, W: int, out: Path, views: int = DEMO_VIEWS) -> dict:
    """Run the demo on an EGL context with `segmenter`, write the screenshots and out/summary.json,
    print what was written; returns the summary. Raises SceneError for a scene other than the
    built-in one (its ground truth places the click and scores the result)."""
    if scene.kind != "builtin":
        raise SceneError("the headless demo runs on the built-in scene: `python main.py view builtin`, "
                         "or set DISPLAY for the interactive viewer")
    if getattr(segmenter, "notice", None):
        print(f"note: {segmenter.notice}")
    truth = builtin_truth(scene.H)
    train = list(scene.train_ids)
    settings = SegmentationSettings(views=tuple(train[::max(1, len(train) // views)][:views]))
    app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=False, fixed_dt=1 / 30, script=[],
                       settings=settings)
    cam = app.resource(ViewerCamera)
    name = truth.object_names[0]
    click = object_click(cam, scene, truth.instance_masks[cam.view], 1)
    with atomic_dir(out, marker=DEMO_MARKER) as folder:
        app.resource(ScriptPlayer).steps = demo_script(click, name, folder)
        print(f"segmenting '{name}' with the {segmenter.name} segmenter over {len(settings.views)} "
              f"views at {W}x{H} ...", flush=True)
        frames = run_headless(app, max_frames=20000)
        summary = {"frames": frames, "segmenter": segmenter.name, "object": name, "click": list(click),
                   "objects": _objects(app, truth)}
        for obj in summary["objects"][:1]:
            caption_shots(folder, obj["name"], obj["color"], segmenter.name, click)
        atomic_write(folder / DEMO_MARKER, json.dumps(summary, indent=2))
    print(f"headless demo (no DISPLAY): wrote {out}/")
    for name, what in SHOTS:
        print(f"  {name:<20} {what}" + ("" if (out / name).is_file() else " (missing: the script did not finish)"))
    for obj in summary["objects"]:
        print(f"  summary.json         '{obj['name']}': {obj['voxels']} voxels, mean IoU "
              f"{obj['mean_iou']:.3f} vs the ground truth over {len(obj['iou'])} views")
    return summary


def _objects(app, truth) -> list[dict]:
    """Per object: name, colour, voxels inside, accepted / rejected views, IoU per cached scene view
    against the ground-truth object it overlaps most."""
    grid, cache = app.resource(MaskGrid), app.resource(ViewCache)
    views = sorted(key for key in cache.entries if isinstance(key, int))
    with app.active():
        pairs = sorted(esper.get_components(SegObject, Propagation), key=lambda pair: pair[1][0].id)
    listed = []
    for _, (obj, prop) in pairs:
        masks = {v: view_mask(app, v, obj.channel) for v in views}                   # view -> [H, W] bool
        hits = np.bincount(np.concatenate([truth.instance_masks[v][m] for v, m in masks.items()] or [[0]]),
                           minlength=len(truth.object_names) + 1)
        k = int(np.argmax(hits[1:])) + 1                                               # the object segmented
        iou = {str(v): round(mask_scores(m, truth.instance_masks[v] == k)["iou"], 4) for v, m in masks.items()}
        listed.append({"name": obj.name, "color": list(obj.color), "truth": truth.object_names[k - 1],
                       "voxels": int((grid.votes[obj.channel] > 0).sum()), "accepted_views": len(prop.accepted),
                       "rejected_views": len(prop.rejected), "iou": iou,
                       "mean_iou": float(np.mean(list(iou.values()))) if iou else 0.0})
    return listed
