"""Insert the segmentation resources into an App (viewer, `segment`, `replay` and tests)."""

from __future__ import annotations

import numpy as np

from components.resources import ActiveObject, MaskGrid, SceneData, SegmentationSettings, SegmenterHandle, ViewCache
from systems.inverse.representation import as_frozen_scene


def insert_segmentation(app, scene, field, segmenter, settings: SegmentationSettings | None = None, *,
                        device: str = "cpu", field_hash: str = "none") -> None:
    """Insert SceneData (`field`: a VoxelField or any FrozenScene, systems/inverse/representation.py),
    an empty MaskGrid (no channel yet) laid out as the representation's MaskLayout,
    SegmentationSettings, an empty ViewCache (backed by the disk cache for a field read from a
    file: field_hash is its sha256), the SegmenterHandle and ActiveObject."""
    representation = as_frozen_scene(field)
    layout = representation.layout
    app.insert_resource(SceneData(scene=scene, field=field, representation=representation, device=device,
                                  field_hash=field_hash))
    app.insert_resource(MaskGrid(votes=np.zeros((0, *layout.shape), np.float32),
                                 counts=np.zeros((0, *layout.shape), np.float32),
                                 bbox=layout.bbox, space=layout.space))
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
