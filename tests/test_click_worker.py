"""The long work of a click runs in the viewer's background worker: with a slow fake scene (its views'
weights take WEIGHTS_S) and a slow fake segmenter (an answer takes ANSWER_S), frames keep coming, the
panel says what is being computed, the candidates arrive a few frames later, a click made before
the answer came replaces the older job, and a recording of the session replays bit for bit, through
the worker and through the frame (as a session recorded before the worker would)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from components.camera import Camera
from components.messages import CandidatesReady, PromptAdded, PropagationFinished, PropagationRequested, WorkDone
from components.resources import MaskGrid, SegmentationSettings
from components.work import BackgroundWork
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from engine.schedule import Stage
from systems.inverse.representation import as_frozen_scene
from systems.record.codec import encode
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, start_recording, stop_recording
from systems.record.replayer import run_replay
from systems.record.session import headless_replay_app
from systems.sam.gt import GtSegmenter
from systems.segmentation.work import work_lines
from systems.viewer.plugin import build_viewer
from systems.viewer.run import stop_workers
from tests.test_record_session import _pixel

WEIGHTS_S = 0.6                     # long against a frame, even on a loaded machine
ANSWER_S = 1.0
VIEWS = (2, 5, 9)


class SlowScene:
    """The fixture field as a FrozenScene whose view_samples sleeps first (a large view's render)."""

    def __init__(self, field):
        self.inner = as_frozen_scene(field)
        self.layout, self.kind = self.inner.layout, self.inner.kind

    @property
    def device(self) -> str:
        return self.inner.device

    def describe(self) -> str:
        return self.inner.describe()

    def view_samples(self, camera, **options):
        time.sleep(WEIGHTS_S)                      # sleeping releases the GIL, as the compiled marcher does
        return self.inner.view_samples(camera, **options)


class SlowGt(GtSegmenter):
    """Ground-truth masks answered slowly (as the fallback's random walk on a large view is)."""

    def __init__(self, folder):
        super().__init__(folder)
        self.answers = 0

    def predict(self, **prompt):
        time.sleep(ANSWER_S)
        self.answers += 1
        return super().predict(**prompt)


@pytest.fixture(scope="module")
def session(tmp_path_factory, field_file):
    scene, field = trained_builtin_field()
    return scene, SlowScene(field), builtin_truth(scene.H), tmp_path_factory.mktemp("click"), field_file


def _viewer(scene, slow, truth, segmenter=None):
    return build_viewer(scene, slow, segmenter or SlowGt(truth.instance_dir()), H=scene.H, W=scene.W, gl=False,
                        ui=False, fixed_dt=1 / 30, settings=SegmentationSettings(views=VIEWS), recording=True)


def _until(app, kind, seconds: float):
    """Step frames until a message of `kind` is sent (or `seconds` pass); returns (messages, frame
    times, seconds waited, the panel's work lines seen meanwhile)."""
    frames, lines, start = [], set(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        app.step()
        frames.append(time.perf_counter() - t0)
        lines.update(work_lines(app))
        got = app.messages.read(kind, "test")
        if got:
            return got, frames, time.perf_counter() - start, lines
    return [], frames, seconds, lines


def test_frames_keep_coming_while_a_click_is_answered_and_the_recording_replays(session):
    scene, slow, truth, folder, field_path = session
    app = _viewer(scene, slow, truth)
    path = folder / "session.jsonl"
    start_recording(app, RecordingSettings(path, field_path=str(field_path)))
    view = 1
    app.send(PromptAdded(Camera.of_view(scene, view), *_pixel(truth, view, 1), 1, view))
    answered, frames, waited, lines = _until(app, CandidatesReady, 30)
    assert answered and waited >= WEIGHTS_S + ANSWER_S                # the weights, then the answer
    assert len(frames) > 10 and np.median(frames) < ANSWER_S / 10 and max(frames) < ANSWER_S / 2
    assert {f"computing the weights of {scene.view_names[view]} ...", "segmenting 'object 1' (gt) ..."} <= lines
    assert work_lines(app) == [] and not app.resource(BackgroundWork).wanted

    app.send(PropagationRequested())
    finished, frames, _, _ = _until(app, PropagationFinished, 60)
    assert finished and finished[0].accepted >= 1
    assert max(frames) < ANSWER_S / 2                                  # the views' weights and answers too
    stop_recording(app)
    stop_workers(app)
    votes = app.resource(MaskGrid).votes.copy()
    assert (votes > 0).sum() > 50
    kinds = [type(e.data).__name__ for e in read_recording(path).events if e.kind == "message"]
    assert kinds.count("WorkDone") >= 1 + 1 + len(VIEWS)              # the click's weights and answer, the views

    # the replay waits for its own worker where the recording says each result arrived ...
    replay_app, replay = headless_replay_app(read_recording(path), scene, slow, GtSegmenter(truth.instance_dir()))
    assert replay_app.resource(BackgroundWork).replayed
    run_replay(replay_app, replay)
    stop_workers(replay_app)
    assert replay.problems == [] and replay.checks >= 2
    assert replay_app.resource(MaskGrid).votes.tobytes() == votes.tobytes()

    # ... and a session recorded before the worker (no WorkDone) replays through the frame: same grid
    header, *events = (json.loads(line) for line in path.read_text().splitlines())
    events = [e for e in events if "components.messages.WorkDone" not in json.dumps(e["data"])]
    inline = folder / "inline.jsonl"
    inline.write_text("".join(json.dumps(line) + "\n" for line in [header, *({**e, "n": n} for n, e in
                                                                           enumerate(events, 1))]))
    recording = read_recording(inline)
    assert recording.stop is None and len(recording.events) == len(events)
    replay_app, replay = headless_replay_app(recording, scene, slow, GtSegmenter(truth.instance_dir()))
    assert not replay_app.has_resource(BackgroundWork)
    run_replay(replay_app, replay)
    assert replay.problems == [] and replay.checks >= 2
    assert replay_app.resource(MaskGrid).votes.tobytes() == votes.tobytes()


def test_a_click_before_the_answer_replaces_the_older_job(session):
    scene, slow, truth, *_ = session
    segmenter = SlowGt(truth.instance_dir())
    app = _viewer(scene, slow, truth, segmenter)
    view = 1
    camera = Camera.of_view(scene, view)
    app.send(PromptAdded(camera, *_pixel(truth, view, 1), 1, view))
    worker = app.resource(BackgroundWork).worker
    start = time.perf_counter()
    while time.perf_counter() - start < 20 and (worker.running or ("",))[0] != "answer":
        app.step()                                              # until the first answer is being computed
    app.send(PromptAdded(camera, *_pixel(truth, view, 2), 0, view))    # negative clicks on other objects: the
    app.step()                                                          # second prompt's job waits in the queue ...
    app.send(PromptAdded(camera, *_pixel(truth, view, 3), 0, view))    # ... and the third replaces it there
    answered, *_ = _until(app, CandidatesReady, 30)
    time.sleep(ANSWER_S)
    app.step()
    stop_workers(app)
    assert len(answered) == 1 and not app.messages.read(CandidatesReady, "test")   # only the newest prompt
    assert segmenter.answers == 2                                      # the first ran; the second never did
    alone = GtSegmenter(truth.instance_dir())
    alone.set_view(np.asarray(scene.images[view]), view_name=scene.view_names[view])
    points = np.array([_pixel(truth, view, k) for k in (1, 2, 3)], np.float32)
    expected = alone.predict(points=points, labels=np.array([1, 0, 0]), multimask=True)
    assert answered[0].scores == tuple(float(s) for s in expected.scores)


def test_workdone_is_recorded_between_its_sender_and_its_reader(session):
    scene, slow, truth, *_ = session
    app = _viewer(scene, slow, truth)
    stop_workers(app)
    names = [e.name.rsplit(".", 1)[-1] for e in app.schedule.stages[Stage.SIMULATE]]
    assert names.index("collect_work") < names.index("tap_requests") < names.index("mark_work_done")
    assert encode(WorkDone(("answer", 1, "ab"))) == {"__dataclass__": "components.messages.WorkDone",
                                                    "fields": {"key": ["answer", 1, "ab"]}}
