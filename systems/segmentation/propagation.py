"""Propagation over the views: start / cancel a pass, and the SAM step of each view."""

from __future__ import annotations

from functools import partial

import esper
import numpy as np
import torch

from components.messages import PromptRejected, PropagationCancelled, PropagationRequested, PropagationStarted
from components.resources import MaskGrid, SceneData, SegmentationSettings, SegmenterHandle, ViewCache
from components.segmentation import Candidates, PendingView, Prompts, Propagation, SegObject
from engine.errors import UserFacingError
from systems.inverse.ops import binarise_rendered
from systems.segmentation.objects import resolve_object
from systems.segmentation.prompts import answer_prompt, prompt_digest
from systems.segmentation.work import keep_only, result_of, segmenter_lock
from systems.self_prompt.ops import prompt_box


def propagation_views(app, prompted_view: int | None) -> list[int]:
    """The views of one pass: settings.views or the training views, minus the prompted view."""
    settings, scene = app.resource(SegmentationSettings), app.resource(SceneData).scene
    views = settings.views if settings.views is not None else scene.train_ids
    return [int(v) for v in views if v != prompted_view]


def start_propagation(app) -> None:
    """Reads PropagationRequested / PropagationCancelled and MaskGrid; writes Propagation (a fresh
    queue, the object's votes and counts as its start);
    sends PropagationStarted, or PromptRejected for an object with no lifted mask yet."""
    for request in app.read(PropagationCancelled):
        found = resolve_object(app, request.object_id)
        if found is not None:
            for component in (Propagation, PendingView):
                if esper.has_component(found[0], component):
                    esper.remove_component(found[0], component)
    for request in app.read(PropagationRequested):
        found = resolve_object(app, request.object_id)
        if found is None or not esper.has_component(found[0], Candidates):
            app.send(PromptRejected(request.object_id, "nothing to propagate: prompt the object on a view first"))
            continue
        entity, obj = found
        queue = propagation_views(app, esper.component_for_entity(entity, Prompts).view)
        if esper.has_component(entity, PendingView):
            esper.remove_component(entity, PendingView)
        grid = app.resource(MaskGrid)
        start, start_counts = (torch.from_numpy(a[obj.channel].copy()) for a in (grid.votes, grid.counts))
        esper.add_component(entity, Propagation(queue=queue, total=len(queue), finished=not queue,
                                                start=start, start_counts=start_counts))
        app.send(PropagationStarted(obj.id, len(queue)))


def segment_pending_views(app) -> None:
    """Reads PendingView self-prompts, ViewCache and the SegmenterHandle; writes PendingView.sam_mask
    (single-mask output from the positive points, with a box around the rendered mask for a
    segmenter with `rendered_box` and the coverage prior for one with `rendered_prior`) and
    PendingView.answered. A segmenter error leaves sam_mask None (rejected). In the viewer the
    segmenter runs in the background worker (systems/segmentation/work.py): the view is answered on
    a later frame."""
    handle, cache = app.resource(SegmenterHandle), app.resource(ViewCache)
    waiting = [(obj, p) for _, (obj, p) in esper.get_components(SegObject, PendingView) if not p.answered]
    keep_only(app, "view", {("view", obj.id) for obj, _ in waiting})          # passes cancelled meanwhile
    segmenter = getattr(handle.segmenter, "name", "segmenter")
    names = app.resource(SceneData).scene.view_names
    for obj, pending in waiting:
        if len(pending.points) == 0:
            pending.answered = True
            continue
        box = None
        if getattr(handle.segmenter, "rendered_box", False):
            box = prompt_box(binarise_rendered(pending.rendered))                      # [4] or None
        prior = pending.prior if getattr(handle.segmenter, "rendered_prior", False) else None
        if prior is not None and not (prior > 0.5).any():
            prior = None                          # the 3D mask covers no pixel of the view by a majority
        request = {"points": pending.points, "labels": np.ones(len(pending.points), np.int64), "box": box,
                   "mask": prior, "multimask": False}
        job = partial(answer_prompt, segmenter_lock(app), handle, pending.view, cache.entries[pending.view], request)
        try:
            done, result = result_of(app, ("view", obj.id, prompt_digest(pending.view, request)), job,
                                     owner=("view", obj.id), urgent=False,
                                     label=f"segmenting {names[pending.view]} for '{obj.name}' ({segmenter}) ...")
        except UserFacingError:
            pending.answered = True
            continue
        if done:
            pending.answered = True
            pending.sam_mask = np.asarray(result.masks[int(np.argmax(result.scores))], bool)
