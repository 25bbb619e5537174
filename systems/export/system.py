"""ECS glue: the viewer's export button sends ExportRequested; `export_requested` answers it.

Messages (and the Exports resource) are defined here: export is their only writer and reader
besides the UI; they are plain values like components/messages.py's. An export carves the
object's solid mask (1-3 s), so in the viewer it runs in the background worker
(systems/segmentation/work.py: result_of, WorkDone) while frames go on: the frame that reads the
request takes what the export needs from the App (a copy of the grid, the object's name, the views'
weights held now; the field is frozen), the worker writes the files, and the frame that reads its
WorkDone sends ExportFinished. A request made while another runs waits in the worker's queue (the
panel lists it); the object may be deleted meanwhile: its export writes it as it was when asked.
Without the worker (tests' Apps, a closed viewer) the export runs inside the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
from systems.segmentation.views import keep_view_entries
from systems.segmentation.work import result_of


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


@dataclass(frozen=True)
class PendingExport:
    key: tuple                              # its job's key in the background worker
    request: ExportRequested
    job: Callable[[], tuple[list, dict]]    # -> (paths written, view entries built on the way)


@dataclass
class Exports:
    """The exports asked for and not finished yet, oldest first (export_requested writes it, the
    panel reads it)."""
    pending: list[PendingExport] = field(default_factory=list)
    asked: int = 0                          # requests read so far (numbers the job keys)


def export_requested(app) -> None:
    """Reads ExportRequested, MaskGrid, SceneData, SegObject and ViewCache (the views carve the solid
    mask); writes Exports, ViewCache (the views' weights the export built) and the files; sends
    ExportFinished (user errors as its `error`) when an export is done, in the frame that asked
    without a background worker, else in the one that reads its WorkDone."""
    exports = app.try_resource(Exports)
    if exports is None:
        app.insert_resource(exports := Exports())
    for request in app.read(ExportRequested):
        exports.asked += 1
        try:
            job = export_job(app, request)
        except UserFacingError as error:
            app.send(ExportFinished(request.out, (), str(error)))
            continue
        exports.pending.append(PendingExport(("export", exports.asked, request.out), request, job))
    finish_exports(app)


def finish_exports(app) -> None:
    """Reads Exports and the background worker's results; sends ExportFinished for each export done
    (posting the ones not posted yet; run here when there is no worker); a file that cannot be
    written is an `error` too."""
    exports = app.resource(Exports)
    waiting = []
    for pending in exports.pending:
        out = pending.request.out
        try:
            done, result = result_of(app, pending.key, pending.job, label=None, urgent=False)  # export_lines
        except UserFacingError as error:
            app.send(ExportFinished(out, (), str(error)))
            continue
        except OSError as error:                   # a folder typed in the panel that cannot be written
            app.send(ExportFinished(out, (), f"cannot write {out} ({error.strerror or error}): pick a folder "
                                             f"you can write to"))
            continue
        if not done:
            waiting.append(pending)
            continue
        written, built = result
        keep_view_entries(app, built)
        app.send(ExportFinished(out, tuple(str(p) for p in written)))
    exports.pending = waiting


def export_lines(app) -> list[str]:
    """What the panel says of the exports not finished, one line each (the worker's own lines leave
    them out): the one being written, then those queued."""
    exports = app.try_resource(Exports)
    outs = [p.request.out for p in exports.pending] if exports is not None else []
    return [f"exporting {out} ..." for out in outs[:1]] + [f"queued: export to {out}" for out in outs[1:]]


def export_job(app, request: ExportRequested) -> Callable[[], tuple[list, dict]]:
    """The export of `request` as a job that reads nothing of the App: the grid copied and the
    object resolved now. Raises ExportError for an object that does not exist."""
    grid = grid_snapshot(app)
    options = request.options
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
        splats = data.field.splats
        return lambda: (export_splat_object(grid, splats, options.format, request.out, object_name=options.object,
                                            cameras=cameras), {})
    scene, built = app_export_scene(app, cameras)
    field, field_hash = data.field, data.field_hash
    return lambda: (export_object(grid, field, request.out, options, scene, field_hash=field_hash), built)
