"""The segmenter's candidate masks, shown as overlays on the live view where the prompted view lies
on screen (while the camera has not moved away from it): the panel lists them as buttons (1 / 2 / 3
with their scores); the one lifted is outlined in the object's colour, the one under the mouse is
tinted with its outline."""

from __future__ import annotations

from dataclasses import dataclass, field

import esper
import moderngl
import numpy as np
from imgui_bundle import imgui

from components.messages import CandidatePicked, PropagationRequested
from components.segmentation import Candidates, Prompts, SegObject
from systems.camera.system import ViewerCamera
from systems.render.gl_present import GLPresenter
from systems.render.ops import OVERLAY_TINT

FILL_ALPHA = round(255 * OVERLAY_TINT)   # candidate mask tint, 0..255: the overlay's
EDGE_ALPHA = 255       # its outline


def candidate_rgba(mask: np.ndarray, color, *, fill: bool) -> np.ndarray:
    """uint8 [H, W, 4]: `color` on mask [H, W] bool's boundary (opaque) and, with `fill`, inside
    it (translucent); transparent elsewhere. Row 0 is the image's top row, as ImGui reads textures."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask, :3] = np.asarray(color, np.uint8)
    rgba[..., 3] = np.where(inner, FILL_ALPHA if fill else 0, np.where(mask, EDGE_ALPHA, 0))
    return rgba


def candidate_rect(cam: ViewerCamera, prompted) -> tuple[float, float, float, float] | None:
    """Viewer pixels (x0, y0, x1, y1) covered by the prompted view's image (components.camera.Camera),
    or None when the live camera is elsewhere (its candidates would not line up with the view)."""
    if not np.allclose(cam.T_world_camera, prompted.T_world_camera, atol=1e-4):
        return None
    to_viewer = cam.K.astype(np.float64) @ np.linalg.inv(prompted.K.astype(np.float64))     # [3, 3]
    corners = to_viewer @ np.array([[0.0, prompted.W], [0.0, prompted.H], [1.0, 1.0]])      # [3, 2]
    (x0, x1), (y0, y1) = corners[:2] / corners[2]
    return float(x0), float(y0), float(x1), float(y1)


@dataclass
class CandidateOverlays:
    """GL textures of the candidate masks shown (one writer: draw_candidates)."""
    entity: int | None = None              # the object entity whose candidates they show
    outlines: list = field(default_factory=list)   # per candidate: its boundary
    tinted: list = field(default_factory=list)     # per candidate: boundary and tinted inside


def draw_candidates(app, entity: int | None) -> None:
    """Reads the active object's Candidates / Prompts / SegObject, ViewerCamera, GLPresenter; sends
    CandidatePicked + PropagationRequested; writes CandidateOverlays; draws the preview on the view."""
    if entity is None or not esper.has_component(entity, Candidates):
        return
    candidates = esper.component_for_entity(entity, Candidates)
    overlays = app.try_resource(CandidateOverlays)
    if overlays is None:
        overlays = CandidateOverlays()
        app.insert_resource(overlays)
    obj = esper.component_for_entity(entity, SegObject)
    stale = [app.changed(kind) for kind in (Candidates, SegObject)]            # new masks, a new colour
    if any(stale) or overlays.entity != entity:
        _upload(app.resource(GLPresenter).ctx, overlays, candidates, obj)
        overlays.entity = entity
    imgui.text("candidates:")
    hovered = None
    for i, score in enumerate(candidates.scores):
        imgui.same_line()
        picked = i == candidates.picked
        if picked:
            imgui.push_style_color(imgui.Col_.button, imgui.ImVec4(0.9, 0.6, 0.1, 1.0))
        if imgui.button(f"{i + 1}: {score:.2f}"):
            app.send(CandidatePicked(i))
            app.send(PropagationRequested())
        if picked:
            imgui.pop_style_color()
        if imgui.is_item_hovered():
            hovered = i
            imgui.set_tooltip(f"candidate {i + 1} on the view; click or press {i + 1} to lift it and propagate")
    rect = candidate_rect(app.resource(ViewerCamera), esper.component_for_entity(entity, Prompts).camera)
    if rect is None:
        imgui.text_disabled("(shown on the prompted view; the camera left it)")
        return
    x0, y0, x1, y1 = rect
    draw = imgui.get_background_draw_list()
    shown = [overlays.outlines[candidates.picked]] + ([] if hovered is None else [overlays.tinted[hovered]])
    for texture in shown:
        draw.add_image(imgui.ImTextureRef(texture.glo), imgui.ImVec2(x0, y0), imgui.ImVec2(x1, y1))


def _upload(ctx: moderngl.Context, overlays: CandidateOverlays, candidates: Candidates, obj: SegObject) -> None:
    for texture in overlays.outlines + overlays.tinted:
        texture.release()
    overlays.outlines, overlays.tinted = [], []
    for mask in candidates.masks:                                                    # [H, W] bool each
        for fill, textures in ((False, overlays.outlines), (True, overlays.tinted)):
            rgba = candidate_rgba(mask, obj.color, fill=fill)                        # [H, W, 4]
            texture = ctx.texture(mask.shape[::-1], 4, np.ascontiguousarray(rgba).tobytes())
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
            textures.append(texture)
