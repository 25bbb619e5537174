"""The headless demo (no display): segment the built-in scene's first object through the viewer's
own systems, driven by an input script, and write screenshots of the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.camera import Camera
from systems.camera.system import ViewerCamera


def object_click(cam: ViewerCamera, scene, instance_mask: np.ndarray, k: int) -> tuple[float, float]:
    """A viewer pixel (x, y) on object k: its mask's most interior pixel in the camera's snapped
    view (instance_mask uint8 [H, W] of that view), mapped into the viewer image."""
    from scipy.ndimage import distance_transform_edt

    inside = distance_transform_edt(instance_mask == k)                    # [H, W]
    row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
    view_K = Camera.of_view(scene, cam.view).K
    p = cam.K @ np.linalg.inv(view_K) @ np.array([col + 0.5, row + 0.5, 1.0])
    return float(p[0] / p[2]), float(p[1] / p[2])


def demo_script(click: tuple[float, float], out: Path) -> list[dict]:
    """Click the object, pick the first candidate (propagates), wait, screenshot in three views."""
    return [{"wait": "still"}, {"click": list(click)}, {"after": 2, "key": "1"},
            {"wait": "segmented"}, {"wait": "still"}, {"screenshot": str(out / "viewer.png")},
            {"key": "V"}, {"after": 2, "wait": "still"}, {"screenshot": str(out / "object_alone.png")},
            {"key": "V"}, {"after": 2, "wait": "still"}, {"screenshot": str(out / "object_removed.png")},
            {"after": 3, "quit": True}]


def run_demo(scene, field, *, H: int, W: int, out: Path, segmenter=None) -> Path:
    """Run the demo on an EGL context and write out/viewer.png, object_alone.png, object_removed.png
    and summary.json; returns `out`. The built-in scene's ground-truth masks segment when no
    segmenter is given."""
    import esper

    from components.segmentation import Propagation, SegObject
    from engine.scenes.builtin import builtin_truth
    from engine.scenes.scene import SceneError
    from systems.sam.factory import make_segmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import run_headless

    if scene.kind != "builtin":
        raise SceneError("the headless demo runs on the built-in scene: `python main.py view builtin`, "
                         "or set DISPLAY for the interactive viewer")
    truth = builtin_truth(scene.H)
    segmenter = segmenter or make_segmenter("gt", gt_masks=str(truth.mask_dir(truth.object_names[0])))
    app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=False, fixed_dt=1 / 30, script=[])
    cam = app.resource(ViewerCamera)
    click = object_click(cam, scene, truth.instance_masks[cam.view], 1)
    from systems.viewer.script import ScriptPlayer

    app.resource(ScriptPlayer).steps = demo_script(click, out)
    frames = run_headless(app, max_frames=5000)
    with app.active():
        summary = [{"name": o.name, "color": list(o.color), "voxels": int((app_votes(app, o.channel) > 0).sum()),
                    "accepted_views": len(p.accepted), "rejected_views": len(p.rejected)}
                   for e, (o, p) in esper.get_components(SegObject, Propagation)]
    from engine.io import atomic_write

    atomic_write(out / "summary.json", json.dumps({"frames": frames, "objects": summary}, indent=2))
    return out


def app_votes(app, channel: int) -> np.ndarray:
    from components.resources import MaskGrid

    return app.resource(MaskGrid).votes[channel].numpy()
