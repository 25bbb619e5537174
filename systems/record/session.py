"""Opening a recorded session: continue it in the viewer, or replay it headless.

Viewer (file format: systems/record/fileformat.py): the schedule gets `recording_plugin`; `--record FILE`
calls `start_recording`; opening a recording calls `continue_recording`, which replays the file
into the App over the next frames and then keeps appending to it.
"""

from __future__ import annotations

from pathlib import Path

from components.encoding import Encoding
from components.messages import ViewEncoded, WorkDone
from components.resources import SceneData
from components.work import BackgroundWork
from engine.app import App
from engine.schedule import Schedule
from systems.record.fileformat import (
    Recording,
    RecordingWriter,
    check_header,
    drop_damaged_tail,
    read_recording,
)
from systems.record.recorder import Recorder, RecordingSettings, recording_plugin
from systems.record.replayer import Replay, replay_recording
from systems.sam.system import insert_encoding
from systems.segmentation.work import insert_background_work


def load_session(path: str | Path, *, scene_hash: str | None = None, force: bool = False
                 ) -> tuple[Recording, list[str]]:
    """Read a recording up to its last whole event and check its header against `scene_hash`.

    Returns it with notices (one line each: where reading stopped). Raises RecordingError for a
    missing or non-recording file, a newer format version or another scene (unless `force`).
    """
    recording = read_recording(path)
    check_header(recording, scene_hash=scene_hash, force=force)
    notices = [recording.stop.describe(recording.path, len(recording.events))] if recording.stop else []
    return recording, notices


def continue_recording(app: App, settings: RecordingSettings) -> tuple[Replay, list[str]]:
    """Replay the recording at settings.path into `app` (its schedule has recording_plugin), then
    keep recording into the same file. A damaged tail is moved aside first (FILE.damaged-OFFSET)
    so new lines follow the last whole event. Returns the Replay (done when caught up) and notices.
    Raises RecordingError as load_session does (settings.force overrides the checks).
    """
    scene = app.resource(SceneData).scene
    recording, notices = load_session(settings.path, scene_hash=scene.content_hash(), force=settings.force)
    kept = drop_damaged_tail(recording)
    if kept is not None:
        notices.append(f"the damaged tail of {recording.path} was moved to {kept}; recording continues "
                       f"after line {len(recording.events) + 1}")
    writer = RecordingWriter(recording.path, next_n=len(recording.events) + 1)
    app.insert_resource(Recorder(settings, writer, frame0=app.frame, t0=0.0, paused=True))
    encoding = app.try_resource(Encoding)
    if encoding is not None:                  # embeddings arrive where the recording says, until caught up
        encoding.replayed = recorded_encoding(recording)
    work = app.try_resource(BackgroundWork)
    if work is not None:                      # so do the click's results; a session without the worker
        work.replayed = recorded_work(recording)      # computed them in the frame: so does its replay
        work.inline = not work.replayed
    return replay_recording(app, recording), notices


def recorded_encoding(recording: Recording) -> bool:
    """Whether the session encoded views in the background (its ViewEncoded arrivals are recorded)."""
    return any(e.kind == "message" and isinstance(e.data, ViewEncoded) for e in recording.events)


def recorded_work(recording: Recording) -> bool:
    """Whether the session computed a click's work in the background (its WorkDone arrivals are recorded)."""
    return any(e.kind == "message" and isinstance(e.data, WorkDone) for e in recording.events)


def headless_replay_app(recording: Recording, scene, field, segmenter, *, device: str = "cpu",
                        field_hash: str = "none", capture=None) -> tuple[App, Replay]:
    """A headless App with the segmentation systems and the recorded settings, replaying
    `recording` (run it with replayer.run_replay)."""
    from components.resources import SegmentationSettings
    from systems.segmentation.plugin import segmentation_plugin
    from systems.segmentation.setup import insert_segmentation

    settings = recording.header.get("settings")
    app = App(recording_plugin(segmentation_plugin(Schedule())))
    insert_segmentation(app, scene, field, segmenter,
                        settings if isinstance(settings, SegmentationSettings) else None,
                        device=device, field_hash=field_hash)
    if recorded_encoding(recording):          # the session's embeddings arrived in the background
        insert_encoding(app, ahead=False, replayed=True)
    if recorded_work(recording):              # and so did its views' weights and segmenter answers
        insert_background_work(app, replayed=True)
    return app, replay_recording(app, recording, capture=capture)
