"""The recorder: segmentation requests, facts, settings, camera path and grid hashes to a file.

Two systems share the `Recorder` resource (both skipped while it is missing):
- `tap_requests` runs in SIMULATE just before the segmentation systems: it takes the requests they
  are about to consume this frame (sent in INPUT or SIMULATE, or in UI / END of the frame before)
  and settings changes.
- `write_session` runs in END: it writes those requests, then this frame's facts, the grid
  hashes after every PropagationFinished, and the camera, thinned.
So a frame's lines read [requests consumed in frame F] then [facts F produced]: a replay feeds each
request once every fact written before it has happened again (systems/record/replayer.py).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import esper
import numpy as np

from components import messages as m
from components.resources import MaskGrid, SceneData, SegmentationSettings, SegmenterHandle
from components.segmentation import SegObject
from engine.schedule import Schedule, Stage, system
from systems.camera.system import ViewerCamera
from systems.record import ops
from systems.record.determinism import current_settings
from systems.record.fileformat import RecordingWriter, make_header, write_new
from systems.sam.families import FAMILIES

REQUESTS = (m.PromptAdded, m.BoxPrompted, m.MaskPrompted, m.CandidatePicked, m.UndoRequested,
            m.ClearRequested, m.NewObjectRequested, m.ObjectSelected, m.DeleteObjectRequested,
            m.RenameObjectRequested, m.RecolorObjectRequested, m.PropagationRequested, m.PropagationCancelled,
            m.ViewEncoded, m.WorkDone)
FACTS = (m.ObjectCreated, m.ObjectDeleted, m.ObjectRenamed, m.ObjectRecolored, m.CandidatesReady, m.PromptRejected,
         m.MaskUpdated, m.PropagationStarted, m.PropagationProgressed, m.PropagationFinished)


@dataclass(frozen=True)
class RecordingSettings:
    path: Path                       # the .jsonl file
    overwrite: bool = False          # start_recording: replace an existing file
    force: bool = False              # continue_recording: accept another version / scene
    camera_hz: float = 10.0          # at most this many camera poses per second
    camera_move: float = 0.002       # ... and only after moving this fraction of the scene size
    camera_turn: float = 0.01        # ... or turning this many radians
    field_path: str | None = None    # the field file (hashed into the header when SceneData has none)
    checkpoint: str | None = None    # the segmenter's weights file (hashed), else its own identity


@dataclass
class Recorder:
    """Recording state. Written by tap_requests / write_session; `paused` while a replay feeds the
    App from this file (its events are written already)."""
    settings: RecordingSettings
    writer: RecordingWriter
    frame0: int                      # App frame of recorded frame 0
    t0: float                        # perf_counter of recorded t = 0
    paused: bool = False
    pending: list = field(default_factory=list)        # (frame, kind, data) tapped this frame
    last_pose: np.ndarray | None = None                # [4, 4] last recorded camera pose
    last_pose_t: float = float("-inf")
    settings_version: int = 0                          # App.version(SegmentationSettings) recorded last

    def now(self, app) -> tuple[int, float]:
        """(recorded frame, recorded seconds) of this moment."""
        return app.frame - self.frame0, time.perf_counter() - self.t0


def recording_plugin(schedule: Schedule) -> Schedule:
    """Add the recorder and the replayer systems (idle until start_recording / continue_recording
    / replay_recording insert their resources); returns the schedule. tap_requests goes just
    before the first segmentation system (or at the end of SIMULATE if there is none yet): the
    systems that send requests in SIMULATE (the viewer's input) must come before it."""
    from systems.record.replayer import Replay, check_replay, feed_replay
    from systems.segmentation.plugin import SYSTEMS

    simulate = schedule.stages[Stage.SIMULATE]
    first = next((i for i, e in enumerate(simulate) if e.system in SYSTEMS), len(simulate))
    simulate.insert(first, system(tap_requests, requires=(Recorder,)))
    schedule.add(Stage.INPUT, system(feed_replay, requires=(Replay,)))
    schedule.add(Stage.END, system(check_replay, requires=(Replay,)),
                 system(write_session, requires=(Recorder,)))
    return schedule


def session_header(app, settings: RecordingSettings) -> dict:
    """The header of a recording of `app`: scene, field, segmenter and segmentation settings."""
    data, handle = app.resource(SceneData), app.resource(SegmenterHandle)
    segmenter = handle.segmenter
    header = make_header(scene_name=data.scene.name, scene_hash=data.scene.content_hash(),
                         field_path=settings.field_path, segmenter=getattr(segmenter, "name", "unknown"),
                         checkpoint=settings.checkpoint, settings=app.resource(SegmentationSettings))
    if data.field_hash != "none":
        header["field"]["hash"] = data.field_hash
    if settings.checkpoint is None:
        header["segmenter"]["checkpoint"] = str(getattr(segmenter, "identity", None) or "none")
    family = FAMILIES.get(getattr(segmenter, "name", None))
    source = family.recording_source(segmenter, settings.checkpoint) if family else settings.checkpoint
    header["segmenter"]["source"] = source
    header["objects"] = object_grids(app)
    header["device"] = data.representation.device
    header["determinism"] = current_settings()
    return header


def start_recording(app, settings: RecordingSettings) -> Recorder:
    """Write a new recording's header (RecordingError if the file exists and not overwrite) and
    insert the Recorder: recorded frame 0 is the App's next frame."""
    write_new(settings.path, session_header(app, settings), overwrite=settings.overwrite)
    recorder = Recorder(settings, RecordingWriter(settings.path), app.frame, time.perf_counter(),
                        settings_version=app.version(SegmentationSettings))
    app.insert_resource(recorder)
    return recorder


def stop_recording(app) -> None:
    """Write the final grid hashes, close the file and remove the Recorder (no-op without one)."""
    recorder = app.try_resource(Recorder)
    if recorder is None:
        return
    if not recorder.paused:
        recorder.writer.append(*recorder.now(app), "grids", {"objects": object_grids(app)}, sync=True)
    recorder.writer.close()
    app.remove_resource(Recorder)


def object_grids(app) -> list[dict]:
    """Each object's id, name, colour, channel, sha256 of its votes [Z, Y, X] float32 bytes and
    how many voxels are inside (votes > 0), by object id."""
    grid = app.resource(MaskGrid)
    with app.active():
        objects = sorted((obj for _, obj in esper.get_component(SegObject)), key=lambda o: o.id)
    listed = []
    for obj in objects:
        votes = np.ascontiguousarray(grid.votes[obj.channel])                 # [Z, Y, X] float32
        listed.append({"id": obj.id, "name": obj.name, "color": list(obj.color), "channel": obj.channel,
                       "sha256": hashlib.sha256(votes.tobytes()).hexdigest(), "inside": int((votes > 0).sum()),
                       "shape": list(votes.shape)})
    return listed


def tap_requests(app) -> None:
    """Reads the REQUESTS about to be consumed and the SegmentationSettings; writes Recorder.pending."""
    recorder = app.resource(Recorder)
    frame, _ = recorder.now(app)
    settings = app.try_resource(SegmentationSettings)
    if settings is not None and app.version(SegmentationSettings) != recorder.settings_version:
        recorder.settings_version = app.version(SegmentationSettings)
        recorder.pending.append((frame, "settings", settings))
    for kind in REQUESTS:
        recorder.pending += [(frame, "message", request) for request in app.read(kind)]
    if recorder.paused:
        recorder.pending.clear()


def write_session(app) -> None:
    """Reads Recorder.pending, the FACTS, ViewerCamera and (after PropagationFinished) the grids;
    writes lines to the recording: requests, facts, grid hashes, then the thinned camera."""
    recorder = app.resource(Recorder)
    facts = [fact for kind in FACTS for fact in app.read(kind)]
    if recorder.paused:
        return
    frame, t = recorder.now(app)
    for tapped_frame, kind, data in recorder.pending:
        recorder.writer.append(tapped_frame, t, kind, data, sync=True)
    recorder.pending.clear()
    for fact in facts:
        recorder.writer.append(frame, t, "message", fact, sync=isinstance(fact, m.PropagationFinished))
    if any(isinstance(fact, m.PropagationFinished) for fact in facts):
        recorder.writer.append(frame, t, "grids", {"objects": object_grids(app)}, sync=True)
    camera = app.try_resource(ViewerCamera)
    settings = recorder.settings
    if camera is not None and ops.keep_pose(camera.T_world_camera, t, recorder.last_pose, recorder.last_pose_t,
                                            max_hz=settings.camera_hz, min_move=settings.camera_move * camera.scale,
                                            min_turn=settings.camera_turn):
        recorder.last_pose, recorder.last_pose_t = np.array(camera.T_world_camera), t
        recorder.writer.append(frame, t, "camera", {"K": camera.K, "T_world_camera": camera.T_world_camera,
                                                   "H": camera.H, "W": camera.W, "view": camera.view})
