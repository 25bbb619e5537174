"""The ExportScene of a command-line export or of the viewer: the scene's views to carve with (their
frozen weights shared with segmentation: the disk cache, or the App's ViewCache), its up axis and
the cameras to render."""

from __future__ import annotations

import functools
from collections.abc import Callable

from components.camera import Camera
from components.resources import SceneData, SegmentationSettings, ViewCache
from systems.export import axes, carving
from systems.export.export import ExportScene
from systems.export.views import NamedCamera


def export_scene(scene, field, *, device: str, field_hash: str,
                 cameras: list[NamedCamera] | None = None) -> ExportScene:
    """Every view of `scene` with `field` (weights from the view-weights disk cache when the field
    is a file, as `segment` stores them; else rendered once)."""
    from systems.inverse.representation import as_frozen_scene
    from systems.segmentation.setup import weights_store
    from systems.segmentation.views import build_entry

    data = SceneData(scene=scene, field=field, representation=as_frozen_scene(field), device=device,
                     field_hash=field_hash)
    settings, store = SegmentationSettings(), weights_store(field_hash)
    return _scene(scene, field, lambda view, camera: build_entry(data, settings, camera, view, store)[0].weights,
                  cameras)


def app_export_scene(app, cameras: list[NamedCamera] | None = None) -> tuple[ExportScene, dict]:
    """The App's scene as it is now, safe to read from the background worker: the views' weights the
    ViewCache holds now, the missing ones built (or read from the disk store) by whoever carves,
    without touching the App. Returns it with the dict those built entries go into (view ->
    timed_build's result: segmentation.views.keep_view_entries keeps them once back in the frame)."""
    from systems.segmentation.views import timed_build

    data, settings, cache = app.resource(SceneData), app.resource(SegmentationSettings), app.resource(ViewCache)
    known = {v: cache.entries[v].weights for v in range(len(data.scene)) if v in cache.entries}
    built: dict = {}

    def weights(view: int, camera: Camera):
        if view not in known:
            built[view] = timed_build(data, settings, camera, view, cache.store)
            known[view] = built[view][0].weights
        return known[view]

    return _scene(data.scene, data.field, weights, cameras), built


def _scene(scene, field, weights: Callable[[int, Camera], object], cameras: list[NamedCamera] | None) -> ExportScene:
    """The ExportScene of `scene`'s views, `weights(view, camera)` giving each view's weights."""
    def build() -> list[carving.CarvingView]:
        return [carving.carving_view(field, camera, weights(v, camera))
                for v, camera in enumerate(Camera.of_view(scene, v) for v in range(len(scene)))]

    return ExportScene(carving_views=functools.cache(build), world_up=axes.scene_up(scene.T_world_camera),
                       cameras=cameras)
