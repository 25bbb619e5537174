"""Clicks and keys on the live view become segmentation requests (components/messages.py).

Left click: a positive point; shift- or ctrl-click: a negative one. The click lands on the view
the segmenter sees: the snapped training view when the camera sits on one (so GT / cached SAM
embeddings apply), else the live camera rendered at ViewerSettings.prompt_size.
Keys: 1 / 2 / 3 pick a candidate mask (and propagate), P propagate again, Z undo the last prompt,
C clear the object, N new object, DELETE delete it, M overlay on / off, V object view mode,
H hide the UI, F12 screenshot, Escape or Ctrl+Q quit (while recording, the first press asks and
the second quits; the recording is closed and kept). While a recording replays into the viewer,
requests are not sent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.camera import Camera
from components.messages import (
    CandidatePicked,
    ClearRequested,
    DeleteObjectRequested,
    NewObjectRequested,
    PromptAdded,
    PropagationRequested,
    UndoRequested,
)
from components.resources import SceneData
from engine.platform.input import InputState
from systems.camera.system import ViewerCamera
from systems.record.replayer import replay_active
from systems.viewer.resources import VIEW_MODES, ScreenshotRequested, ViewerLog, ViewerSettings
from systems.viewer.session import recording_active

KEY_REQUESTS = {"P": PropagationRequested, "Z": UndoRequested, "C": ClearRequested, "N": NewObjectRequested,
                "DELETE": DeleteObjectRequested}
CANDIDATE_KEYS = {"1": 0, "2": 1, "3": 2}


def click_target(cam: ViewerCamera, scene, x: float, y: float, prompt_size: int
                 ) -> tuple[Camera, float, float, int | None]:
    """(camera, x, y, view) on which a click at viewer pixel (x, y) is segmented."""
    if cam.view is not None:
        view_cam = Camera.of_view(scene, cam.view)
        p = view_cam.K @ np.linalg.inv(cam.K) @ np.array([x, y, 1.0])                 # [3]
        if view_cam.contains(p[0] / p[2], p[1] / p[2]):
            return view_cam, float(p[0] / p[2]), float(p[1] / p[2]), cam.view
    scale = prompt_size / max(cam.H, cam.W)
    H, W = max(1, round(cam.H * scale)), max(1, round(cam.W * scale))
    return cam.camera().resized(H, W), x * W / cam.W, y * H / cam.H, None


def is_quit_key(event) -> bool:
    """Escape, or Ctrl+Q."""
    return event.key == "ESCAPE" or (event.key == "Q" and "ctrl" in event.mods)


def handle_quit(app, settings: ViewerSettings) -> None:
    """Quit on Escape / Ctrl+Q; while a recording is written, only on the second press in a row."""
    if settings.quit_asked or not recording_active(app):
        app.exit_requested = True
        return
    settings.quit_asked = True
    log = app.try_resource(ViewerLog)
    if log is not None:
        log.add("recording: press Esc or Ctrl+Q again to stop it and quit (it is kept), any other key stays")


def handle_viewer_input(app) -> None:
    """Reads InputState, ViewerCamera, SceneData; sends PromptAdded, CandidatePicked (+
    PropagationRequested), the KEY_REQUESTS and ScreenshotRequested; writes ViewerSettings; may
    request exit (handle_quit)."""
    state, settings = app.resource(InputState), app.resource(ViewerSettings)
    replaying = replay_active(app)
    for event in state.key_presses():
        if is_quit_key(event):
            handle_quit(app, settings)
            continue
        settings.quit_asked = False
        if replaying and (event.key in CANDIDATE_KEYS or event.key in KEY_REQUESTS):
            continue
        if event.key in CANDIDATE_KEYS:
            app.send(CandidatePicked(CANDIDATE_KEYS[event.key]))
            app.send(PropagationRequested())
        elif event.key in KEY_REQUESTS:
            app.send(KEY_REQUESTS[event.key]())
        elif event.key == "M":
            settings.overlay = not settings.overlay
            app.mark_changed(ViewerSettings)
        elif event.key == "V":
            settings.view_mode = (settings.view_mode + 1) % len(VIEW_MODES)
            app.mark_changed(ViewerSettings)
        elif event.key == "H":
            settings.show_ui = not settings.show_ui
        elif event.key == "F12":
            app.send(ScreenshotRequested(Path("screenshots") / f"viewer_{app.frame:06d}.png"))
    scene_data = app.try_resource(SceneData)
    if scene_data is None or replaying:
        return
    cam = app.resource(ViewerCamera)
    for event, (x, y) in state.clicks():
        if event.button != "left" or not (0 <= x < cam.W and 0 <= y < cam.H):
            continue
        camera, px, py, view = click_target(cam, scene_data.scene, x, y, settings.prompt_size)
        label = 0 if event.mods & {"shift", "ctrl"} else 1
        app.send(PromptAdded(camera=camera, x=px, y=py, label=label, view=view))
        settings.prompted = True
