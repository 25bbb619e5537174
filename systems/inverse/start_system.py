"""The start check as ECS glue: at the end of a pass, compare it with its start on the views the
start is confident about, keep the better-supported voxels, tell the user (systems/inverse/start_check.py)."""

from __future__ import annotations

import torch

from components.messages import MaskUpdated
from components.resources import MaskGrid, SceneData, ViewCache
from components.segmentation import Propagation, SegObject, StartCheck
from systems.inverse.start_check import AGREEMENT, agreement_grids, keep_supported, view_agreement


def check_against_start(app, obj: SegObject, propagation: Propagation, views) -> StartCheck | None:
    """Reads MaskGrid, ViewCache (the entries of `views`, scene view indices) and the pass's start;
    writes propagation.propagated / start_check and, when the pass disagrees with its start, the
    union of both into the object's channel (sends MaskUpdated). None without a start."""
    if propagation.start is None:
        return None
    grid, cache = app.resource(MaskGrid), app.resource(ViewCache)
    names = app.resource(SceneData).scene.view_names
    current = torch.from_numpy(grid.votes[obj.channel].copy())               # MaskGrid is numpy; the check, torch
    grids = agreement_grids(propagation.start, propagation.start_counts, current)
    scored = [(v, view_agreement(cache.entries[v].weights, grids)) for v in views if v in cache.entries]
    scored = [(v, iou) for v, iou in scored if iou is not None]
    agreement = float(sum(iou for _, iou in scored) / len(scored)) if scored else 1.0
    disagrees = bool(agreement < AGREEMENT)
    restored = 0
    if disagrees:
        kept = keep_supported(propagation.start, current)
        restored = int(((kept > 0) & (current <= 0)).sum())
        grid.votes[obj.channel] = kept
        app.send(MaskUpdated(obj.id, obj.channel))
    message = (f"the pass disagreed with its start (mean IoU {agreement:.2f} < {AGREEMENT:g} on {len(scored)} "
               f"views the start is sure of): kept the start's {restored} voxels it removed" if disagrees else
               f"agrees with its start (mean IoU {agreement:.2f} on {len(scored)} views the start is sure of)")
    propagation.propagated = current
    propagation.start_check = StartCheck(tuple(names[v] for v, _ in scored), tuple(iou for _, iou in scored),
                                         agreement, disagrees, restored, message)
    return propagation.start_check
