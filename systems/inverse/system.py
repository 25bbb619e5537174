"""Mask inverse rendering as systems: lift the prompted view, then each accepted propagated view."""

from __future__ import annotations

import esper

from components.messages import MaskUpdated, PropagationFinished, PropagationProgressed
from components.resources import MaskGrid, SegmentationSettings, SegmenterHandle
from components.segmentation import Candidates, NeedsLift, PendingView, Prompts, Propagation, SegObject
from systems.inverse.ops import accumulate_votes, gate_iou, view_votes
from systems.inverse.start_system import check_against_start
from systems.segmentation.views import ready_view_entry, scene_view_entry


def lift(app, obj: SegObject, weights, mask, lam: float) -> None:
    """Add one view's closed-form vote for `obj` (and the push on the other channels) to MaskGrid;
    send MaskUpdated for every channel that changed."""
    grid, settings = app.resource(MaskGrid), app.resource(SegmentationSettings)
    channels = int(grid.votes.shape[0])
    vote = view_votes(weights, mask, obj.channel, channels, lam, exclusive=settings.exclusive)
    accumulate_votes(grid.votes, grid.counts, weights, vote)
    app.mark_changed(MaskGrid)
    for _, other in esper.get_component(SegObject):
        if other.id == obj.id or (settings.exclusive and channels > 1):
            app.send(MaskUpdated(other.id, other.channel))


def lift_prompted_views(app) -> None:
    """Reads objects tagged NeedsLift with their Candidates and Prompts; writes their MaskGrid
    channel from scratch (zeroed, then the picked mask lifted with lambda_first) and drops any
    running Propagation (it started from the old mask). An object whose view's weights are being
    computed in the background keeps NeedsLift."""
    grid, settings = app.resource(MaskGrid), app.resource(SegmentationSettings)
    for entity, (obj, prompts, candidates, _) in esper.get_components(SegObject, Prompts, Candidates, NeedsLift):
        entry = ready_view_entry(app, prompts.camera, prompts.view)
        if entry is None:
            continue
        esper.remove_component(entity, NeedsLift)
        for component in (Propagation, PendingView):
            if esper.has_component(entity, component):
                esper.remove_component(entity, component)
        grid.votes[obj.channel] = 0.0
        grid.counts[obj.channel] = 0.0
        lift(app, obj, entry.weights, candidates.masks[candidates.picked], settings.lambda_first)


def finish_message(propagation: Propagation, gate: float, segmenter: str = "SAM") -> str:
    """One line: what the pass did, or why every view was rejected and what to try."""
    n_ok, n_bad = len(propagation.accepted), len(propagation.rejected)
    if n_ok or not n_bad:
        return f"{n_ok} views accepted, {n_bad} rejected"
    ious = [iou for _, iou, _ in propagation.rejected if iou >= 0]
    if not ious:
        return ("every view was rejected: the rendered mask had no positive pixel to self-prompt from; "
                "check the prompt (is the object visible in the training views?)")
    return (f"every view was rejected: the {segmenter} segmenter's masks disagreed with the rendered mask "
            f"(best IoU {max(ious):.2f} "
            f"< gate {gate:g}); try more prompts or a lower --iou-gate")


def lift_pending_views(app) -> None:
    """Reads answered PendingViews (rendered mask, self-prompts, SAM mask) and SegmentationSettings; gates
    the view by IoU and lifts accepted ones with lambda_others into MaskGrid; writes Propagation
    (accepted / rejected, finished); at the end, checks the pass against its start (start_system);
    sends PropagationProgressed, then PropagationFinished."""
    settings = app.resource(SegmentationSettings)
    segmenter_name = getattr(app.resource(SegmenterHandle).segmenter, "name", "SAM")
    for entity, (obj, propagation, pending) in esper.get_components(SegObject, Propagation, PendingView):
        if not pending.answered:
            continue                                 # its segmenter answer is computed in the background
        esper.remove_component(entity, PendingView)
        iou = -1.0
        if pending.sam_mask is None:
            propagation.rejected.append((pending.view, iou, "no self-prompt"))
        else:
            iou = gate_iou(pending.rendered, pending.sam_mask)
            if iou < settings.iou_gate:
                propagation.rejected.append((pending.view, iou, "IoU below the gate"))
            else:
                propagation.accepted.append((pending.view, iou))
                lift(app, obj, scene_view_entry(app, pending.view).weights, pending.sam_mask,
                     settings.lambda_others)
        accepted = bool(propagation.accepted) and propagation.accepted[-1][0] == pending.view
        app.send(PropagationProgressed(obj.id, propagation.done, propagation.total, pending.view, accepted, iou))
        if not propagation.queue:
            propagation.finished = True
            prompted = esper.component_for_entity(entity, Prompts).view
            tried = [v for v, *_ in propagation.accepted + propagation.rejected]
            check = check_against_start(app, obj, propagation, ([prompted] if prompted is not None else []) + tried)
            app.mark_changed(MaskGrid)                   # the check may give the start's voxels back
            message = finish_message(propagation, settings.iou_gate, segmenter_name)
            if check is not None and propagation.accepted:
                message += f"; {check.message}"
            app.send(PropagationFinished(obj.id, len(propagation.accepted), len(propagation.rejected),
                                         message, check))
