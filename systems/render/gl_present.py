"""Present the live view: keep the GL textures in sync with the field and the mask grid, ray-march
progressively (systems/render/progressive.py) and show the frame; take screenshots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import esper
import moderngl
import numpy as np

from components.resources import ActiveObject, MaskGrid, SceneData
from components.segmentation import SegObject
from engine.media import write_png
from engine.platform.clock import FrameClock
from systems.camera.system import ViewerCamera
from systems.render.gl_raymarch import GLRayMarcher, read_rgb
from systems.render.ops import object_ids, volume_arrays
from systems.render.progressive import FrameWork, Phase, ProgressiveConfig, ProgressiveState
from systems.viewer.resources import ScreenshotRequested, ScreenshotSaved, ViewerLog, ViewerSettings

MASK_UPLOAD_INTERVAL_S = 0.25   # during propagation the overlay is refreshed at most this often (frame clock)


@dataclass
class GLPresenter:
    """GL state of the live view (one writer: present_frame; take_screenshots reads it)."""
    ctx: moderngl.Context
    target: moderngl.Framebuffer             # where the frame is shown (the window, or an offscreen one)
    precision: str = "u8"                    # volume texture precision (systems/render/ops.py)
    config: ProgressiveConfig = field(default_factory=ProgressiveConfig)
    state: ProgressiveState = field(default_factory=ProgressiveState)
    marcher: GLRayMarcher | None = None
    buffers: dict = field(default_factory=dict)   # "low" / "full" -> (texture, framebuffer)
    shown: str = "low"
    last_view: tuple | None = None           # what the last frame showed (camera version, size)
    style: tuple | None = None               # overlay / view mode / object table drawn
    mask_dirty: bool = False                 # MaskGrid changed since the object ids were uploaded
    since_upload: float = float("inf")        # frame-clock seconds since the object ids were uploaded
    ray_seconds: float = 0.0                 # ray-marching time of the last frame
    screenshots: list = field(default_factory=list)   # ScreenshotRequested waiting for a finished frame


def window_presenter(window) -> GLPresenter:
    """The presenter of a window (engine/platform/window.py Window): frames go to its screen."""
    return GLPresenter(ctx=window.ctx, target=window.ctx.screen)


@contextmanager
def offscreen_presenter(H: int, W: int) -> Iterator[GLPresenter]:
    """A presenter on a standalone EGL context drawing into an offscreen H x W framebuffer; the
    context is released when the block ends (GLUnavailableError when no GL 3.3 exists)."""
    from engine.platform.gl import headless_context

    ctx = headless_context()
    try:
        yield GLPresenter(ctx=ctx, target=ctx.simple_framebuffer((W, H), components=4))
    finally:
        ctx.release()


def present_frame(app) -> None:
    """Reads ViewerCamera, ViewerSettings, SceneData, MaskGrid, SegObject, ActiveObject (each
    re-read when the App stamps it changed); writes GLPresenter; draws the frame."""
    p, cam, settings = app.resource(GLPresenter), app.resource(ViewerCamera), app.resource(ViewerSettings)
    scene_data = app.try_resource(SceneData)
    if p.marcher is None:
        p.marcher = GLRayMarcher(p.ctx)
    if scene_data is None:
        return
    if app.changed(SceneData):
        p.marcher.load_volume(volume_arrays(scene_data.field, precision=p.precision))
        p.last_view, p.mask_dirty = None, True
    changed = _sync_mask(app, p)
    restyled = [app.changed(kind) for kind in (ViewerSettings, SegObject, ActiveObject)]
    if any(restyled) or p.style is None:
        p.style = _style(app, settings)
        colors = np.zeros((len(p.style[2]), 3), np.uint8)
        visible = np.zeros(len(p.style[2]), bool)
        for channel, color, shown in p.style[2]:
            colors[channel], visible[channel] = color, shown
        p.marcher.set_objects(colors, visible)
        changed = True
    style = p.style
    view = (cam.version, cam.H, cam.W)
    event = "moved" if view != p.last_view else ("changed" if changed else "still")
    p.last_view = view
    work = p.state.plan(event, cam.H, p.config)
    _ensure_buffers(p, cam.H, cam.W)
    start = time.perf_counter()
    _draw(p, cam, work, style)
    p.ctx.finish()
    p.ray_seconds = time.perf_counter() - start
    p.state.measured(work, p.ray_seconds, p.config)
    p.target.use()
    p.ctx.viewport = (0, 0, cam.W, cam.H)
    p.marcher.blit(p.buffers[p.shown][0], (0, 0, cam.W, cam.H))


def _style(app, settings: ViewerSettings) -> tuple:
    """(overlay, view mode + selected id, ((channel, colour, visible), ...)) of this frame."""
    objects = tuple(sorted((o.channel, tuple(o.color), o.id not in settings.hidden)
                           for _, o in esper.get_component(SegObject)))
    active = app.try_resource(ActiveObject)
    selected = next((o.channel + 1 for _, o in esper.get_component(SegObject)
                     if active is not None and o.id == active.object_id), 0)
    mode = settings.view_mode if selected else 0
    return settings.overlay, (mode, selected), objects


def _sync_mask(app, p: GLPresenter) -> bool:
    """Upload object ids when MaskGrid was stamped changed, at most every MASK_UPLOAD_INTERVAL_S of
    the frame clock (a rate limit for propagation, which changes it every frame; deterministic in
    scripted runs) and not while a refinement is drawing bands (they would show old and new masks
    split by a seam); returns whether it uploaded."""
    p.mask_dirty |= app.changed(MaskGrid)
    clock = app.try_resource(FrameClock)
    p.since_upload += clock.dt if clock is not None else MASK_UPLOAD_INTERVAL_S
    grid = app.try_resource(MaskGrid)
    if not p.mask_dirty or p.state.phase is Phase.REFINING or p.since_upload < MASK_UPLOAD_INTERVAL_S:
        return False
    volume = p.marcher.volume
    votes = None if grid is None else grid.votes                                    # [K, Z, Y, X]
    p.marcher.set_object_ids(object_ids(votes, volume.resolution))
    p.mask_dirty, p.since_upload = False, 0.0
    return True


def _ensure_buffers(p: GLPresenter, H: int, W: int) -> None:
    scale = p.state.low_scale or p.config.low_scale
    sizes = {"full": (W, H), "low": (max(1, W // scale), max(1, H // scale))}
    for name, size in sizes.items():
        if name in p.buffers and p.buffers[name][0].size == size:
            continue
        if name in p.buffers:
            for obj in p.buffers[name]:
                obj.release()
        texture = p.ctx.texture(size, 4)
        texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        p.buffers[name] = (texture, p.ctx.framebuffer(color_attachments=[texture]))


def _draw(p: GLPresenter, cam: ViewerCamera, work: FrameWork, style: tuple) -> None:
    overlay, (mode, selected), _ = style
    options = dict(overlay=overlay, view_mode=mode, selected=selected)
    if work.low:
        texture, fbo = p.buffers["low"]
        W, H = texture.size
        fbo.use()
        p.marcher.draw(cam.camera().resized(H, W).K, cam.T_world_camera, H, W, **options)
        p.shown = "low"
        return
    if work.rows == 0:
        return
    texture, fbo = p.buffers["full"]
    fbo.use()
    if work.upscale_first:
        p.marcher.blit(p.buffers["low"][0], (0, 0, cam.W, cam.H))
    scissor = (0, cam.H - work.row - work.rows, cam.W, work.rows)        # GL rows count from the bottom
    p.marcher.draw(cam.K, cam.T_world_camera, cam.H, cam.W, scissor=scissor, **options)
    p.shown = "full"


def take_screenshots(app) -> None:
    """Reads ScreenshotRequested and GLPresenter; writes PNG files (atomically) once the frame is at
    full resolution; sends ScreenshotSaved and logs the path."""
    p = app.resource(GLPresenter)
    p.screenshots += app.read(ScreenshotRequested)
    if not p.screenshots or p.state.phase is not Phase.DONE:
        return
    cam = app.resource(ViewerCamera)
    H, W = cam.H, cam.W
    p.target.use()
    image = read_rgb(p.target, H, W)                                      # [H, W, 3]
    for request in p.screenshots:
        write_png(request.path, image)
        app.send(ScreenshotSaved(request.path))
        log = app.try_resource(ViewerLog)
        if log is not None:
            log.add(f"screenshot: {request.path}")
    p.screenshots = []

