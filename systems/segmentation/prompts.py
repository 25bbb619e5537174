"""The prompted view: collect the user's prompts, run the segmenter, pick a candidate.

collect_prompts -> (NeedsSegment) -> segment_prompted_view -> Candidates + (NeedsLift) ->
systems.inverse.system.lift_prompted_views. In the viewer the view's weights and the segmenter's
answer are computed in the background worker (systems/segmentation/work.py): NeedsSegment stays on
the object until they are there.
"""

from __future__ import annotations

import hashlib
from functools import partial

import esper
import numpy as np

from components.camera import Camera
from components.messages import (
    BoxPrompted,
    CandidatePicked,
    CandidatesReady,
    ClearRequested,
    MaskPrompted,
    MaskUpdated,
    PromptAdded,
    PromptRejected,
    UndoRequested,
)
from components.resources import MaskGrid, SegmentationSettings, SegmenterHandle
from components.segmentation import Candidates, NeedsLift, NeedsSegment, Prompts, Propagation, SegObject
from engine.errors import UserFacingError
from systems.sam.system import embedding_ready
from systems.segmentation.objects import create_object, resolve_object
from systems.segmentation.views import ready_view_entry, view_key
from systems.segmentation.work import keep_only, result_of, segmenter_lock


def _same_view(prompts: Prompts, camera: Camera, view: int | None) -> bool:
    if prompts.camera is None:
        return False
    if view is not None or prompts.view is not None:
        return view == prompts.view and (camera.H, camera.W) == (prompts.camera.H, prompts.camera.W)
    return (np.array_equal(camera.K, prompts.camera.K) and (camera.H, camera.W) == (prompts.camera.H, prompts.camera.W)
            and np.array_equal(camera.T_world_camera, prompts.camera.T_world_camera))


def _target(app, object_id: int | None) -> tuple[int, SegObject]:
    """The object a prompt goes to; a prompt with no object yet creates one."""
    return resolve_object(app, object_id) or create_object(app)


def _prompts_on_view(app, msg) -> tuple[int, SegObject, Prompts]:
    """(entity, object, Prompts) that a prompt message goes to, the Prompts pointed at the message's
    (camera, view); prompts on another view are dropped first."""
    entity, obj = _target(app, msg.object_id)
    prompts = esper.component_for_entity(entity, Prompts)
    if not _same_view(prompts, msg.camera, msg.view):
        prompts.camera, prompts.view = msg.camera, msg.view
        prompts.points, prompts.labels, prompts.box, prompts.mask, prompts.history = [], [], None, None, []
    return entity, obj, prompts


def clear_channel(app, entity: int, obj: SegObject) -> None:
    """Zero the object's channel, drop its candidates and propagation; send MaskUpdated."""
    grid = app.resource(MaskGrid)
    grid.votes[obj.channel] = 0.0
    grid.counts[obj.channel] = 0.0
    for component in (Candidates, Propagation, NeedsLift, NeedsSegment):
        if esper.has_component(entity, component):
            esper.remove_component(entity, component)
    app.mark_changed(MaskGrid)
    app.mark_changed(Candidates)
    app.send(MaskUpdated(obj.id, obj.channel))


def collect_prompts(app) -> None:
    """Reads PromptAdded, BoxPrompted, MaskPrompted, UndoRequested, ClearRequested, CandidatePicked;
    writes Prompts and the NeedsSegment / NeedsLift tags; sends PromptRejected for clicks outside
    the image and MaskUpdated when a channel is cleared."""
    for msg in app.read(PromptAdded):
        if not msg.camera.contains(msg.x, msg.y) or msg.label not in (0, 1):
            app.send(PromptRejected(msg.object_id, f"point ({msg.x:g}, {msg.y:g}) label {msg.label} is not a "
                                    f"(0|1) point inside the {msg.camera.W}x{msg.camera.H} image"))
            continue
        entity, _, prompts = _prompts_on_view(app, msg)
        prompts.points.append((float(msg.x), float(msg.y)))
        prompts.labels.append(int(msg.label))
        prompts.history.append("point")
        esper.add_component(entity, NeedsSegment())
    for msg in app.read(BoxPrompted):
        entity, _, prompts = _prompts_on_view(app, msg)
        prompts.box = tuple(float(v) for v in msg.box)
        prompts.history.append("box")
        esper.add_component(entity, NeedsSegment())
    for msg in app.read(MaskPrompted):
        entity, obj, prompts = _prompts_on_view(app, msg)
        mask = np.asarray(msg.mask, dtype=bool)
        if mask.shape != (msg.camera.H, msg.camera.W) or not mask.any():
            app.send(PromptRejected(obj.id, f"the prompt mask must be a non-empty {msg.camera.H}x{msg.camera.W} mask"))
            continue
        prompts.mask = mask
        prompts.history.append("mask")
        esper.add_component(entity, Candidates(mask[None], np.ones(1, np.float32), 0))
        app.mark_changed(Candidates)
        esper.add_component(entity, NeedsLift())
    for msg in app.read(CandidatePicked):
        found = resolve_object(app, msg.object_id)
        if found is None or not esper.has_component(found[0], Candidates):
            continue
        candidates = esper.component_for_entity(found[0], Candidates)
        if 0 <= msg.index < len(candidates.masks):
            candidates.picked = int(msg.index)
            esper.add_component(found[0], NeedsLift())
    for msg in app.read(UndoRequested):
        found = resolve_object(app, msg.object_id)
        if found is None:
            continue
        prompts = esper.component_for_entity(found[0], Prompts)
        if prompts.history:
            last = prompts.history.pop()
            if last == "point":
                prompts.points.pop()
                prompts.labels.pop()
            elif last == "box":
                prompts.box = None
            else:
                prompts.mask = None
        if prompts.empty:
            clear_channel(app, *found)
        else:
            esper.add_component(found[0], NeedsSegment())
    for msg in app.read(ClearRequested):
        found = resolve_object(app, msg.object_id)
        if found is not None:
            prompts = esper.component_for_entity(found[0], Prompts)
            prompts.points, prompts.labels, prompts.box, prompts.mask, prompts.history = [], [], None, None, []
            clear_channel(app, *found)


def segment_prompted_view(app) -> None:
    """Reads objects tagged NeedsSegment, their Prompts, the SegmenterHandle and ViewCache (the
    prompted view's entry built if missing); writes Candidates and NeedsLift; sends CandidatesReady,
    or PromptRejected when the segmenter refuses the prompt. An object whose view's weights,
    embedding or answer is still being computed keeps NeedsSegment."""
    handle, settings = app.resource(SegmenterHandle), app.resource(SegmentationSettings)
    waiting = esper.get_components(SegObject, Prompts, NeedsSegment)
    keep_only(app, "answer", {("answer", obj.id) for _, (obj, _, _) in waiting})   # cleared / deleted meanwhile
    for entity, (obj, prompts, _) in waiting:
        if prompts.mask is not None:        # a given mask wins over points / box
            esper.remove_component(entity, NeedsSegment)
            esper.add_component(entity, Candidates(prompts.mask[None], np.ones(1, np.float32), 0))
            app.mark_changed(Candidates)
            esper.add_component(entity, NeedsLift())
            continue
        key = view_key(prompts.camera, prompts.view)
        entry = ready_view_entry(app, prompts.camera, prompts.view)
        if entry is None or not embedding_ready(app, key, entry.image):
            continue                                              # answered once WorkDone / ViewEncoded arrive
        request = {"points": np.asarray(prompts.points, np.float32).reshape(-1, 2) if prompts.points else None,
                   "labels": np.asarray(prompts.labels, np.int64) if prompts.points else None,
                   "box": np.asarray(prompts.box, np.float32) if prompts.box is not None else None,
                   "multimask": settings.multimask}
        job = partial(answer_prompt, segmenter_lock(app), handle, key, entry, request)
        segmenter = getattr(handle.segmenter, "name", "segmenter")
        try:
            done, result = result_of(app, ("answer", obj.id, prompt_digest(key, request)), job,
                                     owner=("answer", obj.id), label=f"segmenting '{obj.name}' ({segmenter}) ...")
        except UserFacingError as error:
            esper.remove_component(entity, NeedsSegment)
            app.send(PromptRejected(obj.id, str(error)))
            continue
        if not done:
            continue
        esper.remove_component(entity, NeedsSegment)
        picked = int(np.argmax(result.scores))
        esper.add_component(entity, Candidates(np.asarray(result.masks, bool), np.asarray(result.scores), picked))
        app.mark_changed(Candidates)
        esper.add_component(entity, NeedsLift())
        app.send(CandidatesReady(obj.id, tuple(float(s) for s in result.scores), picked))


def prompt_digest(view, request: dict) -> str:
    """A short content hash of a prompt on a view (the segmenter's answer to it is the same)."""
    h = hashlib.sha256(repr(view).encode())
    for name in sorted(request):
        value = request[name]
        h.update(name.encode() + (np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray)
                                  else repr(value).encode()))
    return h.hexdigest()[:16]


def answer_prompt(lock, handle: SegmenterHandle, key, entry, request: dict):
    """The segmenter's answer to a prompt on a view (set_view unless it is there, then predict),
    holding `lock` (work.segmenter_lock: it may run in the background worker)."""
    with lock:
        set_segmenter_view(handle, key, entry)
        return handle.segmenter.predict(**request)


def set_segmenter_view(handle: SegmenterHandle, key, entry) -> None:
    """Point the segmenter at a view unless it is already there (set_view is the costly call)."""
    if handle.current != key:
        handle.current = None
        handle.segmenter.set_view(entry.image, view_name=entry.name, depth=entry.depth)
        handle.current = key
