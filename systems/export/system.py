"""ECS glue: the viewer's export button sends ExportRequested; `export_requested` answers it.

Messages are defined here (export is their only writer and reader besides the UI); they are
plain frozen values like components/messages.py's. The export runs inside the frame: meshes,
point clouds and grids take well under a second; per-view renders take one render per camera.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import esper
import numpy as np

from components.resources import MaskGrid, SceneData
from components.segmentation import SegObject
from systems.export import views
from systems.export.export import VIEW_FORMATS, ExportOptions, export_object
from systems.export.grid_file import ExportError, MaskGridFile
from systems.segmentation.objects import objects_by_channel


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


def grid_snapshot(app) -> MaskGridFile:
    """The App's MaskGrid (a copy of its votes) with its objects' names and colours, channel order."""
    grid, data = app.resource(MaskGrid), app.resource(SceneData)
    objects = objects_by_channel(app)
    return MaskGridFile(votes=grid.votes.astype(np.float32, copy=True),
                        names=tuple(o.name for o in objects),
                        colors=np.array([o.color for o in objects], np.uint8).reshape(-1, 3),
                        bbox=np.asarray(grid.bbox, np.float32), space=grid.space,
                        scene_hash=data.scene.content_hash(), field_hash=data.field_hash,
                        path=Path("the viewer's mask grid"))


def export_requested(app) -> None:
    """Reads ExportRequested, MaskGrid, SceneData and SegObject; writes files; sends ExportFinished.

    Per-view formats render the scene's views. User errors become ExportFinished.error.
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
            cameras = views.scene_cameras(data.scene) if options.format in VIEW_FORMATS else None
            written = export_object(grid, data.field, request.out, options, cameras=cameras,
                                    field_hash=data.field_hash)
            app.send(ExportFinished(request.out, tuple(str(p) for p in written)))
        except ExportError as error:
            app.send(ExportFinished(request.out, (), str(error)))
