"""The viewer camera: fly / orbit controls turned into a pose each frame.

Bindings: W A S D move, Q / E down / up, right mouse drag looks around (fly) or orbits (orbit),
scroll changes the fly speed (or the orbit distance), TAB toggles fly / orbit, F snaps to the
nearest training view, [ and ] step through the training views. Mouse input is ignored while the
UI wants the mouse (InputState.want_mouse); keys while it wants the keyboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from components.camera import Camera
from engine.platform.clock import FrameClock
from engine.platform.input import InputState
from systems.camera import ops

LOOK_RADIANS_PER_PIXEL = 0.004
SCROLL_SPEED_FACTOR = 1.2     # fly speed multiplier per wheel step
SCROLL_DOLLY_FACTOR = 0.9     # orbit distance multiplier per wheel step
MOVES = {"W": (0, 0, 1), "S": (0, 0, -1), "A": (-1, 0, 0), "D": (1, 0, 0)}


@dataclass
class ViewerCamera:
    """The live camera. Written by move_camera only (and by whoever builds the viewer)."""
    T_world_camera: np.ndarray          # [4, 4] float64 OpenCV camera to world
    K: np.ndarray                       # [3, 3] float32 intrinsics of the H x W view
    H: int
    W: int
    up: np.ndarray                      # [3] world up
    views: np.ndarray                   # [N, 4, 4] training view poses to snap to
    view_ids: tuple[int, ...]           # their scene view indices
    scale: float                        # scene size (world units), sets speeds
    speed: float                        # fly speed, world units per second
    mode: str = "fly"                   # "fly" | "orbit"
    target: np.ndarray = field(default_factory=lambda: np.zeros(3))   # [3] orbit centre
    view: int | None = None             # scene view index while snapped to a training view

    def camera(self) -> Camera:
        return Camera(self.K.astype(np.float32), self.T_world_camera.astype(np.float32), self.H, self.W)


def set_pose(app, T: np.ndarray, view: int | None = None) -> None:
    """Writes ViewerCamera's pose (and the training view it is snapped to, if any) and stamps it
    changed (App.mark_changed: the presenter redraws on app.changed(ViewerCamera))."""
    cam = app.resource(ViewerCamera)
    cam.T_world_camera = np.asarray(T, np.float64)
    cam.view = view
    app.mark_changed(ViewerCamera)


def viewer_camera(scene, H: int, W: int) -> ViewerCamera:
    """A ViewerCamera for an H x W viewer on `scene`, starting at its first training view."""
    ids = tuple(int(i) for i in scene.train_ids) or tuple(range(len(scene)))
    views = np.asarray(scene.T_world_camera, np.float64)[list(ids)]                  # [N, 4, 4]
    scale = float(np.linalg.norm(np.asarray(scene.bbox[1]) - np.asarray(scene.bbox[0])))
    cam = ViewerCamera(T_world_camera=views[0].copy(), K=ops.viewer_intrinsics(scene.K[ids[0]], scene.W, H, W),
                       H=H, W=W, up=ops.world_up(views), views=views, view_ids=ids, scale=scale,
                       speed=0.25 * scale, view=ids[0])
    cam.target = ops.orbit_target(cam.T_world_camera, np.asarray(scene.bbox, np.float64).mean(axis=0))
    return cam


def move_camera(app) -> None:
    """Reads InputState and FrameClock; writes ViewerCamera (pose, mode, speed, snapped view; the
    pose through set_pose, which stamps it changed)."""
    cam, state = app.resource(ViewerCamera), app.resource(InputState)
    dt = app.resource(FrameClock).dt
    for event in state.key_presses():
        if event.key == "TAB":
            cam.mode = "orbit" if cam.mode == "fly" else "fly"
            if cam.mode == "orbit":
                cam.target = ops.orbit_target(cam.T_world_camera, _views_centre(cam))
        elif event.key == "F":
            i = ops.nearest_view(cam.T_world_camera, cam.views, cam.scale)
            set_pose(app, cam.views[i], cam.view_ids[i])
        elif event.key in ("LEFT_BRACKET", "RIGHT_BRACKET"):
            step = 1 if event.key == "RIGHT_BRACKET" else -1
            current = cam.view_ids.index(cam.view) if cam.view in cam.view_ids else \
                ops.nearest_view(cam.T_world_camera, cam.views, cam.scale) - step
            i = (current + step) % len(cam.view_ids)
            set_pose(app, cam.views[i], cam.view_ids[i])
    if not state.want_keyboard:
        move = np.sum([MOVES[k] for k in MOVES if k in state.keys] or [(0, 0, 0)], axis=0)
        rise = ("E" in state.keys) - ("Q" in state.keys)
        if np.any(move) or rise:
            T = ops.fly(cam.T_world_camera, move, rise, cam.speed * dt, cam.up)
            if cam.mode == "orbit":
                cam.target = cam.target + (T[:3, 3] - cam.T_world_camera[:3, 3])
            set_pose(app, T)
    if state.want_mouse:
        return
    dx, dy = state.right_drag
    if dx or dy:
        if cam.mode == "fly":
            set_pose(app, ops.mouse_look(cam.T_world_camera, dx, dy, cam.up, LOOK_RADIANS_PER_PIXEL))
        else:
            set_pose(app, ops.orbit(cam.T_world_camera, cam.target, dx, dy, cam.up, LOOK_RADIANS_PER_PIXEL))
    if state.scroll:
        if cam.mode == "fly":
            cam.speed *= SCROLL_SPEED_FACTOR ** state.scroll
        else:
            set_pose(app, ops.dolly(cam.T_world_camera, cam.target, SCROLL_DOLLY_FACTOR ** state.scroll))


def _views_centre(cam: ViewerCamera) -> np.ndarray:
    """The point the training cameras look at on average: the orbit centre (least squares)."""
    origins, dirs = cam.views[:, :3, 3], cam.views[:, :3, 2]                          # [N, 3] each
    A = np.eye(3) * len(dirs) - dirs.T @ dirs
    b = (origins - dirs * np.sum(origins * dirs, axis=1, keepdims=True)).sum(axis=0)
    return np.linalg.lstsq(A, b, rcond=None)[0]
