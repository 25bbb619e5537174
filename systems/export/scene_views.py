"""The ExportScene of a command-line export or of the viewer: the scene's views to carve with (their
frozen weights shared with segmentation: the disk cache, or the App's ViewCache), its up axis and
the cameras to render."""

from __future__ import annotations

import functools

from components.camera import Camera
from components.resources import SceneData, SegmentationSettings
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

    def build() -> list[carving.CarvingView]:
        cams = [Camera.of_view(scene, v) for v in range(len(scene))]
        return [carving.carving_view(field, cam, build_entry(data, settings, cam, v, store)[0].weights)
                for v, cam in enumerate(cams)]

    return ExportScene(carving_views=functools.cache(build), world_up=axes.scene_up(scene.T_world_camera),
                       cameras=cameras)


def app_export_scene(app, cameras: list[NamedCamera] | None = None) -> ExportScene:
    """The App's scene: its views' weights from the ViewCache (built there when missing)."""
    from systems.segmentation.views import scene_view_entry

    data = app.resource(SceneData)
    scene, field = data.scene, data.field

    def build() -> list[carving.CarvingView]:
        return [carving.carving_view(field, Camera.of_view(scene, v), scene_view_entry(app, v).weights)
                for v in range(len(scene))]

    return ExportScene(carving_views=functools.cache(build), world_up=axes.scene_up(scene.T_world_camera),
                       cameras=cameras)
