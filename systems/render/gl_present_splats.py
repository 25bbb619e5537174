"""Present the live view of a splat scene: the GL splat renderer (systems/render/gl_splats.py) in
place of the ray marcher, with the same overlay, object views, mask rate limit and screenshots
(systems/render/gl_present.py), and progressive detail (systems/render/splat_detail.py): a
preview while the camera moves, every splat at full resolution, built over a few frames, when it
stops."""

from __future__ import annotations

from dataclasses import dataclass, field

import moderngl

from components.resources import SceneData
from systems.camera.system import ViewerCamera
from systems.render.gl_present import GLPresenter, frame_event, show, sync_frame, timed_draw
from systems.render.gl_raymarch import GLRayMarcher
from systems.render.gl_splats import GLSplatRenderer
from systems.render.ops import object_ids
from systems.render.progressive import TRANSITIONS, Phase
from systems.render.splat_detail import LEVELS, SplatDetailConfig, SplatProgress, SplatWork
from systems.viewer.resources import ViewerSettings


@dataclass
class SplatFrames:
    """The splat presenter's state (GLPresenter.splats; one writer: present_splat_frame)."""
    renderer: GLSplatRenderer
    background: tuple[float, float, float]
    config: SplatDetailConfig = field(default_factory=SplatDetailConfig)
    progress: SplatProgress = field(default_factory=SplatProgress)
    targets: dict = field(default_factory=dict)   # "preview" / "full" -> half-float (texture, framebuffer)
    shown: str = "preview"
    seconds: float = 0.0                          # drawing time of the last frame


def present_splat_frame(app) -> None:
    """Reads ViewerCamera, ViewerSettings, SceneData (a GaussianScene), MaskGrid, SegObject,
    ActiveObject (each re-read when the App stamps it changed); writes GLPresenter; draws the frame."""
    p, cam, settings = app.resource(GLPresenter), app.resource(ViewerCamera), app.resource(ViewerSettings)
    scene_data = app.try_resource(SceneData)
    if p.marcher is None:
        p.marcher = GLRayMarcher(p.ctx)              # its blit shows the frame
    if scene_data is None:
        return
    if p.splats is None or app.changed(SceneData):
        renderer = GLSplatRenderer(p.ctx)
        renderer.load_cloud(scene_data.field.cloud)
        p.splats = SplatFrames(renderer, tuple(map(float, scene_data.field.background)))
        p.last_size, p.mask_dirty, p.ids, p.style = None, True, None, None
    s: SplatFrames = p.splats
    n = len(s.renderer.means)
    changed = sync_frame(app, p, settings, lambda votes: object_ids(votes, (n,), grow_voxels=0),
                         s.renderer.set_object_ids, s.renderer.set_objects)
    event = frame_event(app, p, cam, changed)
    refining = TRANSITIONS[(s.progress.phase, event)] is Phase.REFINING
    total = s.renderer.sort(cam.T_world_camera) if refining else 0   # the full-detail order (cached per pose)
    work = s.progress.plan(event, total, s.config)
    p.state.phase = s.progress.phase                     # what frame_still and take_screenshots read
    s.seconds = timed_draw(p, lambda: _draw(s, p, cam, work))
    s.progress.measured(work, s.seconds, s.config)
    show(p, cam, s.targets[s.shown][0])


def _target(s: SplatFrames, ctx: moderngl.Context, name: str, H: int, W: int):
    """The half-float (texture, framebuffer) `name` of size H x W (made or remade when the size changed)."""
    held = s.targets.get(name)
    if held is not None and held[0].size == (W, H):
        return held
    if held is not None:
        for obj in held:
            obj.release()
    texture = ctx.texture((W, H), 4, dtype="f2")
    texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
    s.targets[name] = (texture, ctx.framebuffer(color_attachments=[texture]))
    return s.targets[name]


def _draw(s: SplatFrames, p: GLPresenter, cam: ViewerCamera, work: SplatWork) -> None:
    overlay, (mode, selected), _ = p.style
    options = dict(overlay=overlay, view_mode=mode, selected=selected)
    if work.level is not None:
        scale, stride = LEVELS[work.level]
        H, W = max(1, round(cam.H * scale)), max(1, round(cam.W * scale))
        _, fbo = _target(s, p.ctx, "preview", H, W)
        fbo.use()
        fbo.clear(*s.background, 1.0)
        s.renderer.draw(cam.camera().resized(H, W).K, cam.T_world_camera, H, W, stride=stride,
                        points=stride > 1, **options)
        s.shown = "preview"
        return
    if work.stop == work.start and not work.finished:
        return
    _, fbo = _target(s, p.ctx, "full", cam.H, cam.W)
    fbo.use()
    if work.restart:
        fbo.clear(*s.background, 1.0)
    s.renderer.draw(cam.K, cam.T_world_camera, cam.H, cam.W, part=(work.start, work.stop), **options)
    if work.finished:
        s.shown = "full"
