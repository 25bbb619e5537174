"""The viewer's file actions as requests handled by plain systems (the UI and `view` options send
them): record the session to a file, continue a recording, export the active object.

Recording follows the contract of systems/record (recording_plugin is in the schedule from the
start; start_recording / stop_recording / continue_recording here). Outcomes go to ViewerLog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import esper

from components.resources import ActiveObject
from components.segmentation import SegObject
from systems.export.export import ExportOptions
from systems.export.registry import ExportFormat, scene_formats
from systems.export.system import ExportFinished, ExportRequested
from systems.record.fileformat import RecordingError
from systems.record.recorder import Recorder, RecordingSettings, start_recording, stop_recording
from systems.record.replayer import Replay, replay_active
from systems.record.session import continue_recording
from systems.viewer.resources import ViewerLog


def export_choices(kind: str) -> dict[str, ExportFormat]:
    """Menu label -> export format, for a scene representation's kind (Representation.kind): the registry's."""
    return {f.label: f for f in scene_formats(kind)}


EXPORT_CHOICES = export_choices("voxels")
SPLAT_EXPORT_CHOICES = export_choices("gaussians")


@dataclass(frozen=True)
class StartRecordingRequested:
    """Record this session into `path` (a new file)."""
    path: Path


@dataclass(frozen=True)
class StopRecordingRequested:
    """Stop recording (final grid hashes, file closed)."""


@dataclass(frozen=True)
class ContinueRecordingRequested:
    """Replay the recording at `path` into the viewer, then keep recording into it."""
    path: Path
    force: bool = False


@dataclass
class SessionFiles:
    """What the recording actions need besides the request: the files the header names."""
    field_path: str | None = None         # the field checkpoint the viewer opened
    checkpoint: str | None = None         # the SAM weights file, if any
    replay: Replay | None = None          # the replay started by the last continue (problems, done)
    last_export: str = ""                 # one line: the last export's files or its error


def default_export_folder(name: str) -> Path:
    """./exports/<object name>/ (the name made safe for a folder)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip()) or "object"
    return Path("exports") / safe


def export_request(choice: str, folder: Path, object_id: int, name: str,
                   choices: dict[str, ExportFormat] = EXPORT_CHOICES) -> ExportRequested:
    """The ExportRequested of a `choices` label for object `object_id` named `name`, into `folder`
    (the format's usual file name). Raises KeyError for an unknown label."""
    kind = choices[choice]
    return ExportRequested(str(Path(folder) / kind.default_name.format(name=default_export_folder(name).name)),
                           ExportOptions(format=kind.name), object_id=object_id)


def active_object(app) -> SegObject | None:
    """The active object's SegObject, or None."""
    active = app.try_resource(ActiveObject)
    with app.active():
        return next((o for _, o in esper.get_component(SegObject)
                     if active is not None and o.id == active.object_id), None)


def recording_active(app) -> bool:
    """Whether this session is being written to a recording (and not replaying one)."""
    recorder = app.try_resource(Recorder)
    return recorder is not None and not recorder.paused


def session_requests(app) -> None:
    """Reads Start/Stop/ContinueRecordingRequested, ExportFinished and SessionFiles; starts / stops /
    continues recordings; writes ViewerLog (outcomes, one line each) and SessionFiles."""
    files, log = app.resource(SessionFiles), app.resource(ViewerLog)
    for request in app.read(StartRecordingRequested):
        if app.try_resource(Recorder) is not None:
            log.add("already recording: stop first")
            continue
        try:
            start_recording(app, RecordingSettings(Path(request.path), field_path=files.field_path,
                                                   checkpoint=files.checkpoint))
            log.add(f"recording to {request.path}")
        except RecordingError as error:
            log.add(f"error: {error}")
    for _ in app.read(StopRecordingRequested):
        if app.try_resource(Recorder) is not None and not replay_active(app):
            stop_recording(app)
            log.add("recording stopped")
    for request in app.read(ContinueRecordingRequested):
        if app.try_resource(Recorder) is not None:
            log.add("stop the current recording before opening another")
            continue
        try:
            files.replay, notices = continue_recording(app, RecordingSettings(Path(request.path), force=request.force))
        except RecordingError as error:
            log.add(f"error: {error}")
            continue
        for line in notices:
            log.add(line)
        log.add(f"replaying {request.path} (your prompts are ignored until it is done)")
    for finished in app.read(ExportFinished):
        files.last_export = f"export failed: {finished.error}" if finished.error else \
            f"exported {', '.join(finished.paths[:3])}" + (f" (+{len(finished.paths) - 3} more)"
                                                            if len(finished.paths) > 3 else "")
        log.add(files.last_export)
