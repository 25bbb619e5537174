"""Replay does not depend on thread counts: a session recorded with torch on one thread replays bit
for bit with two, through the replay command (which applies the recorded count) and through the
replay systems alone (the density activation gives the same bits on any thread count)."""

import json

import numpy as np
import pytest
import torch

from components.resources import MaskGrid
from engine.field.checkpoint import save_field
from engine.field.fixtures import trained_builtin_field
from engine.field.grid import softplus
from engine.scenes.builtin import builtin_truth
from main import main
from systems.record.fileformat import read_recording
from systems.record.recorder import RecordingSettings, start_recording, stop_recording
from systems.record.replayer import run_replay
from systems.record.session import headless_replay_app
from systems.sam.gt import GtSegmenter
from tests.test_record_session import _pixel, _viewer, run_script


@pytest.fixture(scope="module")
def one_thread_session(tmp_path_factory):
    """(scene, field, truth, recording path, the recording's final votes), recorded on 1 thread."""
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    folder = tmp_path_factory.mktemp("threads")
    field_path = folder / "field.pt"
    save_field(field_path, field, scene_hash=scene.content_hash())
    script = [{"click": _pixel(truth, 1, 1)}, {"wait": "segmented"}, {"key": "1"}, {"wait": "segmented"},
              {"key": "RIGHT_BRACKET"}, {"key": "N"}, {"click": _pixel(truth, 2, 3)}, {"wait": "segmented"},
              {"key": "1"}, {"wait": "segmented"}, {"quit": True, "after": 4}]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        app = _viewer(scene, field, truth, script)
        path = folder / "session.jsonl"
        start_recording(app, RecordingSettings(path, camera_hz=1e6, field_path=str(field_path)))
        run_script(app)
        stop_recording(app)
    finally:
        torch.set_num_threads(before)
    return scene, field, truth, path, app.resource(MaskGrid).votes.copy()


def test_the_header_states_the_settings_that_change_bits(one_thread_session):
    *_, path, _ = one_thread_session
    settings = json.loads(path.read_text().splitlines()[0])["determinism"]
    assert settings["torch_threads"] == 1 and settings["dtype"] == "float32"
    assert settings["torch"] == torch.__version__ and {"numpy", "scipy"} <= set(settings)


def test_the_replay_command_matches_bit_for_bit_on_two_threads(one_thread_session, tmp_path, capsys):
    *_, path, votes = one_thread_session
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["replay", str(path), "--out", str(tmp_path / "out"), "--views", "0"]) == 0
        assert torch.get_num_threads() == 2                       # restored after the replay
    finally:
        torch.set_num_threads(before)
    assert "identical: " in capsys.readouterr().out
    with np.load(tmp_path / "out" / "mask_grid.npz") as grid:
        assert grid["votes"].tobytes() == votes.tobytes()


def test_the_replay_systems_match_on_another_thread_count(one_thread_session):
    scene, field, truth, path, votes = one_thread_session
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        app, replay = headless_replay_app(read_recording(path), scene, field, GtSegmenter(truth.instance_dir()))
        run_replay(app, replay)
    finally:
        torch.set_num_threads(before)
    assert replay.problems == [] and replay.checks >= 2
    assert app.resource(MaskGrid).votes.tobytes() == votes.tobytes()


def test_the_activation_is_the_same_bits_on_any_thread_count():
    x = torch.randn(300_001) * 30                                  # both sides of softplus' linear regime
    results, before = [], torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(softplus(x))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(results[0], r) for r in results[1:])
    np.testing.assert_allclose(results[0].numpy(), torch.nn.functional.softplus(x).numpy(), rtol=2e-6, atol=1e-30)
