"""Present the live view: keep the GL textures in sync with the field and the mask grid, ray-march
progressively (systems/render/progressive.py) and show the frame; take screenshots."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
from systems.segmentation.work import work_in_flight
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
    last_size: tuple | None = None           # (H, W) the last frame showed; None: draw a whole new frame
    style: tuple | None = None               # overlay / view mode / object table drawn
    drawn: tuple | None = None               # what of `style` the image shows (_drawn)
    ids: np.ndarray | None = None            # [Z, Y, X] uint8 the object ids uploaded last
    present: frozenset = frozenset()         # the object ids among them
    mask_dirty: bool = False                 # MaskGrid changed since the object ids were uploaded
    since_upload: float = float("inf")        # frame-clock seconds since the object ids were uploaded
    ray_seconds: float = 0.0                 # ray-marching time of the last frame
    screenshots: list = field(default_factory=list)   # ScreenshotRequested waiting for a finished frame
    splats: object | None = None             # a splat scene's presenter state (systems/render/gl_present_splats.py)


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
    re-read when the App stamps it changed) and whether the background worker computes what the
    user waits for; writes GLPresenter; draws the frame. A change that leaves the image as it was (a
    new object with no voxel yet, a mask whose object ids did not change) draws nothing new; the
    refinement to full resolution waits while the worker computes (it would take cores from it)."""
    p, cam, settings = app.resource(GLPresenter), app.resource(ViewerCamera), app.resource(ViewerSettings)
    scene_data = app.try_resource(SceneData)
    if p.marcher is None:
        p.marcher = GLRayMarcher(p.ctx)
    if scene_data is None:
        return
    if app.changed(SceneData):
        p.marcher.load_volume(volume_arrays(scene_data.field, precision=p.precision))
        p.last_size, p.mask_dirty, p.ids = None, True, None
    volume = p.marcher.volume
    changed = sync_frame(app, p, settings, lambda votes: object_ids(votes, volume.resolution),
                         p.marcher.set_object_ids, p.marcher.set_objects)
    event = frame_event(app, p, cam, changed)
    if event == "still" and p.state.phase is Phase.REFINING and work_in_flight(app):
        work = FrameWork()                        # the refinement goes on once the worker is done
    else:
        work = p.state.plan(event, cam.H, p.config)
    _ensure_buffers(p, cam.H, cam.W)
    p.ray_seconds = timed_draw(p, lambda: _draw(p, cam, work, p.style))
    p.state.measured(work, p.ray_seconds, p.config)
    show(p, cam, p.buffers[p.shown][0])


def frame_event(app, p: GLPresenter, cam: ViewerCamera, changed: bool) -> str:
    """This frame's event for a progressive state machine: "moved" when ViewerCamera was stamped
    (set_pose) or the size changed since the last frame, else "changed" when what is drawn changed
    (`changed`), else "still"; remembers the size."""
    moved = app.changed(ViewerCamera) | (p.last_size != (cam.H, cam.W))
    p.last_size = (cam.H, cam.W)
    return "moved" if moved else ("changed" if changed else "still")


def timed_draw(p: GLPresenter, draw: Callable[[], None]) -> float:
    """Seconds `draw` takes, the GL work finished."""
    start = time.perf_counter()
    draw()
    p.ctx.finish()
    return time.perf_counter() - start


def show(p: GLPresenter, cam: ViewerCamera, texture: moderngl.Texture) -> None:
    """Draw `texture` over the whole target (scaled to the camera's size)."""
    p.target.use()
    p.ctx.viewport = (0, 0, cam.W, cam.H)
    p.marcher.blit(texture, (0, 0, cam.W, cam.H))


def frame_style(app, settings: ViewerSettings) -> tuple:
    """(overlay, view mode + selected id, ((channel, colour, visible), ...)) of this frame."""
    objects = tuple(sorted((o.channel, tuple(o.color), o.id not in settings.hidden)
                           for _, o in esper.get_component(SegObject)))
    active = app.try_resource(ActiveObject)
    selected = next((o.channel + 1 for _, o in esper.get_component(SegObject)
                     if active is not None and o.id == active.object_id), 0)
    mode = settings.view_mode if selected else 0
    return settings.overlay, (mode, selected), objects


def sync_frame(app, p: GLPresenter, settings: ViewerSettings, ids_of: Callable, upload_ids: Callable,
               set_objects: Callable) -> bool:
    """Bring the object ids and the style up to date (sync_mask, sync_style); returns whether the
    image changes: new object ids, or a style change that shows (_drawn)."""
    changed = sync_mask(app, p, ids_of, upload_ids)
    sync_style(app, p, settings, set_objects)
    drawn = _drawn(p.style, p.present)
    changed |= drawn != p.drawn
    p.drawn = drawn
    return changed


def _drawn(style: tuple, present: frozenset) -> tuple:
    """What of a style (frame_style) the image shows: the overlay, the view mode with its object
    (none in the scene mode), and the objects that own voxels (present: their ids, channel + 1)."""
    overlay, (mode, selected), objects = style
    return overlay, (mode, selected) if mode else (0, 0), tuple(o for o in objects if o[0] + 1 in present)


def sync_style(app, p: GLPresenter, settings: ViewerSettings, set_objects: Callable) -> None:
    """Recompute GLPresenter.style when ViewerSettings, SegObject or ActiveObject was stamped changed
    (or on the first frame) and hand the object table to `set_objects(colors uint8 [K, 3], visible
    bool [K])`."""
    restyled = [app.changed(kind) for kind in (ViewerSettings, SegObject, ActiveObject)]
    if not any(restyled) and p.style is not None:
        return
    p.style = frame_style(app, settings)
    colors = np.zeros((len(p.style[2]), 3), np.uint8)
    visible = np.zeros(len(p.style[2]), bool)
    for channel, color, shown in p.style[2]:
        colors[channel], visible[channel] = color, shown
    set_objects(colors, visible)


def sync_mask(app, p: GLPresenter, ids_of: Callable[[np.ndarray | None], np.ndarray],
              upload_ids: Callable[[np.ndarray], None]) -> bool:
    """When MaskGrid was stamped changed, compute its object ids (`ids_of(votes [K, ...] or None)`,
    uint8) and hand them to `upload_ids` if they differ from the uploaded ones; at most every
    MASK_UPLOAD_INTERVAL_S of the frame clock (a rate limit for propagation, which changes it every
    frame; deterministic in scripted runs) and not while a refinement is drawing (it would show old
    and new masks side by side); returns whether it uploaded."""
    p.mask_dirty |= app.changed(MaskGrid)
    clock = app.try_resource(FrameClock)
    p.since_upload += clock.dt if clock is not None else MASK_UPLOAD_INTERVAL_S
    grid = app.try_resource(MaskGrid)
    if not p.mask_dirty or p.state.phase is Phase.REFINING or p.since_upload < MASK_UPLOAD_INTERVAL_S:
        return False
    ids = ids_of(None if grid is None else grid.votes)
    p.mask_dirty, p.since_upload = False, 0.0
    if p.ids is not None and np.array_equal(ids, p.ids):
        return False
    upload_ids(ids)
    p.ids, p.present = ids, frozenset(np.flatnonzero(np.bincount(ids.ravel(), minlength=1)).tolist()) - {0}
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

