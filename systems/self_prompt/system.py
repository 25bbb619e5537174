"""Self-prompting as a system: render the object's mask in the next queued view, pick prompts."""

from __future__ import annotations

import esper
import numpy as np

from components.resources import MaskGrid, SegmentationSettings, SegmenterHandle, ViewCache
from components.segmentation import PendingView, Propagation, SegObject
from systems.inverse.ops import render_mask
from systems.sam.prior import rendered_prior
from systems.sam.system import embedding_ready
from systems.self_prompt.ops import select_self_prompts


def self_prompt_views(app) -> None:
    """Reads the first unfinished Propagation (lowest object id) whose next view is in ViewCache
    (and, with background encoding, has its embedding), and MaskGrid; pops that view off the queue
    and writes a PendingView with the rendered soft mask, the self-prompts and, for a segmenter with
    `rendered_prior`, what the 3D mask knows of the view (the prior: systems/sam/prior.py). One view
    per frame in total: the bounded step of a propagation."""
    grid, cache = app.resource(MaskGrid), app.resource(ViewCache)
    wants_prior = getattr(app.resource(SegmenterHandle).segmenter, "rendered_prior", False)
    settings = app.resource(SegmentationSettings)
    running = [(obj.id, entity, obj, p) for entity, (obj, p) in esper.get_components(SegObject, Propagation)
               if not p.finished and p.queue and not esper.has_component(entity, PendingView)]
    for _, entity, obj, propagation in sorted(running, key=lambda r: r[0]):
        view = propagation.queue[0]
        if view not in cache.entries or not embedding_ready(app, view, cache.entries[view].image):
            return
        propagation.queue.pop(0)
        entry = cache.entries[view]
        votes = grid.votes[obj.channel:obj.channel + 1]
        rendered = render_mask(entry.weights, votes)[0]                                  # [H, W]
        points = select_self_prompts(rendered, entry.depth, settings.num_prompts)        # [P, 2]
        prior = rendered_prior(entry.weights, votes[0], grid.counts[obj.channel]) if wants_prior else None  # [H, W]
        esper.add_component(entity, PendingView(view, rendered, points.astype(np.float32), prior))
        return
