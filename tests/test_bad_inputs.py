"""The bad-input corpus: every case answers with one `error:` line and exit 2, writes no output.

Cases are grouped by class (what is wrong), each over the file kinds it applies to: numbers that
are NaN / infinite / of the wrong type or shape in scene files (transforms.json, LLFF
poses_bounds.npy, COLMAP text), damaged files (scenes, images, checkpoints, mask grids,
recordings, prompt files), prompts outside the image, impossible settings, and output paths that
cannot be folders. The small scenes here are written by `write_scene` (tests/test_fuzz_inputs.py
corrupts the same files at random).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main
from engine.scenes.builtin import builtin_scene

SIZE, VIEWS = 32, 10


def _builtin_folder() -> Path:
    return Path(builtin_scene(SIZE).source)


def write_scene(folder: Path, kind: str) -> Path:
    """A small valid scene of `kind` ("blender", "llff", "colmap") in `folder`: the built-in scene's
    first VIEWS views at SIZE px. Returns the file that holds its cameras."""
    source = builtin_scene(SIZE)
    names = [f"{n}.png" for n in source.view_names[:VIEWS]]
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(_builtin_folder() / "images" / name, image_dir / name)
    K, T = source.K[:VIEWS].astype(np.float64), source.T_world_camera[:VIEWS].astype(np.float64)
    if kind == "blender":
        gl = T @ np.diag([1.0, -1.0, -1.0, 1.0])
        frames = [{"file_path": f"images/{n}", "transform_matrix": gl[i].tolist()} for i, n in enumerate(names)]
        path = folder / "transforms.json"
        path.write_text(json.dumps({"fl_x": float(K[0, 0, 0]), "frames": frames}, indent=1))
        return path
    if kind == "llff":
        rows = []
        for i in range(VIEWS):
            R, t = T[i, :3, :3], T[i, :3, 3]
            pose = np.stack([R[:, 1], R[:, 0], -R[:, 2], t, [SIZE, SIZE, K[i, 0, 0]]], 1)   # [3, 5]
            rows.append(np.concatenate([pose.reshape(-1), [1.0, 10.0]]))
        path = folder / "poses_bounds.npy"
        np.save(path, np.stack(rows))
        return path
    (folder / "cameras.txt").write_text(f"1 PINHOLE {SIZE} {SIZE} {K[0, 0, 0]} {K[0, 1, 1]} {K[0, 0, 2]} "
                                        f"{K[0, 1, 2]}\n")
    lines = []
    for i, name in enumerate(names):
        inv = np.linalg.inv(T[i])
        q = _quaternion(inv[:3, :3])
        lines += [f"{i + 1} {' '.join(map(str, q))} {' '.join(map(str, inv[:3, 3]))} 1 {name}", ""]
    path = folder / "images.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _quaternion(R: np.ndarray) -> list[float]:
    """(w, x, y, z) of a rotation matrix (R's trace is positive enough for these cameras or not:
    the largest-diagonal branch keeps it stable)."""
    w = math.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return [w, x, y, z]


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of main.main(argv) in this process (a traceback fails the test)."""
    code = main.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_error_line(code: int, err: str, *expected: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in errors[0], errors[0]


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _set_pose(value):
    return lambda d: d["frames"][3].__setitem__("transform_matrix", value)


NAN_POSE = [[float("nan"), 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
INF_POSE = [[1, 0, 0, float("inf")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
SCALED_POSE = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]

# (case id, kind, how the file is damaged, what the error line names)
SCENE_CASES = [
    ("nan pose", "blender", lambda p: _edit_json(p, _set_pose(NAN_POSE)), "NaN"),
    ("inf pose", "blender", lambda p: _edit_json(p, _set_pose(INF_POSE)), "NaN or infinity"),
    ("pose as string", "blender", lambda p: _edit_json(p, _set_pose("abc")), "not numbers"),
    ("pose 3x3", "blender", lambda p: _edit_json(p, _set_pose(np.eye(3).tolist())), "shape 3x3"),
    ("pose ragged", "blender", lambda p: _edit_json(p, _set_pose([[1, 0], [0, 1, 0]])), "transform_matrix"),
    ("pose scaled", "blender", lambda p: _edit_json(p, _set_pose(SCALED_POSE)), "not a rotation"),
    ("focal as string", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("fl_x", "big")), "'fl_x'"),
    ("focal negative", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("fl_x", -5)), "positive"),
    ("focal nan", "blender", lambda p: p.write_text(p.read_text().replace('"fl_x": ', '"fl_x": NaN, "x": ')),
     "NaN"),
    ("angle nan", "blender", lambda p: _edit_json(p, lambda d: (d.pop("fl_x"), d.__setitem__(
        "camera_angle_x", float("nan")))), "camera_angle_x"),
    ("sa3d box string", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("sa3d", {"bbox": "x"})),
     "sa3d.bbox"),
    ("sa3d near inf", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("sa3d", {"near": float("inf")})),
     "sa3d.near"),
    ("frames not objects", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("frames", [1, 2])), "frame"),
    ("no frames", "blender", lambda p: _edit_json(p, lambda d: d.__setitem__("frames", [])), "no images"),
    ("truncated json", "blender", lambda p: p.write_bytes(p.read_bytes()[:200]), "malformed JSON"),
    ("empty json", "blender", lambda p: p.write_bytes(b""), "malformed JSON"),
    ("binary json", "blender", lambda p: p.write_bytes(bytes(range(256))), "transforms.json"),
    ("image truncated", "blender", lambda p: _truncate(p.parent / "images" / "view_003.png"), "view_003"),
    ("image garbage", "blender", lambda p: (p.parent / "images" / "view_003.png").write_bytes(b"\x89PNG junk"),
     "view_003"),
    ("llff nan", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__((2, 3), np.nan)), "row 2"),
    ("llff inf bound", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__((1, 16), np.inf)), "row 1"),
    ("llff negative focal", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__((0, 14), -3)), "focal"),
    ("llff near beyond far", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__((4, 15), 20)), "near"),
    ("llff 16 columns", "llff", lambda p: np.save(p, np.load(p)[:, :16]), "expected [N, 17]"),
    ("llff truncated", "llff", lambda p: p.write_bytes(p.read_bytes()[:100]), "poses_bounds.npy"),
    ("llff pickled", "llff", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "poses_bounds.npy"),
    ("llff zero row", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__((3, slice(0, 15)), 0)),
     "positive"),
    ("llff scaled rotation", "llff", lambda p: _edit_npy(p, lambda a: a.__setitem__(
        (3, [0, 1, 2, 5, 6, 7, 10, 11, 12]), 2 * a[3, [0, 1, 2, 5, 6, 7, 10, 11, 12]])), "not a rotation"),
    ("colmap zero quaternion", "colmap", lambda p: _edit_line(p, 0, [0, 0, 0, 0], 0), "NaN"),
    ("colmap nan translation", "colmap", lambda p: _edit_line(p, 2, ["nan"], 5), "NaN"),
    ("colmap text in numbers", "colmap", lambda p: _edit_line(p, 2, ["one"], 1), "cannot parse"),
    ("colmap camera nan", "colmap", lambda p: (p.parent / "cameras.txt").write_text(
        f"1 PINHOLE {SIZE} {SIZE} nan 40 16 16\n"), "finite"),
    ("colmap camera size 0", "colmap", lambda p: (p.parent / "cameras.txt").write_text(
        "1 PINHOLE 0 32 40 40 16 16\n"), "positive"),
    ("colmap camera missing", "colmap", lambda p: (p.parent / "cameras.txt").write_text(
        "2 PINHOLE 32 32 40 40 16 16\n"), "camera 1"),
]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _edit_npy(path: Path, edit) -> None:
    array = np.load(path)
    edit(array)
    np.save(path, array)


def _edit_line(path: Path, image: int, values: list, first: int) -> None:
    """Replace fields first.. of image `image`'s line of images.txt with `values`."""
    lines = path.read_text().split("\n")
    parts = lines[2 * image].split()
    parts[first + 1:first + 1 + len(values)] = map(str, values)
    lines[2 * image] = " ".join(parts)
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("case, kind, damage, expected", SCENE_CASES, ids=[c[0] for c in SCENE_CASES])
def test_a_damaged_scene_is_one_error_line_naming_it(case, kind, damage, expected, tmp_path, capsys):
    scene = tmp_path / "scene"
    damage(write_scene(scene, kind))
    out = tmp_path / "out"
    code, err = run_main(["train", scene, "--out", out, "--max-minutes", "0.01", "--device", "cpu"], capsys)
    assert_one_error_line(code, err, expected)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["blender", "llff", "colmap"])
def test_the_small_scenes_load(kind, tmp_path):
    from engine.scenes import load_scene

    write_scene(tmp_path, kind)
    scene = load_scene(str(tmp_path))
    assert len(scene) == VIEWS and scene.H == SIZE and np.isfinite(scene.bbox).all()


def _garbage(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _nan_grid(path: Path) -> Path:
    np.savez(path, version=1, votes=np.full((1, 2, 2, 2), np.nan, np.float32), names=np.array(["a"]),
             colors=np.zeros((1, 3), np.uint8), bbox=np.zeros((2, 3)), space="world", scene_hash="x",
             field_hash="y")
    return path


def _mask(path: Path, size: tuple[int, int]) -> Path:
    Image.fromarray(np.full(size, 255, np.uint8)).save(path)
    return path


SEGMENT = ["segment", "builtin-32", "--view", "1", "--out"]
# (case id, argv builder given tmp_path (the output is tmp_path / "out"), what the error line names)
COMMAND_CASES = [
    ("point negative", lambda t: [*SEGMENT, t / "out", "--point", "-3,70"], "outside view"),
    ("point negative y", lambda t: [*SEGMENT, t / "out", "--point", "3,-7"], "outside view"),
    ("point nan", lambda t: [*SEGMENT, t / "out", "--point", "nan,5"], "--point"),
    ("point huge", lambda t: [*SEGMENT, t / "out", "--point", "1e300,5"], "outside view"),
    ("point words", lambda t: [*SEGMENT, t / "out", "--point", "left,top"], "not X,Y"),
    ("point label 7", lambda t: [*SEGMENT, t / "out", "--point", "5,5,7"], "LABEL"),
    ("box reversed", lambda t: [*SEGMENT, t / "out", "--box", "20,20,5,5"], "--box"),
    ("box negative", lambda t: [*SEGMENT, t / "out", "--box", "-4,0,5,5"], "--box"),
    ("mask other size", lambda t: [*SEGMENT, t / "out", "--mask", _mask(t / "m.png", (50, 40))],
     "40x50 pixels but the view is 32x32"),
    ("mask garbage", lambda t: [*SEGMENT, t / "out", "--mask", _garbage(t / "m.png")], "--mask"),
    ("mask empty", lambda t: [*SEGMENT, t / "out", "--mask", _empty(t / "m.png")], "--mask"),
    ("view unknown", lambda t: ["segment", "builtin-32", "--view", "nope", "--point", "3,3", "--out", t / "out"],
     "view 'nope'"),
    ("prompts garbage", lambda t: ["segment", "builtin-32", "--prompts", _garbage(t / "p.json"), "--out", t / "out"],
     "--prompts"),
    ("prompts wrong types", lambda t: ["segment", "builtin-32", "--prompts", _text(t / "p.json", json.dumps(
        [{"view": "1", "points": [["a", "b"]]}])), "--out", t / "out"], "entry 0"),
    ("prompts nan point", lambda t: ["segment", "builtin-32", "--prompts", _text(t / "p.json",
        '[{"view": "1", "points": [[NaN, 3]]}]'), "--out", t / "out"], "entry 0"),
    ("field garbage", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--field", _garbage(t / "f.pt")],
     "not a readable field checkpoint"),
    ("field empty", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--field", _empty(t / "f.pt")],
     "not a readable field checkpoint"),
    ("sam garbage", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--segmenter", "sam", "--sam-checkpoint",
                               _garbage(t / "sam_vit_b_01ec64.pth")], "SAM checkpoint"),
    ("iou gate 3", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--iou-gate", "3"], "--iou-gate"),
    ("train resolution 4000", lambda t: ["train", "builtin-32", "--resolution", "4000", "--out", t / "out"],
     "use --resolution"),
    ("train minutes nan", lambda t: ["train", "builtin-32", "--max-minutes", "nan", "--out", t / "out"],
     "--max-minutes"),
    ("train out under a file", lambda t: ["train", "builtin-32", "--out", _empty(t / "f") / "out"], "is a file"),
    ("train out is a file", lambda t: ["train", "builtin-32", "--out", _empty(t / "out")], "is a file"),
    ("builtin huge", lambda t: ["train", "builtin-100000", "--out", t / "out"], "GB"),
    ("builtin 2 px", lambda t: ["train", "builtin-2", "--out", t / "out"], "at least 8"),
    ("segment out under a file", lambda t: [*SEGMENT, _empty(t / "f") / "out", "--point", "5,5"], "is a file"),
    ("train downscale 0", lambda t: ["train", "builtin-32", "--downscale", "0", "--out", t / "out"], "--downscale"),
    ("train bbox nan", lambda t: ["train", "builtin-32", "--bbox", "nan,0,0,1,1,1", "--out", t / "out"], "--bbox"),
    ("train bbox negative", lambda t: ["train", "builtin-32", "--bbox", "-1,-1,-1,-2,1,1", "--out", t / "out"],
     "--bbox"),
    ("export grid garbage", lambda t: ["export", _garbage(t / "g.npz"), "--format", "npz", "--out", t / "out"],
     "not a readable mask grid"),
    ("export grid empty", lambda t: ["export", _empty(t / "g.npz"), "--format", "npz", "--out", t / "out"],
     "not a readable mask grid"),
    ("export grid nan", lambda t: ["export", _nan_grid(t / "g.npz"), "--format", "npz", "--out", t / "out"],
     "NaN"),
    ("export points 0", lambda t: ["export", _nan_grid(t / "g.npz"), "--format", "ply", "--points", "0",
                                   "--out", t / "out"], "--points"),
    ("export points huge", lambda t: ["export", _nan_grid(t / "g.npz"), "--format", "ply", "--points",
                                      str(10 ** 15), "--out", t / "out"], "GB"),
    ("replay garbage", lambda t: ["replay", _garbage(t / "r.jsonl"), "--out", t / "out"], "not an sa3d recording"),
    ("replay empty", lambda t: ["replay", _empty(t / "r.jsonl"), "--out", t / "out"], "not an sa3d recording"),
    ("replay header only json", lambda t: ["replay", _text(t / "r.jsonl", '{"format": "sa3d-recording", '
                                           '"version": 1}\n'), "--out", t / "out"], "lacks"),
    ("replay video size 0", lambda t: ["replay", _empty(t / "r.jsonl"), "--video-size", "0", "--out", t / "out"],
     "--video-size"),
    ("view size 0", lambda t: ["view", "builtin-32", "--size", "0x0", "--frames", "1"], "--size"),
    ("view frames 0", lambda t: ["view", "builtin-32", "--frames", "0"], "--frames"),
    ("view propagation views -1", lambda t: ["view", "builtin-32", "--propagation-views", "-1", "--frames", "1"],
     "--propagation-views"),
    ("view train seconds nan", lambda t: ["view", "builtin-32", "--train-seconds", "nan"], "--train-seconds"),
    ("view demo out is a file", lambda t: ["view", "builtin-32", "--out", _empty(t / "out")], "is a file"),
    ("segment views -3", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--views", "-3"], "count >= 1"),
    ("segment name a path", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--name", "../x"], "--name"),
    ("segment name empty", lambda t: [*SEGMENT, t / "out", "--point", "5,5", "--name", " "], "--name"),
]


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, build, expected", COMMAND_CASES, ids=[c[0] for c in COMMAND_CASES])
def test_a_bad_value_is_one_error_line_and_writes_nothing(case, build, expected, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setenv("DISPLAY", "")
    argv = build(tmp_path)
    before = (tmp_path / "out").is_file()
    threads = torch.get_num_threads()              # the view command sets its own
    try:
        code, err = run_main(argv, capsys)
    finally:
        torch.set_num_threads(threads)
    assert_one_error_line(code, err, expected)
    assert (tmp_path / "out").is_file() == before and not (tmp_path / "out").is_dir()


def test_a_negative_value_is_joined_to_its_option_only():
    parser = main.build_parser()
    argv = ["segment", "--point", "-3,70", "--box", "-1,0,4,4", "--name", "-x", "--view", "1", "--out", "o"]
    assert main.join_negative_values(parser, argv) == [
        "segment", "--point=-3,70", "--box=-1,0,4,4", "--name", "-x", "--view", "1", "--out", "o"]
    assert main.join_negative_values(parser, ["train", "--force", "-3"]) == ["train", "--force", "-3"]
