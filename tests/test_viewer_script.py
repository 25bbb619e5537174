"""Scripted input drives the whole viewer: fly, snap back to a view, click an object, pick a mask,
wait for propagation, toggle the overlay, take screenshots; the overlay must sit on that object.

Runs headless on EGL, and in a real GLFW window with the ImGui overlay under Xvfb when installed.
"""

import subprocess

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.gl
SIZE = 128          # viewer pixels per side: twice the 64 px scene views


@pytest.fixture(scope="module")
def inputs():
    from engine.field.fixtures import trained_builtin_field
    from engine.scenes.builtin import builtin_truth

    scene, field = trained_builtin_field()
    return scene, field, builtin_truth(scene.H)


@pytest.fixture(scope="module")
def egl():
    from engine.platform.gl import GLUnavailableError, headless_context

    try:
        headless_context().release()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")


XVFB_SCREEN = "640x480x24"                 # the xvfb fixture (tests/conftest.py) reads it


def script(click, tmp_path):
    # H hides the ImGui panel (it would cover the small window); the UI is still built each frame.
    return [{"key": "H"}, {"wait": "still"}, {"key": "W", "hold": 6}, {"after": 8, "drag": [30, 10], "frames": 4},
            {"after": 6, "key": "F"},                       # back onto the nearest training view
            {"after": 2, "wait": "still"}, {"click": list(click)}, {"after": 2, "wait": "segmented"}, {"key": "1"},
            {"wait": "segmented"}, {"key": "M"}, {"after": 2, "wait": "still"},
            {"screenshot": str(tmp_path / "off.png")}, {"after": 2, "key": "M"}, {"after": 2, "wait": "still"},
            {"screenshot": str(tmp_path / "on.png")}, {"after": 3, "quit": True}]


def run_viewer(inputs, tmp_path, *, windowed: bool):
    from components.resources import SegmentationSettings
    from systems.camera.system import ViewerCamera
    from systems.sam.factory import make_segmenter
    from systems.viewer.demo import object_click
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import run_headless, run_windowed
    from systems.viewer.script import ScriptPlayer

    scene, field, truth = inputs
    segmenter = make_segmenter("gt", gt_masks=str(truth.mask_dir(truth.object_names[0])))
    settings = SegmentationSettings(views=tuple(scene.train_ids[::8]))        # a short propagation
    app = build_viewer(scene, field, segmenter, H=SIZE, W=SIZE, gl=True, ui=windowed, script=[],
                       fixed_dt=1 / 30, settings=settings)
    cam = app.resource(ViewerCamera)
    start_view = cam.view
    click = object_click(cam, scene, truth.instance_masks[start_view], 1)
    app.resource(ScriptPlayer).steps = script(click, tmp_path)
    frames = (run_windowed(app, title="test", max_frames=20000) if windowed else run_headless(app, max_frames=20000))
    assert app.resource(ScriptPlayer).finished, f"script stuck after {frames} frames"
    assert app.resource(ViewerCamera).view == start_view
    return app, truth.instance_masks[start_view]


def check_overlay(tmp_path, instance_mask, color):
    off = np.asarray(Image.open(tmp_path / "off.png")).astype(float)         # [S, S, 3]
    on = np.asarray(Image.open(tmp_path / "on.png")).astype(float)
    k = SIZE // instance_mask.shape[0]
    inside = np.kron(instance_mask == 1, np.ones((k, k), bool))              # [S, S] the object
    others = np.kron(instance_mask >= 2, np.ones((k, k), bool))              # other objects
    tinted = np.abs(on - off).sum(-1) > 20                                   # [S, S]
    assert tinted[inside].mean() > 0.6 and tinted[others].mean() < 0.1
    towards = np.linalg.norm(off[inside] - color, axis=-1) - np.linalg.norm(on[inside] - color, axis=-1)
    assert np.median(towards) > 10                                           # moved to the object colour


def object_color(app):
    import esper

    from components.segmentation import SegObject

    with app.active():
        (_, obj), = esper.get_component(SegObject)
    return np.array(obj.color, float)


def test_scripted_session_headless(inputs, egl, tmp_path):
    app, mask = run_viewer(inputs, tmp_path, windowed=False)
    check_overlay(tmp_path, mask, object_color(app))


def test_scripted_session_in_a_window_with_imgui(inputs, xvfb, tmp_path):
    """The same session through `main.py view` in a GLFW window with ImGui (its own process: GLX
    and the EGL contexts of the other tests do not mix in one process)."""
    import json
    import sys
    from pathlib import Path

    from systems.camera.system import viewer_camera
    from systems.viewer.demo import object_click

    scene, field, truth = inputs
    cam = viewer_camera(scene, SIZE, SIZE)
    click = object_click(cam, scene, truth.instance_masks[cam.view], 1)
    (tmp_path / "script.json").write_text(json.dumps(script(click, tmp_path)))
    field_path = tmp_path / "field.pt"
    from engine.field.checkpoint import save_field

    save_field(field_path, field, scene_hash=scene.content_hash())
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "main.py"), "view", "builtin-64", "--field", str(field_path),
         "--size", f"{SIZE}x{SIZE}", "--script", str(tmp_path / "script.json"), "--segmenter", "gt",
         "--gt-masks", str(truth.mask_dir(truth.object_names[0])), "--propagation-views", "7", "--frames", "20000"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    from systems.segmentation.objects import PALETTE

    check_overlay(tmp_path, truth.instance_masks[cam.view], np.array(PALETTE[0], float))  # first object
