"""A newcomer's first session: what the viewer shows, says and answers (issue 16).

Pure parts (frame-time readout, right-drag, candidate overlays, the panel's size limit, the demo's
captions) run anywhere; keyboard quit runs a headless world; the scripted first session runs
`main.py view` at 1280x720 in a GLFW window with ImGui under Xvfb and compares its screenshots.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.platform.clock import FrameClock
from engine.platform.input import InputState, MouseButtonEvent, MouseMoveEvent


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_frame_readout_shows_a_blocking_frame_and_not_the_fast_ones_around_it():
    now = FakeTime()
    clock = FrameClock(now=now)
    for _ in range(121):                     # two seconds at 60 FPS
        clock.tick()
        now.t += 1 / 60
    assert clock.fps == pytest.approx(60, rel=0.02) and clock.frame_ms == pytest.approx(16.7, abs=0.1)
    now.t += 26.0                            # one frame of blocking work (26 s after the last)
    clock.tick()
    assert clock.fps < 0.05 and clock.frame_ms > 26000 and "26.0 s" in clock.readout()
    now.t += 1 / 60
    clock.tick()                             # the next fast frame: the slow one is still in view
    assert clock.fps < 0.1 and clock.slowest_ms > 26000 and clock.frame_ms < 20
    for _ in range(61):
        now.t += 1 / 60
        clock.tick()
    assert clock.fps == pytest.approx(60, rel=0.02) and clock.slowest_ms < 20   # a second later: gone
    assert clock.dt == pytest.approx(1 / 60)


def test_a_right_press_after_a_move_drags_only_the_motion_after_it():
    state = InputState()
    state.begin_frame()
    for event in (MouseMoveEvent(100, 100), MouseMoveEvent(400, 20),       # an ordinary move ...
                  MouseButtonEvent("right", True)):                        # ... then the press
        state.apply(event)
    assert state.right_drag == (0.0, 0.0)
    state.apply(MouseMoveEvent(410, 25))
    assert state.right_drag == (10.0, 5.0)
    state.begin_frame()
    state.apply(MouseMoveEvent(420, 25))
    state.apply(MouseButtonEvent("right", False))
    state.apply(MouseMoveEvent(500, 500))                                  # after the release
    assert state.right_drag == (10.0, 0.0)


def test_candidate_overlays_are_upright_outlined_and_sit_on_the_prompted_view():
    from components.camera import Camera
    from engine.scenes.builtin import builtin_scene
    from systems.camera.system import viewer_camera
    from systems.ui.candidates import EDGE_ALPHA, FILL_ALPHA, candidate_rect, candidate_rgba

    mask = np.zeros((6, 5), bool)
    mask[0:3, 1:4] = True                                                  # the top of the image
    tinted = candidate_rgba(mask, (10, 20, 30), fill=True)
    assert tinted.shape == (6, 5, 4) and (tinted[3:, :, 3] == 0).all()    # row 0 stays on top
    assert tinted[1, 2, 3] == FILL_ALPHA and tinted[0, 1, 3] == EDGE_ALPHA and tuple(tinted[1, 2, :3]) == (10, 20, 30)
    outline = candidate_rgba(mask, (10, 20, 30), fill=False)
    assert outline[1, 2, 3] == 0 and outline[2, 3, 3] == EDGE_ALPHA

    scene = builtin_scene(64)
    cam = viewer_camera(scene, 720, 1280)
    view = Camera.of_view(scene, cam.view)
    x0, y0, x1, y1 = candidate_rect(cam, view)
    assert (x0, x1) == pytest.approx((0, 1280), abs=1e-3) and y1 - y0 == pytest.approx(1280 * view.H / view.W)
    assert (y0 + y1) / 2 == pytest.approx(360)                             # the view's width fills the viewer
    free = cam.camera().resized(144, 256)                                   # a click on a free camera
    assert candidate_rect(cam, free) == pytest.approx((0, 0, 1280, 720), abs=1e-3)
    moved = dataclasses.replace(cam, T_world_camera=cam.views[3], view=None)
    assert candidate_rect(moved, view) is None                               # moved away: not drawn


def test_the_panel_limit_is_a_fifth_of_a_1280x720_view():
    from systems.ui.panel import PANEL_W, panel_max_height

    assert PANEL_W * panel_max_height(720, 1280) <= 0.2 * 1280 * 720 + 1
    assert panel_max_height(200, 300) == 200 - 16                           # never taller than the window


def test_captions_mark_the_click_and_keep_the_rest_of_the_picture():
    from systems.viewer.annotate import MARKER_COLOR, annotate

    image = np.full((240, 320, 3), 90, np.uint8)
    out = annotate(image, "one click", legend=[((255, 0, 255), "'sphere'"), (None, "the click")], click=(200, 150))
    assert tuple(out[150, 200]) == MARKER_COLOR                            # the marker's cross at the click
    assert out[:10, :40].mean() < 60 and (out[:, 300:] == 90).all()       # a dark caption; the rest kept
    swatch = np.all(out[:60, :60] == (255, 0, 255), axis=-1)
    assert swatch.sum() > 20                                               # the legend's colour swatch


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import trained_builtin_field
    from engine.scenes.builtin import builtin_truth

    scene, field = trained_builtin_field()
    path = tmp_path_factory.mktemp("field") / "field.pt"
    save_field(path, field, scene_hash=scene.content_hash())
    return scene, field, builtin_truth(scene.H), path


def _viewer(inputs, steps, tmp_path, *, record: bool):
    from systems.record.recorder import RecordingSettings, start_recording
    from systems.sam.gt import GtSegmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.session import SessionFiles

    scene, field, truth, path = inputs
    app = build_viewer(scene, field, GtSegmenter(truth.instance_dir()), H=scene.H, W=scene.W, gl=False, ui=False,
                       script=steps, fixed_dt=1 / 30, recording=True, files=SessionFiles(field_path=str(path)))
    if record:
        start_recording(app, RecordingSettings(tmp_path / "session.jsonl", field_path=str(path)))
    return app


def test_escape_and_ctrl_q_quit_and_ask_first_while_recording(inputs, tmp_path):
    from systems.viewer.resources import ViewerLog, ViewerSettings

    # Steps run in frames 1, 4, 7, ...: the frame a step quits in is the number of frames run.
    escape, ctrl_q = {"after": 3, "key": "ESCAPE"}, {"after": 3, "key": "Q", "mods": ["ctrl"]}
    assert _viewer(inputs, [{"key": "W"}, escape], tmp_path, record=False).run(max_frames=50) == 4
    assert _viewer(inputs, [{"key": "W"}, ctrl_q], tmp_path, record=False).run(max_frames=50) == 4
    steps = [{"key": "W"}, escape, {"after": 3, "key": "W"},       # asked, then "stay"
             escape, ctrl_q]                                      # asked, then quit
    app = _viewer(inputs, steps, tmp_path, record=True)
    assert app.run(max_frames=50) == 13 and app.resource(ViewerSettings).quit_asked
    assert any("again to stop it and quit" in line for line in app.resource(ViewerLog).lines)


XVFB_SCREEN = "1280x720x24"                 # the xvfb fixture (tests/conftest.py) reads it


def _shot(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)        # [720, 1280, 3]


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).sum(-1) > 24                                            # [H, W] bool


def test_first_session_in_a_1280x720_window(inputs, xvfb, tmp_path):
    """The README's steps: open the viewer, click an object, pick a candidate (it propagates), a
    second object, hide and show the panel, quit with Escape. Screenshots with and without the
    panel show where it is: it covers at most a fifth of the view with two objects; the hint is
    there until the first click; the lifted candidate's outline lies on the clicked object."""
    from scipy.ndimage import binary_dilation

    from components.camera import Camera
    from systems.camera.system import viewer_camera
    from systems.ui.candidates import candidate_rect
    from systems.viewer.demo import object_click

    scene, _, truth, field_path = inputs
    cam = viewer_camera(scene, 720, 1280)
    first, second = (object_click(cam, scene, truth.instance_masks[cam.view], k) for k in (1, 2))
    hide = [{"key": "H"}, {"after": 2, "wait": "still"}]
    steps = [{"wait": "still"}, {"screenshot": "hint.png"}, *hide, {"screenshot": "bare.png"}, {"key": "H"},
             {"click": list(first)}, {"wait": "segmented"}, {"after": 2, "wait": "still"},
             {"screenshot": "candidates.png"}, *hide, {"screenshot": "candidates_bare.png"}, {"key": "H"},
             {"key": "1"}, {"wait": "segmented"}, {"key": "N"}, {"after": 2, "click": list(second)},
             {"wait": "segmented"}, {"key": "1"}, {"wait": "segmented"}, {"after": 2, "wait": "still"},
             {"screenshot": "two.png"}, *hide, {"screenshot": "two_bare.png"}, {"key": "H"},
             {"after": 2, "key": "ESCAPE"}]
    (tmp_path / "script.json").write_text(json.dumps(steps))
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "main.py"), "view", "builtin-64", "--field", str(field_path), "--size", "1280x720",
         "--script", "script.json", "--segmenter", "gt", "--gt-masks", str(truth.instance_dir()),
         "--propagation-views", "3", "--frames", "20000"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:]
    frames = int(result.stderr.split("viewer: ")[1].split()[0])
    assert frames < 20000                                                    # Escape quit, not --frames

    def panel(shot: str, bare: str) -> np.ndarray:
        """The panel: the rectangle from its corner (8, 8) that the screenshot with the UI adds,
        measured along its title bar (right edge) and its left padding (bottom edge)."""
        added = _differs(_shot(tmp_path / shot), _shot(tmp_path / bare))
        right = 12 + int(np.argmin(added[12, 12:]))
        bottom = 12 + int(np.argmin(added[12:, 10]))
        inside = np.zeros_like(added)
        inside[8:bottom, 8:right] = True
        return inside

    hint, bare = _shot(tmp_path / "hint.png"), _shot(tmp_path / "bare.png")
    assert _differs(hint, bare)[680:705, 400:880].mean() > 0.5              # the hint line at the bottom
    box = panel("two.png", "two_bare.png").sum()
    assert 0.03 * 1280 * 720 < box <= 0.2 * 1280 * 720, box / (1280 * 720)
    assert not _differs(_shot(tmp_path / "two.png"), _shot(tmp_path / "two_bare.png"))[680:705, 400:880].any()

    # The lifted candidate's outline: drawn beside the panel, on the clicked object's boundary.
    drawn = _differs(_shot(tmp_path / "candidates.png"), _shot(tmp_path / "candidates_bare.png"))
    drawn &= ~binary_dilation(panel("candidates.png", "candidates_bare.png"), iterations=3)
    x0, y0, x1, y1 = candidate_rect(cam, Camera.of_view(scene, cam.view))
    object_mask = truth.instance_masks[cam.view] == 1                          # [64, 64] in the prompted view
    ys, xs = np.mgrid[0:720, 0:1280]
    u = ((xs + 0.5 - x0) / (x1 - x0) * object_mask.shape[1]).astype(int).clip(0, object_mask.shape[1] - 1)
    v = ((ys + 0.5 - y0) / (y1 - y0) * object_mask.shape[0]).astype(int).clip(0, object_mask.shape[0] - 1)
    near = binary_dilation(object_mask, iterations=1)[v, u]                   # [720, 1280] near the object
    flipped = binary_dilation(object_mask[::-1], iterations=1)[v, u]
    assert drawn.sum() > 500 and drawn[near].sum() > 0.9 * drawn.sum() > drawn[flipped].sum() * 1.2


@pytest.mark.gl
def test_toggling_the_overlay_redraws_the_whole_view_at_once_then_refines_it(inputs):
    """M after the full-resolution frame: the next frame shown is a whole low-resolution frame in
    the new state (no band of new overlay over the old image), then it refines to full again."""
    from engine.platform.gl import GLUnavailableError, headless_context
    from engine.schedule import Stage
    from systems.render.gl_present import GLPresenter
    from systems.sam.gt import GtSegmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.resources import ViewerSettings
    from systems.viewer.run import run_headless
    from systems.viewer.script import ScriptPlayer

    try:
        headless_context().release()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    scene, field, truth, _ = inputs
    app = build_viewer(scene, field, GtSegmenter(truth.instance_dir()), H=96, W=128, gl=True, ui=False,
                       script=[], fixed_dt=1 / 30)
    app.resource(ScriptPlayer).steps = [{"wait": "still"}, {"key": "M"}, {"after": 2, "wait": "still"},
                                        {"quit": True}]
    shown = []

    def note_frame(app) -> None:
        shown.append((app.resource(ViewerSettings).overlay, app.resource(GLPresenter).shown))

    app.schedule.add(Stage.END, note_frame)
    run_headless(app, max_frames=600)
    toggled = next(i for i, (overlay, _) in enumerate(shown) if not overlay)
    assert shown[toggled - 1][1] == "full" and shown[toggled][1] == "low"
    assert shown[-1] == (False, "full")


def test_the_built_in_scene_generation_is_announced_only_when_it_runs(tmp_path, monkeypatch, capsys):
    from engine.scenes.builtin import cache_dir
    from systems.viewer.scene_setup import _announce_builtin_generation

    monkeypatch.setenv("SA3D_CACHE", str(tmp_path))
    _announce_builtin_generation("builtin-64", 2)
    assert "generating the built-in scene (32x32 px" in capsys.readouterr().err
    (cache_dir(32)).mkdir(parents=True)
    (cache_dir(32) / "transforms.json").write_text("{}")
    for name in ("builtin-64", str(tmp_path)):
        _announce_builtin_generation(name, 2)
    assert capsys.readouterr().err == ""


def test_the_no_sam_notice_says_it_once(tmp_path, monkeypatch):
    from systems.sam.factory import make_segmenter

    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    notice = make_segmenter("auto", cache_dir=tmp_path).notice
    assert notice.startswith("using the fallback segmenter: ") and notice.lower().count("sam checkpoint") == 1
