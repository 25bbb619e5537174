"""The train command's field kinds, --bbox and --space, and its output folder written as a unit."""

import json

import pytest

import main
from tests.test_field_train import _tiny_scene


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path / "cache"))
    scene = _tiny_scene(size=16, views=10)
    monkeypatch.setattr("engine.scenes.load_scene", lambda name, downscale=None: scene)
    return scene


def _train(out, *extra) -> int:
    return main.main(["train", "tiny", "--out", str(out), "--max-minutes", "0.02", "--resolution", "10",
                      "--device", "cpu", *extra])


def test_kind_and_box_are_chosen_recorded_and_overridable(tiny, tmp_path, capsys):
    assert _train(tmp_path / "auto") == 0
    report = json.loads((tmp_path / "auto" / "train.json").read_text())
    assert report["field_kind"] == "box" and report["field_kind_chosen_by"] == "auto"   # white backdrop
    assert report["bbox"] == tiny.bbox.tolist() and report["bbox_source"] == tiny.bbox_source
    assert "field kind box (auto" in capsys.readouterr().out
    assert _train(tmp_path / "over", "--space", "unbounded", "--bbox=-0.8,-0.8,-0.8,0.8,0.8,0.9") == 0
    report = json.loads((tmp_path / "over" / "train.json").read_text())
    assert report["field_kind"] == "unbounded" and report["field_kind_chosen_by"] == "--space"
    assert report["bbox"] == [[-0.8, -0.8, -0.8], [0.8, 0.8, 0.9]]
    assert report["bbox_source"] == "--bbox" and report["scene_hash"] == tiny.content_hash()
    from engine.field.checkpoint import load_field

    field = load_field(tmp_path / "over" / "field.pt", scene_hash=tiny.content_hash())
    assert field.kind == "unbounded" and field.bbox[1, 2].item() == pytest.approx(0.9)


@pytest.mark.parametrize("bbox", ["1,2,3", "0,0,0,1,1,x", "0,0,0,1,-1,1", "0,0,0,1,1,inf"])
def test_bad_bbox_is_one_error_line(tiny, tmp_path, capsys, bbox):
    assert _train(tmp_path / "out", f"--bbox={bbox}") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --bbox") and "\n" not in err and not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_one_error_line(tiny, tmp_path, capsys):
    path = tmp_path / "field.pt"
    path.write_bytes(b"mine")
    assert _train(path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "is a file" in err and "\n" not in err
    assert path.read_bytes() == b"mine"


def test_an_interrupted_run_keeps_the_old_output_whole(tiny, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _train(out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.field.train.train_field", interrupted)
    assert _train(out) != 0                                       # main reports "interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary left
