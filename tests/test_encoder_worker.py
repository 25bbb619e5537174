"""The background encoder: the worker thread alone, then a viewer App whose segmenter's encoder is
slow (a fake that sleeps): frames keep coming, the click is answered when the embedding arrives,
the propagation waits for its views, and a recording of it replays bit for bit."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from components.encoding import Encoding
from components.messages import CandidatesReady, PromptAdded, PropagationFinished, PropagationRequested
from components.resources import MaskGrid, SegmentationSettings, ViewCache
from engine.field.checkpoint import save_field
from engine.field.fixtures import trained_builtin_field
from engine.scenes.builtin import builtin_truth
from engine.schedule import Stage
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, start_recording, stop_recording
from systems.record.replayer import run_replay
from systems.record.session import headless_replay_app
from systems.sam.gt import GtSegmenter
from systems.sam.system import encoding_lines, stop_encoding
from systems.sam.worker import NICE, EncoderWorker
from systems.segmentation.views import scene_view_entry
from systems.viewer.plugin import build_viewer

ENCODE_S = 1.5                      # long against a frame, even on a loaded machine
VIEWS = (2, 5, 9)


def test_the_worker_runs_jobs_in_the_background_urgent_first_and_reports_errors():
    worker = EncoderWorker()
    gate, order = threading.Event(), []
    worker.post("a", lambda: gate.wait(5) and order.append("a"))
    while worker.running != "a":
        time.sleep(0.001)
    worker.post("b", lambda: order.append("b") or "B")
    worker.post("c", lambda: order.append("c") or "C", urgent=True)
    assert not worker.post("b", lambda: None)                        # a key runs once
    start = time.perf_counter()
    assert worker.poll() == [] and time.perf_counter() - start < 0.05
    gate.set()
    assert worker.wait("b", timeout=5).result == "B"
    assert order == ["a", "c", "b"]
    assert [d.key for d in worker.poll()] == ["a", "c"]               # b was taken by wait
    if hasattr(os, "setpriority") and sys.platform == "linux":         # the frame loop gets the cores first
        worker.post("nice", lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert worker.wait("nice", timeout=5).result == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
    worker.post("bad", lambda: 1 / 0)
    assert isinstance(worker.wait("bad", timeout=5).error, ZeroDivisionError)
    assert worker.wait("never posted", timeout=0.1) is None
    worker.close()


class SlowEncoderGt(GtSegmenter):
    """Ground-truth masks behind a slow background encoder (as a SAM-family segmenter would be)."""

    background = True

    def __init__(self, folder):
        super().__init__(folder)
        self.embedded = []

    def embed(self, image):
        time.sleep(ENCODE_S)                       # sleeping releases the GIL, as torch's kernels do
        self.embedded.append(image.shape)
        return {"image": image}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    folder = tmp_path_factory.mktemp("encoding")
    field_path = folder / "field.pt"
    save_field(field_path, field, scene_hash=scene.content_hash())
    return scene, field, truth, folder, field_path


def _pixel(truth, view, k):
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


def test_frames_keep_coming_while_the_encoder_runs_and_the_answer_arrives(session):
    from components.camera import Camera

    scene, field, truth, folder, field_path = session
    segmenter = SlowEncoderGt(truth.instance_dir())
    app = build_viewer(scene, field, segmenter, H=scene.H, W=scene.W, gl=False, ui=False, fixed_dt=1 / 30,
                       settings=SegmentationSettings(views=VIEWS), recording=True)
    encoding = app.resource(Encoding)
    assert encoding.background[:1] == (scene.train_ids[0],)           # the camera's view first
    path = folder / "session.jsonl"
    start_recording(app, RecordingSettings(path, field_path=str(field_path)))
    view = next(v for v in reversed(scene.train_ids) if v not in encoding.background)   # not encoded ahead
    app.step()
    with app.active():
        for v in (view, *VIEWS):
            scene_view_entry(app, v)               # the views' weights first: the frames below only wait
    app.send(PromptAdded(Camera.of_view(scene, view), *_pixel(truth, view, 1), 1, view))
    frames, answered, lines = [], None, set()
    start = time.perf_counter()
    while answered is None and time.perf_counter() - start < 20:
        t0 = time.perf_counter()
        app.step()
        frames.append(time.perf_counter() - t0)
        lines.update(encoding_lines(app))
        if app.messages.read(CandidatesReady, "test"):
            answered = time.perf_counter() - start
    assert answered is not None and answered >= ENCODE_S               # answered, once the embedding came
    assert len(frames) > 5 and np.median(frames) < ENCODE_S / 5       # frames went on meanwhile
    assert f"encoding view {scene.view_names[view]} ... (answered when it is ready)" in lines
    app.send(PropagationRequested())
    finished = []
    while not finished and time.perf_counter() - start < 60:
        app.step()
        finished = app.messages.read(PropagationFinished, "test")
    assert finished and finished[0].accepted >= 1
    stop_recording(app)
    assert set(VIEWS) <= app.resource(Encoding).ready
    votes = app.resource(MaskGrid).votes.copy()
    kinds = [type(e.data).__name__ for e in read_recording(path).events if e.kind == "message"]
    assert "ViewEncoded" in kinds

    # the replay waits for its own encoder where the recording says the embedding arrived
    replayer = SlowEncoderGt(truth.instance_dir())
    replay_app, replay = headless_replay_app(read_recording(path), scene, field, replayer)
    replay_app.resource(ViewCache).entries.update(app.resource(ViewCache).entries)
    assert replay_app.resource(Encoding).replayed and replay_app.resource(Encoding).background == ()
    run_replay(replay_app, replay)
    assert replay.problems == [] and replay.checks >= 2
    assert np.array_equal(replay_app.resource(MaskGrid).votes, votes)
    assert len(replayer.embedded) == kinds.count("ViewEncoded")         # the views the session announced


def test_the_recorder_taps_viewencoded_between_its_sender_and_its_reader(session):
    scene, field, truth, *_ = session
    app = build_viewer(scene, field, SlowEncoderGt(truth.instance_dir()), H=8, W=8, gl=False, ui=False,
                       recording=True)
    names = [e.name.rsplit(".", 1)[-1] for e in app.schedule.stages[Stage.SIMULATE]]
    assert names.index("collect_embeddings") < names.index("tap_requests") < names.index("mark_encoded")


def test_a_closing_viewer_interrupts_the_encoder_run_in_flight():
    import torch

    from systems.sam.models import build_sam
    from systems.sam.sam import EncodingStopped, SamSegmenter

    torch.manual_seed(0)
    seg = SamSegmenter(build_sam("tiny"), model_type="tiny")
    blocks = [m for name, m in seg.predictor.model.image_encoder.named_modules()
              if name.startswith("blocks.") and name.count(".") == 1]
    assert blocks and all(m._forward_pre_hooks for m in blocks)
    worker = EncoderWorker()
    seg.stop_encoding()
    worker.post("v", lambda: seg.embed(np.zeros((16, 16, 3), np.uint8)))
    assert isinstance(worker.wait("v", timeout=10).error, EncodingStopped)
    start = time.perf_counter()
    worker.close()
    assert time.perf_counter() - start < 1.0 and seg.encoder_runs == 0


@pytest.mark.gl
def test_a_still_viewer_waits_for_input_while_the_encoder_works(session):
    """Once the view is finished and nothing is pending, the frame loop waits for input (the window's
    poll with IDLE_WAIT_S) instead of redrawing at full speed; a click makes it busy again."""
    from components.camera import Camera
    from engine.platform.gl import GLUnavailableError, headless_context
    from systems.render.gl_present import GLPresenter
    from systems.viewer.plugin import IDLE_WAIT_S, WindowHandle, poll_window, viewer_idle

    try:
        ctx = headless_context()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    scene, field, truth, _, _ = session

    class FakeWindow:
        should_close = False
        waits: list = []

        def poll(self, wait_s=0.0):
            self.waits.append(wait_s)
            return []

        def swap(self):
            pass

    app = build_viewer(scene, field, SlowEncoderGt(truth.instance_dir()), H=48, W=64, gl=True, ui=False)
    app.insert_resource(GLPresenter(ctx=ctx, target=ctx.simple_framebuffer((64, 48), components=4)))
    window = FakeWindow()
    app.insert_resource(WindowHandle(window))
    try:
        for _ in range(200):
            if viewer_idle(app):
                break
            app.step()
        assert viewer_idle(app) and app.resource(Encoding).worker.queued > 0      # idle, encoder busy
        with app.active():
            poll_window(app)
        assert window.waits[-1] == IDLE_WAIT_S
        view = scene.train_ids[0]
        app.send(PromptAdded(Camera.of_view(scene, view), *_pixel(truth, view, 1), 1, view))
        app.step()                                                           # the click waits for its view
        app.step()
        assert not viewer_idle(app) and window.waits[-1] == 0.0             # busy frames do not wait
    finally:
        stop_encoding(app)
        ctx.release()
