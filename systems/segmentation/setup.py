"""Insert the segmentation resources into an App (viewer, `segment`, `replay` and tests)."""

from __future__ import annotations

import numpy as np
import torch

from components.resources import ActiveObject, MaskGrid, SceneData, SegmentationSettings, SegmenterHandle, ViewCache


def insert_segmentation(app, scene, field, segmenter, settings: SegmentationSettings | None = None, *,
                        device: str = "cpu", field_hash: str = "none") -> None:
    """Insert SceneData, an empty MaskGrid (no channel yet) shaped like the field's density,
    SegmentationSettings, an empty ViewCache (backed by the disk cache for a field read from a
    file: field_hash is its sha256), the SegmenterHandle and ActiveObject; starts loading the
    compiled marcher in the background."""
    from engine.field.frozen_march import warm_up_in_background

    warm_up_in_background()                  # the view weights' compiled code, ready before a first click
    Z, Y, X = field.resolution
    app.insert_resource(SceneData(scene=scene, field=field, device=device, field_hash=field_hash))
    app.insert_resource(MaskGrid(votes=torch.zeros(0, Z, Y, X), counts=torch.zeros(0, Z, Y, X),
                                 bbox=field.bbox.detach().cpu().numpy().astype(np.float32),
                                 space=field.space))
    app.insert_resource(settings or SegmentationSettings())
    app.insert_resource(ViewCache(store=weights_store(field_hash)))
    app.insert_resource(SegmenterHandle(segmenter))
    app.insert_resource(ActiveObject())


def weights_store(field_hash: str):
    """The view-weights disk cache for a field of known content, None for an in-memory field
    ("none") or a cap of 0 ($SA3D_VIEW_CACHE_MB=0)."""
    from systems.inverse.weights_cache import WeightsCache, cache_folder, cap_bytes

    if field_hash == "none" or cap_bytes() == 0:
        return None
    return WeightsCache(cache_folder())
