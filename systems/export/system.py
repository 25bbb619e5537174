"""ECS glue: the viewer's export button sends ExportRequested; `export_requested` answers it.

Messages are defined here (export is their only writer and reader besides the UI); they are
plain frozen values like components/messages.py's. The export runs inside the frame: meshes,
point clouds and grids take well under a second; per-view renders take one render per camera.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import esper

from components.resources import SceneData
from components.segmentation import SegObject
from engine.errors import UserFacingError
from systems.export import views
from systems.export.export import ExportError, ExportOptions, export_object
from systems.export.registry import FORMATS
from systems.export.scene_views import app_export_scene
from systems.export.splats import export_splat_object
from systems.inverse.splats import GaussianScene
from systems.segmentation.grid_file import grid_snapshot


@dataclass(frozen=True)
class ExportRequested:
    """Write object `object_id` (None: every object, npz only) as `options.format` to `out`."""
    out: str
    options: ExportOptions
    object_id: int | None = None


@dataclass(frozen=True)
class ExportFinished:
    """An export request's outcome: the files written, or `error` (one line) and none."""
    out: str
    paths: tuple[str, ...]
    error: str | None = None


def export_requested(app) -> None:
    """Reads ExportRequested, MaskGrid, SceneData, SegObject and ViewCache (the views carve the solid
    mask); writes files; sends ExportFinished.

    Per-view formats render the scene's views; a splat scene writes systems/export/splats.py's
    formats. User errors become ExportFinished.error.
    """
    for request in app.read(ExportRequested):
        grid = grid_snapshot(app)
        options = request.options
        try:
            if request.object_id is not None:
                with app.active():
                    names = {o.id: o.name for _, o in esper.get_component(SegObject)}
                if request.object_id not in names:
                    raise ExportError(f"object id {request.object_id} does not exist (any more): pick an object")
                options = replace(options, object=names[request.object_id])
            data = app.resource(SceneData)
            renders = options.format in FORMATS and FORMATS[options.format].renders
            cameras = views.scene_cameras(data.scene) if renders else None
            if isinstance(data.field, GaussianScene):
                written = export_splat_object(grid, data.field.splats, options.format, request.out,
                                              object_name=options.object, cameras=cameras)
            else:
                written = export_object(grid, data.field, request.out, options, app_export_scene(app, cameras),
                                        field_hash=data.field_hash)
            app.send(ExportFinished(request.out, tuple(str(p) for p in written)))
        except UserFacingError as error:
            app.send(ExportFinished(request.out, (), str(error)))
