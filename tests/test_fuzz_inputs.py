"""Property-based fuzzing (Hypothesis) of every command and every input file kind.

Each input file kind starts from a valid file and is corrupted in the ways files break: truncated
at a random offset, bytes overwritten, emptied, replaced by random bytes, or (JSON and arrays) one
value replaced by a value of another type, NaN, infinity or a huge number. Each command's flags
get values drawn from the same kinds of mistakes. The contract is always the same: the command
either reaches its work (the heavy step is replaced by a stub that stops the run there) or exits 2
with exactly one `error:` line, no traceback, and its output path untouched. Examples are bounded
(EXAMPLES per property) to keep the suite near a minute on two cores.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main
from tests.test_bad_inputs import write_scene

EXAMPLES = 25
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class ReachedWork(Exception):
    """Raised by the stubs of the commands' heavy steps: the inputs were accepted."""


def _stop(*args, **kwargs):
    raise ReachedWork


@pytest.fixture()
def stub_work(monkeypatch):
    """Replace every command's heavy step (training, propagation, export, replay, viewer) by _stop."""
    monkeypatch.setattr("engine.field.train.train_field", _stop)
    monkeypatch.setattr("systems.segmentation.setup.insert_segmentation", _stop)
    monkeypatch.setattr("systems.export.export.export_object", _stop)
    monkeypatch.setattr("systems.record.replayer.run_replay", _stop)
    monkeypatch.setattr("systems.viewer.scene_setup.load_viewer_inputs", _stop)
    monkeypatch.setenv("DISPLAY", "")


def honours_contract(argv: list, capsys, out: Path | None = None) -> str:
    """Run main.main(argv); 'work' when it reached its work, else assert the one-line error and an
    untouched output path. A traceback propagates (and Hypothesis shrinks it)."""
    import torch

    threads = torch.get_num_threads()
    try:
        code = main.main([str(a) for a in argv])
    except ReachedWork:
        capsys.readouterr()
        return "work"
    except SystemExit as stop:             # argparse's own errors
        code = stop.code
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert out is None or not out.exists()
    return "error"


# ---- corruptions ---------------------------------------------------------------------------------

def _overwrite(base: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(base)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


def corrupted_bytes(base: bytes) -> st.SearchStrategy[bytes]:
    """Truncated, bytes overwritten, empty, random bytes or the file repeated (oversized)."""
    return st.one_of(
        st.integers(0, len(base) - 1).map(lambda n: base[:n]),
        st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
            lambda edits: _overwrite(base, edits)),
        st.just(b""),
        st.binary(min_size=1, max_size=300),
    )


BAD_NUMBERS = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, -1e308, 1e-320])
JSON_VALUES = st.one_of(
    BAD_NUMBERS, st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.text(max_size=8),
    st.lists(st.one_of(BAD_NUMBERS, st.text(max_size=3)), max_size=5), st.dictionaries(st.text(max_size=4),
                                                                                       BAD_NUMBERS, max_size=2))


def _leaf_paths(doc, prefix=()) -> list[tuple]:
    """Every key path to a value inside a JSON document (containers included)."""
    paths = [prefix] if prefix else []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        paths += _leaf_paths(value, (*prefix, key))
    return paths


def _replace(doc, path: tuple, value):
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def corrupted_json(doc) -> st.SearchStrategy[bytes]:
    """One value of `doc` replaced by a value of another type, NaN, infinity or a huge number; or the
    document's bytes corrupted."""
    paths = _leaf_paths(doc)
    edited = st.tuples(st.sampled_from(paths), JSON_VALUES).map(
        lambda pv: json.dumps(_replace(doc, *pv)).encode())
    return st.one_of(edited, edited, corrupted_bytes(json.dumps(doc).encode()))


def corrupted_array(array: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    """One entry set to a bad number, or the array cut to another shape."""
    def one_entry(args):
        index, value = args
        out = array.copy()
        out.reshape(-1)[index % out.size] = value
        return out
    return st.one_of(st.tuples(st.integers(0, array.size - 1), BAD_NUMBERS).map(one_entry),
                     st.integers(0, array.shape[1] - 1).map(lambda n: array[:, :n]),
                     st.integers(0, array.shape[0] - 1).map(lambda n: array[:n]))


# ---- scenes ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """{kind: (a valid scene folder, the file holding its cameras)} to copy and corrupt."""
    root = tmp_path_factory.mktemp("scenes")
    return {kind: (root / kind, write_scene(root / kind, kind)) for kind in ("blender", "llff", "colmap")}


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = Path(tempfile.mkdtemp(dir=tmp_path)) / "scene"
    shutil.copytree(folder, target)
    return target


def _train(scene: Path) -> tuple[list, Path]:
    out = scene.parent / "out"
    return ["train", scene, "--out", out, "--max-minutes", "0.01", "--device", "cpu"], out


@FUZZ
@given(data=st.data())
def test_transforms_json(data, scenes, tmp_path, stub_work, capsys):
    folder, file = scenes["blender"]
    scene = _copy(folder, tmp_path)
    (scene / file.name).write_bytes(data.draw(corrupted_json(json.loads(file.read_text()))))
    argv, out = _train(scene)
    honours_contract(argv, capsys, out)


@FUZZ
@given(data=st.data())
def test_poses_bounds_npy(data, scenes, tmp_path, stub_work, capsys):
    folder, file = scenes["llff"]
    scene = _copy(folder, tmp_path)
    if data.draw(st.booleans()):
        np.save(scene / file.name, data.draw(corrupted_array(np.load(file))))
    else:
        (scene / file.name).write_bytes(data.draw(corrupted_bytes(file.read_bytes())))
    argv, out = _train(scene)
    honours_contract(argv, capsys, out)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["cameras.txt", "images.txt"]))
def test_colmap_text(data, name, scenes, tmp_path, stub_work, capsys):
    folder, _ = scenes["colmap"]
    scene = _copy(folder, tmp_path)
    base = (folder / name).read_text()
    words = st.sampled_from(["nan", "inf", "-1", "0", "1e308", "x", ""])
    def edit_word(args):
        line_no, word_no, word = args
        lines = base.split("\n")
        parts = lines[line_no % len(lines)].split(" ")
        parts[word_no % len(parts)] = word
        lines[line_no % len(lines)] = " ".join(parts)
        return "\n".join(lines).encode()
    broken = st.one_of(st.tuples(st.integers(0, 40), st.integers(0, 10), words).map(edit_word),
                       corrupted_bytes(base.encode()))
    (scene / name).write_bytes(data.draw(broken))
    argv, out = _train(scene)
    honours_contract(argv, capsys, out)


@FUZZ
@given(data=st.data())
def test_images(data, scenes, tmp_path, stub_work, capsys):
    folder, _ = scenes[data.draw(st.sampled_from(["blender", "llff", "colmap"]))]
    scene = _copy(folder, tmp_path)
    image = sorted((scene / "images").glob("*.png"))[data.draw(st.integers(0, 9))]
    image.write_bytes(data.draw(corrupted_bytes(image.read_bytes())))
    argv, out = _train(scene)
    honours_contract(argv, capsys, out)


# ---- files the commands read: checkpoints, mask grids, recordings, prompts, camera paths ----------

@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Valid files of every other kind, of the built-in scene at 64 px."""
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import trained_builtin_field
    from engine.io import file_sha256
    from systems.record.fileformat import encode_event, make_header

    scene, field = trained_builtin_field()
    root = tmp_path_factory.mktemp("files")
    files = {"field": root / "field.pt", "grid": root / "mask_grid.npz", "recording": root / "session.jsonl",
             "prompts": root / "prompts.json", "path": root / "path.json"}
    save_field(files["field"], field, scene_hash=scene.content_hash())
    Z, Y, X = field.resolution
    np.savez(files["grid"], version=1, votes=np.ones((1, Z, Y, X), np.float32), counts=np.ones((1, Z, Y, X)),
             names=np.array(["a"]), colors=np.zeros((1, 3), np.uint8), bbox=field.bbox.numpy(), space="world",
             scene_hash=scene.content_hash(), field_hash=file_sha256(files["field"]))
    header = make_header(scene_name="builtin-64", scene_hash=scene.content_hash(), field_path=str(files["field"]),
                         segmenter="fallback", checkpoint=None, settings=None)
    camera = {"K": scene.K[1].tolist(), "T_world_camera": scene.T_world_camera[1].tolist(), "H": 64, "W": 64,
              "view": 1}
    files["recording"].write_bytes(json.dumps(header).encode() + b"\n" + encode_event(1, 3, 0.1, "camera", camera)
                                   + encode_event(2, 4, 0.2, "camera", camera))
    files["prompts"].write_text(json.dumps([{"name": "a", "view": "1", "points": [[20, 30]]},
                                            {"name": "b", "view": "2", "box": [5, 5, 30, 30]}]))
    files["path"].write_text(json.dumps([{k: camera[k] for k in ("K", "T_world_camera", "H", "W")}]))
    return files


def _broken(data, path: Path, tmp_path: Path) -> Path:
    """A copy of `path` corrupted as its kind allows."""
    target = Path(tempfile.mkdtemp(dir=tmp_path)) / path.name
    if path.suffix == ".json":
        target.write_bytes(data.draw(corrupted_json(json.loads(path.read_text()))))
    else:
        target.write_bytes(data.draw(corrupted_bytes(path.read_bytes())))
    return target


@FUZZ
@given(data=st.data())
def test_field_checkpoint(data, made, tmp_path, stub_work, capsys):
    field = _broken(data, made["field"], tmp_path)
    out = field.parent / "out"
    honours_contract(["segment", "builtin-64", "--field", field, "--view", "1", "--point", "20,30",
                      "--segmenter", "fallback", "--out", out], capsys, out)


@FUZZ
@given(data=st.data())
def test_mask_grid(data, made, tmp_path, stub_work, capsys):
    grid = _broken(data, made["grid"], tmp_path)
    out = grid.parent / "out.ply"
    honours_contract(["export", grid, "--field", made["field"], "--scene", "builtin-64", "--format", "ply",
                      "--out", out], capsys, out)


@FUZZ
@given(data=st.data())
def test_recording(data, made, tmp_path, stub_work, capsys):
    recording = _broken(data, made["recording"], tmp_path)
    out = recording.parent / "out"
    honours_contract(["replay", recording, "--out", out], capsys, out)


@FUZZ
@given(data=st.data())
def test_prompts_file(data, made, tmp_path, stub_work, capsys):
    prompts = _broken(data, made["prompts"], tmp_path)
    out = prompts.parent / "out"
    honours_contract(["segment", "builtin-64", "--prompts", prompts, "--field", made["field"],
                      "--segmenter", "fallback", "--out", out], capsys, out)


@FUZZ
@given(data=st.data())
def test_camera_path(data, made, tmp_path, stub_work, capsys):
    path = _broken(data, made["path"], tmp_path)
    out = path.parent / "out"
    honours_contract(["export", made["grid"], "--field", made["field"], "--scene", "builtin-64", "--format",
                      "masks", "--path", path, "--out", out], capsys, out)


# ---- flags ----------------------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "-3,70", "", "x", "1,2"]),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.integers(-10 ** 12, 10 ** 12).map(str))
LIST_TEXT = st.lists(NUMBER_TEXT, min_size=0, max_size=7).map(",".join)

COMMAND_FLAGS = {
    "train": (["train", "builtin-32"], {"--max-minutes": NUMBER_TEXT, "--resolution": NUMBER_TEXT,
                                        "--downscale": NUMBER_TEXT, "--bbox": LIST_TEXT}),
    "segment": (["segment", "builtin-32", "--view", "1"], {"--point": LIST_TEXT, "--box": LIST_TEXT,
                                                          "--views": LIST_TEXT, "--num-prompts": NUMBER_TEXT,
                                                          "--iou-gate": NUMBER_TEXT, "--stop-after": NUMBER_TEXT,
                                                          "--downscale": NUMBER_TEXT}),
    "export": (["export", "GRID", "--scene", "builtin-64", "--field", "FIELD", "--format", "ply"],
               {"--points": NUMBER_TEXT, "--smooth": NUMBER_TEXT, "--alpha-iso": NUMBER_TEXT,
                "--fps": NUMBER_TEXT}),
    "replay": (["replay", "RECORDING"], {"--views": LIST_TEXT, "--video-size": NUMBER_TEXT, "--fps": NUMBER_TEXT,
                                         "--downscale": NUMBER_TEXT}),
    "view": (["view", "builtin-32"], {"--size": st.tuples(NUMBER_TEXT, NUMBER_TEXT).map("x".join),
                                      "--frames": NUMBER_TEXT, "--propagation-views": NUMBER_TEXT,
                                      "--train-seconds": NUMBER_TEXT}),
}


@FUZZ
@given(data=st.data(), command=st.sampled_from(sorted(COMMAND_FLAGS)))
def test_flags(data, command, made, tmp_path, stub_work, capsys):
    base, flags = COMMAND_FLAGS[command]
    chosen = data.draw(st.lists(st.sampled_from(sorted(flags)), min_size=1, max_size=3, unique=True))
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    argv = [{"GRID": made["grid"], "FIELD": made["field"], "RECORDING": made["recording"]}.get(a, a) for a in base]
    for flag in chosen:
        argv += [flag, data.draw(flags[flag])]
    if command == "segment" and "--point" not in chosen and "--box" not in chosen:
        argv += ["--point", "5,5"]
    honours_contract([*argv, "--out", out], capsys, out)        # view: the headless demo's folder
