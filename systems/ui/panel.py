"""The ImGui overlay: scene / field / speed info, segmenter, objects, candidates, propagation,
settings, screenshot, export and recording (systems/ui/files_panel.py). Buttons send the same
requests as keys (systems/viewer/prompts.py); while a recording replays they are disabled."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import esper
import moderngl
import numpy as np
from imgui_bundle import imgui

from components.messages import (
    CandidatePicked,
    ClearRequested,
    DeleteObjectRequested,
    NewObjectRequested,
    ObjectSelected,
    PropagationRequested,
    RecolorObjectRequested,
    RenameObjectRequested,
    UndoRequested,
)
from components.resources import ActiveObject, SceneData, SegmentationSettings, SegmenterHandle, ViewCache
from components.segmentation import Candidates, Prompts, Propagation, SegObject
from engine.platform.clock import FrameClock
from engine.platform.imgui_layer import ImGuiLayer
from engine.platform.input import InputState
from systems.camera.system import ViewerCamera
from systems.record.replayer import replay_active
from systems.render.gl_present import GLPresenter
from systems.segmentation.views import view_key
from systems.ui.files_panel import draw_files
from systems.viewer.resources import VIEW_MODES, ScreenshotRequested, ViewerLog, ViewerSettings

THUMB = 96             # candidate thumbnail size, pixels
PANEL_W = 330          # panel width, pixels
MARGIN = 8             # panel distance to the window's edges, pixels
HELP = ("left click: add point   shift/ctrl click: negative point   1/2/3: pick mask + propagate",
        "WASD/QE: fly   right drag: look (orbit)   scroll: speed   TAB: fly/orbit",
        "F: nearest view   [ ]: prev/next view   M: overlay   V: object view   Z: undo   C: clear",
        "N: new object   P: propagate   DEL: delete   H: hide UI   F12: screenshot")


@dataclasses.dataclass
class Thumbnails:
    """GL textures of the candidate masks shown (one writer: draw_ui)."""
    source: object = None                  # the Candidates instance they show
    textures: list = dataclasses.field(default_factory=list)


def draw_ui(app) -> None:
    """Reads every viewer and segmentation resource; sends requests; writes ViewerSettings,
    SegmentationSettings (replaced), InputState.want_mouse / want_keyboard and Thumbnails."""
    layer, settings, state = app.resource(ImGuiLayer), app.resource(ViewerSettings), app.resource(InputState)
    layer.begin_frame()
    if settings.show_ui:
        imgui.set_next_window_pos(imgui.ImVec2(MARGIN, MARGIN), imgui.Cond_.first_use_ever)
        # As tall as its content (sections open and close), at most the window's height: then it scrolls.
        height = max(imgui.get_io().display_size.y - 2 * MARGIN, 100.0)
        imgui.set_next_window_size_constraints(imgui.ImVec2(PANEL_W, 0), imgui.ImVec2(PANEL_W, height))
        imgui.begin("SA3D", None, imgui.WindowFlags_.always_auto_resize)
        _info(app)
        replaying = replay_active(app)
        if replaying:              # begin_disabled(False) would hide the colour swatches (imgui_bundle 1.93)
            imgui.begin_disabled()
        _objects(app, settings)
        _candidates(app)
        _propagation(app)
        if replaying:
            imgui.end_disabled()
        if imgui.button("Screenshot"):
            app.send(ScreenshotRequested(_screenshot_path(app)))
        draw_files(app)
        if imgui.collapsing_header("Keys"):
            for line in HELP:
                imgui.text_wrapped(line)
        imgui.end()
    layer.end_frame()
    state.want_mouse, state.want_keyboard = layer.want_mouse, layer.want_keyboard


def _info(app) -> None:
    data, clock, cam = app.resource(SceneData), app.resource(FrameClock), app.resource(ViewerCamera)
    presenter = app.try_resource(GLPresenter)
    scene = data.scene
    imgui.text(f"scene {scene.name}: {len(scene)} views, {scene.H}x{scene.W} px")
    imgui.text(f"field {'x'.join(map(str, data.field.resolution))} voxels (Z Y X)")
    phase = presenter.state.phase.value if presenter else "-"
    ray_ms = presenter.ray_seconds * 1000 if presenter else 0.0
    imgui.text(f"{clock.fps:5.1f} FPS  ray march {ray_ms:5.1f} ms  {phase}")
    view = f"view {cam.view}" if cam.view is not None else "free"
    imgui.text(f"camera {cam.mode}, {view}, speed {cam.speed:.2f}")
    segmenter = app.resource(SegmenterHandle).segmenter
    imgui.text(f"segmenter: {getattr(segmenter, 'name', type(segmenter).__name__)}")
    for line in app.resource(ViewerLog).lines:
        imgui.text_wrapped(line)


def _objects(app, settings: ViewerSettings) -> None:
    if not imgui.collapsing_header("Objects", imgui.TreeNodeFlags_.default_open):
        return
    active = app.resource(ActiveObject).object_id
    for _, obj in sorted(esper.get_component(SegObject), key=lambda pair: pair[1].id):
        imgui.push_id(str(obj.id))
        shown = obj.id not in settings.hidden
        changed, shown = imgui.checkbox("##visible", shown)
        if changed:
            (settings.hidden.discard if shown else settings.hidden.add)(obj.id)
        imgui.same_line()
        picked, rgb = imgui.color_edit3("##colour", [c / 255.0 for c in obj.color],
                                        imgui.ColorEditFlags_.no_inputs)
        if picked:
            app.send(RecolorObjectRequested(obj.id, tuple(round(c * 255.0) for c in rgb)))
        imgui.same_line()
        if imgui.selectable(obj.name, obj.id == active, size=imgui.ImVec2(150, 0))[0]:
            app.send(ObjectSelected(obj.id))
        imgui.same_line()
        if imgui.small_button("x"):
            app.send(DeleteObjectRequested(obj.id))
        if obj.id == active:
            entered, name = imgui.input_text("name", obj.name, imgui.InputTextFlags_.enter_returns_true)
            if entered and name.strip():
                app.send(RenameObjectRequested(obj.id, name.strip()))
        imgui.pop_id()
    if imgui.button("New object"):
        app.send(NewObjectRequested())
    imgui.same_line()
    if imgui.button("Undo"):
        app.send(UndoRequested())
    imgui.same_line()
    if imgui.button("Clear"):
        app.send(ClearRequested())
    _, settings.overlay = imgui.checkbox("overlay (M)", settings.overlay)
    _, settings.view_mode = imgui.combo("view (V)", settings.view_mode, list(VIEW_MODES))


def _active_entity(app) -> int | None:
    active = app.resource(ActiveObject).object_id
    return next((e for e, o in esper.get_component(SegObject) if o.id == active), None)


def _candidates(app) -> None:
    entity = _active_entity(app)
    if entity is None or not esper.has_component(entity, Candidates):
        return
    candidates = esper.component_for_entity(entity, Candidates)
    thumbs = app.try_resource(Thumbnails) or Thumbnails()
    app.insert_resource(thumbs)
    if thumbs.source is not candidates:
        _make_thumbnails(app, thumbs, entity, candidates)
    imgui.text("candidates (1 / 2 / 3):")
    for i, texture in enumerate(thumbs.textures):
        if i:
            imgui.same_line()
        picked = i == candidates.picked
        if picked:
            imgui.push_style_color(imgui.Col_.button, imgui.ImVec4(0.9, 0.7, 0.1, 1.0))
        if imgui.image_button(f"cand{i}", imgui.ImTextureRef(texture.glo), imgui.ImVec2(THUMB, THUMB)):
            app.send(CandidatePicked(i))
            app.send(PropagationRequested())
        if picked:
            imgui.pop_style_color()


def _make_thumbnails(app, thumbs: Thumbnails, entity: int, candidates: Candidates) -> None:
    """Candidate masks tinted over the prompted view's image, as GL textures."""
    for texture in thumbs.textures:
        texture.release()
    ctx: moderngl.Context = app.resource(GLPresenter).ctx
    prompts = esper.component_for_entity(entity, Prompts)
    color = np.array(esper.component_for_entity(entity, SegObject).color, np.float32)
    entry = app.resource(ViewCache).entries.get(view_key(prompts.camera, prompts.view))
    thumbs.textures = []
    for mask in candidates.masks:                                          # [H, W] bool each
        base = entry.image.astype(np.float32) if entry is not None and entry.image.shape[:2] == mask.shape \
            else np.full((*mask.shape, 3), 40.0, np.float32)
        image = np.where(mask[..., None], 0.45 * base + 0.55 * color, 0.6 * base)    # [H, W, 3]
        rgba = np.concatenate([image, np.full((*mask.shape, 1), 255.0)], -1).astype(np.uint8)[::-1]
        thumbs.textures.append(ctx.texture(mask.shape[::-1], 4, np.ascontiguousarray(rgba).tobytes()))
    thumbs.source = candidates


def _propagation(app) -> None:
    entity = _active_entity(app)
    if entity is not None and esper.has_component(entity, Propagation):
        prop = esper.component_for_entity(entity, Propagation)
        fraction = prop.done / max(prop.total, 1)
        imgui.progress_bar(fraction, imgui.ImVec2(-1, 0),
                           f"{prop.done}/{prop.total} views, {len(prop.accepted)} accepted")
    if imgui.collapsing_header("Propagation settings"):
        s = app.resource(SegmentationSettings)
        _, prompts = imgui.slider_int("prompts", s.num_prompts, 1, 20)
        _, lam = imgui.slider_float("lambda", s.lambda_others, 0.0, 5.0)
        _, gate = imgui.slider_float("IoU gate", s.iou_gate, 0.0, 1.0)
        new = dataclasses.replace(s, num_prompts=prompts, lambda_others=lam, iou_gate=gate)
        if new != s:
            app.insert_resource(new)
        if imgui.button("Propagate (P)"):
            app.send(PropagationRequested())


def _screenshot_path(app) -> Path:
    return Path("screenshots") / f"viewer_{app.frame:06d}.png"
