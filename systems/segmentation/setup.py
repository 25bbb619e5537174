"""Insert the segmentation resources into an App (viewer, `segment`, `replay` and tests)."""

from __future__ import annotations

import numpy as np
import torch

from components.resources import ActiveObject, MaskGrid, SceneData, SegmentationSettings, SegmenterHandle, ViewCache


def insert_segmentation(app, scene, field, segmenter, settings: SegmentationSettings | None = None, *,
                        device: str = "cpu", field_hash: str = "none") -> None:
    """Insert SceneData, an empty MaskGrid (no channel yet) shaped like the field's density,
    SegmentationSettings, an empty ViewCache, the SegmenterHandle and ActiveObject."""
    Z, Y, X = field.resolution
    app.insert_resource(SceneData(scene=scene, field=field, device=device, field_hash=field_hash))
    app.insert_resource(MaskGrid(votes=torch.zeros(0, Z, Y, X), counts=torch.zeros(0, Z, Y, X),
                                 bbox=field.bbox.detach().cpu().numpy().astype(np.float32),
                                 space=field.space))
    app.insert_resource(settings or SegmentationSettings())
    app.insert_resource(ViewCache())
    app.insert_resource(SegmenterHandle(segmenter))
    app.insert_resource(ActiveObject())
