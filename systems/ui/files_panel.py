"""The ImGui panel's file actions: export the active object, record the session, continue a
recording. Widgets only: they send the requests of systems/viewer/session.py and
systems/export/system.py, whose systems do the work and report in SessionFiles / ViewerLog (an
export still running or queued is listed with the panel's other work: panel.busy_lines)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from imgui_bundle import imgui

from components.resources import SceneData
from systems.record.replayer import replay_active
from systems.viewer.session import (
    ContinueRecordingRequested,
    SessionFiles,
    StartRecordingRequested,
    StopRecordingRequested,
    active_object,
    default_export_folder,
    export_choices,
    export_request,
    recording_active,
)


@dataclass
class FilesPanel:
    """What the user typed into the file widgets (one writer: draw_files)."""
    choice: int = 0                                   # index into the scene's export choices
    folders: dict[int, str] = field(default_factory=dict)   # object id -> export folder typed
    record_path: str = field(default_factory=lambda: time.strftime("recordings/session-%Y%m%d-%H%M%S.jsonl"))
    continue_path: str = ""


def draw_files(app) -> None:
    """Reads SessionFiles, the active object, Recorder / Replay; sends ExportRequested and the
    recording requests; writes FilesPanel."""
    panel = app.try_resource(FilesPanel) or FilesPanel()
    app.insert_resource(panel)
    files = app.resource(SessionFiles)
    if imgui.collapsing_header("Export"):
        _export(app, panel, files)
    if imgui.collapsing_header("Recording"):
        _recording(app, panel, files)


def _export(app, panel: FilesPanel, files: SessionFiles) -> None:
    obj = active_object(app)
    if obj is None:
        imgui.text_disabled("segment an object to export it")
        return
    choices = export_choices(app.resource(SceneData).representation.kind)
    labels = list(choices)
    _, panel.choice = imgui.combo("format", min(panel.choice, len(labels) - 1), labels)
    folder = panel.folders.get(obj.id, str(default_export_folder(obj.name)))
    _, panel.folders[obj.id] = imgui.input_text("folder", folder)
    if imgui.button(f"Export '{obj.name}'"):
        app.send(export_request(labels[panel.choice], Path(panel.folders[obj.id]), obj.id, obj.name, choices))
    if files.last_export:
        imgui.text_wrapped(files.last_export)


def _recording(app, panel: FilesPanel, files: SessionFiles) -> None:
    if replay_active(app):
        replay = files.replay
        done = 0 if replay is None else replay.next_step
        total = 1 if replay is None else max(len(replay.steps), 1)
        imgui.progress_bar(done / total, imgui.ImVec2(-1, 0), f"replaying: {done}/{total} steps (input ignored)")
        return
    if recording_active(app):
        imgui.text_colored(imgui.ImVec4(1.0, 0.3, 0.3, 1.0), "recording")
        if imgui.button("Stop recording"):
            app.send(StopRecordingRequested())
        return
    _, panel.record_path = imgui.input_text("file##record", panel.record_path)
    if imgui.button("Start recording") and panel.record_path.strip():
        app.send(StartRecordingRequested(Path(panel.record_path.strip())))
    _, panel.continue_path = imgui.input_text("file##continue", panel.continue_path)
    if imgui.button("Open and continue") and panel.continue_path.strip():
        app.send(ContinueRecordingRequested(Path(panel.continue_path.strip())))
    if files.replay is not None and files.replay.done:
        imgui.text_wrapped(f"replayed: {len(files.replay.problems)} differences" if files.replay.problems
                           else f"replayed: {files.replay.checks} grid checks match")
