"""The replayer: a recording fed back into an App through the same systems that made it.

Every line of a recording is either a fact (something the segmentation systems produced:
ObjectCreated, PropagationProgressed, ...) or a step to perform again: a request or a settings
change (sent in INPUT), a grid check or a camera pose (in END). A step runs once every fact
written before it has been produced again, and as many frames after the last of those facts as
it was recorded after it: so a request lands at the same point of a running propagation, however
many frames the replay needed to get there. Facts are matched by type and count. When the replay
produces no awaited fact for `stall_frames` frames it is stalled: the fact is skipped, and the
problem noted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from components.encoding import Encoding
from components.resources import SceneData
from systems.camera.system import ViewerCamera, set_pose
from systems.record.fileformat import Event, Recording, now_iso
from systems.record.recorder import FACTS, Recorder, object_grids
from systems.segmentation.work import announce_from_now

INPUT_KINDS = ("message", "settings")   # performed in INPUT; "grids" and "camera" in END
INSIDE_TOLERANCE = 0.005                # on another device: fraction of an object's voxels that may differ


@dataclass(frozen=True)
class Step:
    event: Event
    gate: int        # index in Replay.facts of the last fact written before the step, -1 for none
    delay: int       # recorded frames from that fact (or frame 0) to the step


@dataclass
class Replay:
    """Replay state. Written by feed_replay / check_replay only."""
    recording: Recording
    steps: list[Step]
    facts: list[tuple[type, int, Event]]    # recorded facts in order: (type, count of that type so far, event)
    start_frame: int                         # App frame of recorded frame 0
    capture: Callable | None = None          # capture(app, camera event data) on camera steps (video)
    stall_frames: int = 300
    next_step: int = 0
    matched: list[int] = field(default_factory=list)   # App frame each recorded fact was produced in
    seen: Counter = field(default_factory=Counter)       # facts produced by the replay, per type
    waiting: int = 0                                     # frames spent waiting on a missing fact
    exact: bool = True                                   # same device as recorded: bit for bit
    checks: int = 0                                      # grid checks that matched
    problems: list[str] = field(default_factory=list)    # mismatches and stalls, one line each
    seconds: float = 0.0                                 # wall time since the replay started
    started: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> bool:
        return self.next_step >= len(self.steps) and len(self.matched) >= len(self.facts)

    def due(self, app) -> bool:
        """Whether the next step may run now: its facts are back and its delay has passed."""
        step = self.steps[self.next_step]
        if step.gate >= len(self.matched):
            return False
        base = self.start_frame if step.gate < 0 else self.matched[step.gate]
        return app.frame >= base + step.delay


def plan_replay(recording: Recording, start_frame: int, *, capture: Callable | None = None) -> Replay:
    """Split a recording into facts to wait for and steps to perform (see the module docstring)."""
    facts, steps, counts, last_fact_frame = [], [], Counter(), 0
    for event in recording.events:
        if event.kind == "message" and isinstance(event.data, FACTS):
            counts[type(event.data)] += 1
            facts.append((type(event.data), counts[type(event.data)], event))
            last_fact_frame = event.frame
        elif event.kind != "resumed":
            steps.append(Step(event, len(facts) - 1, event.frame - (last_fact_frame if facts else 0)))
    return Replay(recording, steps, facts, start_frame, capture)


def replay_recording(app, recording: Recording, *, capture: Callable | None = None) -> Replay:
    """Insert a Replay of `recording` starting next frame (the App's schedule needs
    recording_plugin); returns it. Run the App until `replay.done`. A recording started with
    objects already segmented is noted in Replay.problems (the replay starts from the App as is).
    Grids are compared bit for bit when the App's field is on the recording's device, else by
    their voxel counts (replay_is_exact)."""
    replay = plan_replay(recording, app.frame, capture=capture)
    replay.exact = replay_is_exact(recording, app.resource(SceneData).representation.device)
    differences = compare_grids(list(recording.header.get("objects", ())), object_grids(app), replay.exact)
    replay.problems += [f"at the start: {d}" for d in differences]
    app.insert_resource(replay)
    return replay


def replay_active(app) -> bool:
    """Whether a replay is still feeding the App (the viewer ignores user input meanwhile)."""
    replay = app.try_resource(Replay)
    return replay is not None and not replay.done


def feed_replay(app) -> None:
    """Reads Replay; sends the recorded requests and inserts recorded SegmentationSettings that are due."""
    replay = app.resource(Replay)
    while replay.next_step < len(replay.steps) and replay.due(app):
        event = replay.steps[replay.next_step].event
        if event.kind not in INPUT_KINDS:
            return
        if event.kind == "message":
            app.send(event.data)
        else:
            app.insert_resource(event.data)
        replay.next_step += 1


def check_replay(app) -> None:
    """Reads the FACTS, MaskGrid, objects; writes Replay (matched facts, problems); performs due
    grid checks and camera steps (ViewerCamera pose, capture); when done, resumes a paused Recorder."""
    replay = app.resource(Replay)
    for kind in FACTS:
        replay.seen[kind] += len(app.read(kind))
    if replay.done:
        return
    before = len(replay.matched)
    while len(replay.matched) < len(replay.facts) and replay.seen[replay.facts[len(replay.matched)][0]] >= \
            replay.facts[len(replay.matched)][1]:
        replay.matched.append(app.frame)
    while replay.next_step < len(replay.steps) and replay.due(app) \
            and replay.steps[replay.next_step].event.kind not in INPUT_KINDS:
        _perform(app, replay, replay.steps[replay.next_step].event)
        replay.next_step += 1
    _watch_stall(app, replay, progressed=len(replay.matched) > before)
    replay.seconds = time.perf_counter() - replay.started
    if replay.done:
        _resume_recorder(app, replay)


def run_replay(app, replay: Replay) -> Replay:
    """Step the App until the replay is done; returns it."""
    app.run(until=lambda _: replay.done)
    return replay


def replay_is_exact(recording: Recording, device: str) -> bool:
    """Whether a replay on `device` ("cpu" | "cuda") can match the recording bit for bit: only on the
    device it was recorded on (CPU and GPU kernels round differently)."""
    return recording.header.get("device", "cpu") == device


def compare_grids(recorded: list[dict], replayed: list[dict], exact: bool = True) -> list[str]:
    """What differs between two object lists of recorder.object_grids, one phrase per object.

    exact: votes must match bit for bit; else only the voxels inside may differ, by at most
    INSIDE_TOLERANCE of them (rounding flips voxels whose votes are ~0)."""
    problems = []
    by_id = {o["id"]: o for o in replayed}
    for old in recorded:
        new = by_id.pop(old["id"], None)
        label = f"object {old['id']} '{old['name']}'"
        if new is None:
            problems.append(f"{label} is missing from the replay")
            continue
        for key in ("name", "color", "channel", "shape"):
            if _plain(old[key]) != _plain(new[key]):
                problems.append(f"{label}: {key} {old[key]} recorded, {new[key]} replayed")
        if old["sha256"] != new["sha256"] and (exact or abs(old["inside"] - new["inside"]) >
                                               max(2, INSIDE_TOLERANCE * old["inside"])):
            problems.append(f"{label}: mask grid differs (votes sha256 {old['sha256'][:12]} recorded, "
                            f"{new['sha256'][:12]} replayed; {old['inside']} voxels inside recorded, "
                            f"{new['inside']} replayed)")
    problems += [f"object {o['id']} '{o['name']}' exists only in the replay" for o in by_id.values()]
    return problems


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def _perform(app, replay: Replay, event: Event) -> None:
    if event.kind == "grids":
        differences = compare_grids(list(event.data["objects"]), object_grids(app), replay.exact)
        where = f"line {event.n + 1} (recorded frame {event.frame})"
        replay.problems += [f"{where}: {d}" for d in differences]
        replay.checks += not differences
    elif event.kind == "camera":
        if app.has_resource(ViewerCamera):
            set_pose(app, event.data["T_world_camera"], event.data.get("view"))
        if replay.capture is not None:
            replay.capture(app, event.data)


def _watch_stall(app, replay: Replay, *, progressed: bool) -> None:
    """Count frames spent waiting on a fact that does not come; after stall_frames, skip it."""
    blocked_on_fact = len(replay.matched) < len(replay.facts) and (
        replay.next_step >= len(replay.steps) or replay.steps[replay.next_step].gate >= len(replay.matched))
    replay.waiting = replay.waiting + 1 if blocked_on_fact and not progressed else 0
    if replay.waiting > replay.stall_frames:
        kind, count, event = replay.facts[len(replay.matched)]
        replay.problems.append(f"line {event.n + 1} (recorded frame {event.frame}): the replay never produced "
                               f"{kind.__name__} #{count} (it produced {replay.seen[kind]}); skipped it")
        replay.matched.append(app.frame)
        replay.waiting = 0


def _resume_recorder(app, replay: Replay) -> None:
    """Continue a paused recording: recorded frames and seconds go on from its last event (and
    background embeddings and work are announced as they arrive again)."""
    encoding = app.try_resource(Encoding)
    if encoding is not None:
        encoding.replayed = False
    announce_from_now(app)
    recorder = app.try_resource(Recorder)
    if recorder is None or not recorder.paused:
        return
    last = replay.recording.events[-1] if replay.recording.events else None
    recorder.frame0 = app.frame - (last.frame if last else 0)
    recorder.t0 = time.perf_counter() - (last.t if last else 0.0)
    recorder.paused = False
    recorder.writer.append(*recorder.now(app), "resumed", {"created": now_iso()}, sync=True)
