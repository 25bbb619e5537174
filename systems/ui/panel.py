"""The ImGui overlay: a compact panel (scene, speed readout, segmenter, what is being worked on, the
objects with their candidates, propagation, export and recording in collapsible sections, keys)
that covers at most MAX_AREA of the view, and one line at the bottom of the view (a hint until the
first click, the quit question while recording). Buttons send the same requests as keys
(systems/viewer/prompts.py); while a recording replays they are disabled."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import esper
from imgui_bundle import imgui

from components.messages import (
    ClearRequested,
    DeleteObjectRequested,
    NewObjectRequested,
    ObjectSelected,
    PropagationRequested,
    RecolorObjectRequested,
    RenameObjectRequested,
    UndoRequested,
)
from components.resources import ActiveObject, SceneData, SegmentationSettings, SegmenterHandle
from components.segmentation import PendingView, Propagation, SegObject
from engine.platform.clock import FrameClock
from engine.platform.imgui_layer import ImGuiLayer
from engine.platform.input import InputState
from systems.camera.system import ViewerCamera
from systems.export.system import export_lines
from systems.record.replayer import replay_active
from systems.render.gl_present import GLPresenter
from systems.render.progressive import Phase
from systems.sam.families import FAMILIES
from systems.sam.system import encoding_lines
from systems.segmentation.work import work_lines
from systems.ui.candidates import draw_candidates
from systems.ui.files_panel import draw_files
from systems.viewer.resources import VIEW_MODES, ScreenshotRequested, ViewerLog, ViewerSettings

PANEL_W = 300          # panel width, pixels
MARGIN = 8             # panel distance to the window's edges, pixels
MAX_AREA = 0.2         # the panel covers at most this share of the view (it scrolls beyond) ...
MIN_HEIGHT = 240       # ... but stays this tall in a small window
SLOW_SYSTEM_S = 0.2    # a system that took longer is named in the panel ...
SLOW_SHOWN_S = 3.0     # ... for this long
BUSY = imgui.ImVec4(1.0, 0.8, 0.3, 1.0)
HINT = "Click an object to segment it.   Right-drag: look   WASD: fly   Esc: quit   H: hide the panel"
QUESTION = "Recording: Esc / Ctrl+Q again stops it (the file is kept) and quits; any other key stays"
HELP = ("left click: add point   shift/ctrl click: negative point   1/2/3: pick mask + propagate",
        "WASD/QE: fly   right drag: look (orbit)   scroll: speed   TAB: fly/orbit",
        "F: nearest view   [ ]: prev/next view   M: overlay   V: object view   Z: undo   C: clear",
        "N: new object   P: propagate   DEL: delete   H: hide UI   F12: screenshot   Esc / Ctrl+Q: quit")


@dataclasses.dataclass
class PanelLayout:
    """Where the panel was drawn this frame, window pixels; all 0 while hidden (one writer: draw_ui)."""
    x: float = 0.0
    y: float = 0.0
    W: float = 0.0
    H: float = 0.0


@dataclasses.dataclass
class SlowFrame:
    """The panel's note of the last slow system (one writer: draw_ui)."""
    line: str = ""
    until: float = 0.0                     # perf_counter time it is shown until


def panel_max_height(H: float, W: float) -> float:
    """The panel's height limit in an H x W window: MAX_AREA of the view, at least MIN_HEIGHT, never
    more than the window."""
    return min(H - 2 * MARGIN, max(MAX_AREA * H * W / PANEL_W, MIN_HEIGHT))


def draw_ui(app) -> None:
    """Reads every viewer and segmentation resource; sends requests; writes ViewerSettings,
    SegmentationSettings (replaced), InputState.want_mouse / want_keyboard, PanelLayout, SlowFrame
    and CandidateOverlays."""
    layer, settings, state = app.resource(ImGuiLayer), app.resource(ViewerSettings), app.resource(InputState)
    layout = app.try_resource(PanelLayout) or PanelLayout()
    app.insert_resource(layout)
    layer.begin_frame()
    layout.x = layout.y = layout.W = layout.H = 0.0
    if settings.show_ui:
        size = imgui.get_io().display_size
        imgui.set_next_window_pos(imgui.ImVec2(MARGIN, MARGIN), imgui.Cond_.first_use_ever)
        imgui.set_next_window_size_constraints(imgui.ImVec2(PANEL_W, 0),
                                               imgui.ImVec2(PANEL_W, panel_max_height(size.y, size.x)))
        if imgui.begin("SA3D", None, imgui.WindowFlags_.always_auto_resize)[0]:
            _panel(app, settings)
        position, extent = imgui.get_window_pos(), imgui.get_window_size()
        layout.x, layout.y, layout.W, layout.H = position.x, position.y, extent.x, extent.y
        imgui.end()
    _banner(settings)
    layer.end_frame()
    state.want_mouse, state.want_keyboard = layer.want_mouse, layer.want_keyboard


def _panel(app, settings: ViewerSettings) -> None:
    _info(app)
    _work(app)
    for line in app.resource(ViewerLog).lines[-2:]:
        imgui.text_wrapped(line)
    replaying = replay_active(app)
    if replaying:              # begin_disabled(False) would hide the colour swatches (imgui_bundle 1.93)
        imgui.begin_disabled()
    _objects(app, settings)
    _propagation(app)
    if replaying:
        imgui.end_disabled()
    draw_files(app)
    if imgui.collapsing_header("Keys"):
        for line in HELP:
            imgui.text_wrapped(line)
    if imgui.button("Screenshot (F12)"):
        app.send(ScreenshotRequested(_screenshot_path(app)))
    imgui.same_line()
    imgui.text_disabled("Esc / Ctrl+Q: quit")


def _banner(settings: ViewerSettings) -> None:
    """One line at the bottom centre of the view: the quit question while it is asked, else (with
    the panel shown) the first-session hint until the first click."""
    if settings.quit_asked:
        text = QUESTION
    elif settings.show_ui and not settings.prompted and not esper.get_component(SegObject):
        text = HINT
    else:
        return
    size, extent = imgui.get_io().display_size, imgui.calc_text_size(text)
    x, y = max((size.x - extent.x) / 2, MARGIN), size.y - extent.y - 3 * MARGIN
    draw = imgui.get_foreground_draw_list()
    draw.add_rect_filled(imgui.ImVec2(x - MARGIN, y - MARGIN / 2),
                         imgui.ImVec2(x + extent.x + MARGIN, y + extent.y + MARGIN / 2),
                         imgui.get_color_u32(imgui.ImVec4(0.0, 0.0, 0.0, 0.75)), 4.0)
    draw.add_text(imgui.ImVec2(x, y), imgui.get_color_u32(imgui.ImVec4(1.0, 1.0, 1.0, 1.0)), text)


def _info(app) -> None:
    data, clock, cam = app.resource(SceneData), app.resource(FrameClock), app.resource(ViewerCamera)
    presenter = app.try_resource(GLPresenter)
    scene = data.scene
    imgui.text(f"{scene.name}: {len(scene)} views of {scene.W}x{scene.H}")
    imgui.text(clock.readout())
    if presenter is None or presenter.state.phase is Phase.DONE:
        drawing = "full resolution"
    else:
        drawing = f"{presenter.state.phase.value}, ray march {presenter.ray_seconds * 1000:.0f} ms"
    imgui.text(f"{drawing}; {cam.mode}, " + (f"view {cam.view}" if cam.view is not None else "free camera"))
    imgui.text(f"field {data.representation.describe()}")
    segmenter = app.resource(SegmenterHandle).segmenter
    family = FAMILIES.get(getattr(segmenter, "name", None))
    imgui.text(f"segmenter: {family.describe(segmenter) if family else type(segmenter).__name__}")
    if family is not None and imgui.is_item_hovered():
        imgui.set_tooltip(family.help)
    notice = getattr(segmenter, "notice", None)
    if notice:
        imgui.same_line()
        imgui.text_disabled("(why?)")
        if imgui.begin_item_tooltip():
            imgui.push_text_wrap_pos(imgui.get_font_size() * 30)
            imgui.text_wrapped(notice)
            imgui.pop_text_wrap_pos()
            imgui.end_tooltip()


def busy_lines(app) -> list[str]:
    """The lines of the work in flight, one per job: the encoder's, the worker's, the exports'."""
    return encoding_lines(app) + work_lines(app) + export_lines(app)


def _work(app) -> None:
    """The work in flight, and for SLOW_SHOWN_S the slowest system of the last frame that blocked
    (its time is what the readout above shows)."""
    pending = [p.view for _, p in esper.get_component(PendingView)]
    if pending:
        imgui.text_colored(BUSY, f"working: segmenting view {pending[0]} ...")
    for line in busy_lines(app):
        imgui.text_colored(BUSY, line)
    slow = app.try_resource(SlowFrame) or SlowFrame()
    app.insert_resource(slow)
    name, seconds = max(app.system_seconds.items(), key=lambda item: item[1], default=("", 0.0))
    now = time.perf_counter()
    if seconds > SLOW_SYSTEM_S:
        slow.line, slow.until = f"slow frame: {name} took {seconds:.1f} s", now + SLOW_SHOWN_S
    if now < slow.until:
        imgui.text_colored(BUSY, slow.line)


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
            app.mark_changed(ViewerSettings)
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
    overlay, settings.overlay = imgui.checkbox("overlay (M)", settings.overlay)
    mode, settings.view_mode = imgui.combo("view (V)", settings.view_mode, list(VIEW_MODES))
    if overlay or mode:
        app.mark_changed(ViewerSettings)
    draw_candidates(app, _active_entity(app))


def _active_entity(app) -> int | None:
    active = app.resource(ActiveObject).object_id
    return next((e for e, o in esper.get_component(SegObject) if o.id == active), None)


def _propagation(app) -> None:
    entity = _active_entity(app)
    if entity is not None and esper.has_component(entity, Propagation):
        prop = esper.component_for_entity(entity, Propagation)
        fraction = prop.done / max(prop.total, 1)
        imgui.progress_bar(fraction, imgui.ImVec2(-1, 0),
                           f"{prop.done}/{prop.total} views, {len(prop.accepted)} accepted")
        if prop.start_check is not None and prop.start_check.disagrees:
            imgui.text_wrapped(f"start check: {prop.start_check.message}")
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
