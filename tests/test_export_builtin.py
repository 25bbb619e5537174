"""Exports of the built-in scene's objects through `main.py export`, checked against exact truth."""

import json
import math

import numpy as np
import plyfile
import pytest
import trimesh
from PIL import Image

import main
from engine.scenes import builtin_render as br

SIZE = 64


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(scene, field, truth, folder with field.pt and a ground-truth mask_grid.npz of all objects)."""
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import trained_builtin_field
    from engine.io import file_sha256
    from engine.scenes.builtin import builtin_truth

    scene, field = trained_builtin_field(SIZE)
    truth = builtin_truth(SIZE)
    folder = tmp_path_factory.mktemp("export")
    save_field(folder / "field.pt", field, scene_hash=scene.content_hash())
    bbox = field.bbox.numpy()
    votes = np.stack([np.where(truth.voxel_truth(k, bbox, field.resolution), 1.0, -1.0)
                      for k in range(1, len(truth.object_names) + 1)]).astype(np.float32)
    np.savez(folder / "mask_grid.npz", votes=votes, counts=np.ones_like(votes), names=np.array(truth.object_names),
             colors=truth.colors, bbox=bbox, space="world", scene_hash=scene.content_hash(),
             field_hash=file_sha256(folder / "field.pt"), version=1)
    return scene, field, truth, folder


def _export(folder, *args, grid=None):
    return main.main(["export", str(grid or folder / "mask_grid.npz"), "--field", str(folder / "field.pt"),
                      "--scene", f"builtin-{SIZE}", *map(str, args)])


def _analytic(shape) -> tuple[float, np.ndarray]:
    """Exact volume and bounds [2, 3] of a primitive of the built-in scene."""
    kind = type(shape).__name__
    if kind == "Sphere":
        c = np.array(shape.center)
        return 4 / 3 * math.pi * shape.radius ** 3, np.stack([c - shape.radius, c + shape.radius])
    if kind == "Box":
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * shape.half_size
        c, s = math.cos(math.radians(shape.yaw_deg)), math.sin(math.radians(shape.yaw_deg))
        world = corners @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + shape.center
        return 8 * float(np.prod(shape.half_size)), np.stack([world.min(0), world.max(0)])
    r, (x, y) = shape.radius, shape.center_xy
    if kind == "Cylinder":
        return math.pi * r * r * (shape.z1 - shape.z0), np.array([[x - r, y - r, shape.z0], [x + r, y + r, shape.z1]])
    top = shape.z0 + shape.height
    return math.pi * r * r * shape.height / 3, np.array([[x - r, y - r, shape.z0], [x + r, y + r, top]])


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_mesh_volume_and_bounds_match_the_primitive(setup, tmp_path, name):
    _, _, truth, folder = setup
    k = truth.object_names.index(name)
    volume, bounds = _analytic(br.OBJECTS[k].shape)
    for fmt, path in (("obj", tmp_path / f"{name}.obj"), ("mesh-ply", tmp_path / f"{name}.ply")):
        assert _export(folder, "--format", fmt, "--object", name, "--up", "z", "--out", path) == 0   # world axes
        mesh = trimesh.load(path, process=False)
        assert mesh.is_watertight
        # the 400-iteration 64 px field is soft (bench/bench_export.py measures the default field)
        assert mesh.volume == pytest.approx(volume, rel=0.25)
        extent = bounds[1] - bounds[0]
        slack = np.tile(0.1 * extent, (2, 1))
        slack[0, 2] += 2 * setup[1].voxel_size          # the contact band over the ground is left out
        assert np.all(np.abs(mesh.bounds - bounds) < slack)
        color = np.median(mesh.visual.vertex_colors[:, :3], axis=0)                # lit albedo
        assert np.argmax(color) == np.argmax(truth.colors[k])


def test_point_cloud_and_grid(setup, tmp_path):
    _, field, truth, folder = setup
    assert _export(folder, "--format", "ply", "--object", "sphere", "--points", 3000, "--out", tmp_path / "s.ply") == 0
    vertex = plyfile.PlyData.read(tmp_path / "s.ply")["vertex"]
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    distance = np.linalg.norm(points - br.OBJECTS[0].shape.center, axis=1) - br.OBJECTS[0].shape.radius
    assert len(points) == 3000 and np.abs(distance).mean() < field.voxel_size
    assert _export(folder, "--format", "npz", "--out", tmp_path / "all.npz") == 0
    grid = np.load(tmp_path / "all.npz")
    assert tuple(grid["names"]) == truth.object_names and tuple(grid["resolution"]) == field.resolution


def test_removed_render_has_no_sphere_left(setup, tmp_path):
    scene, _, truth, folder = setup
    views = [1, 20]
    path = [{"K": scene.K[i].tolist(), "T_world_camera": scene.T_world_camera[i].tolist(), "H": SIZE, "W": SIZE,
             "name": scene.view_names[i]} for i in views]
    (tmp_path / "path.json").write_text(json.dumps(path))
    assert _export(folder, "--format", "removed-renders", "--object", "sphere", "--path", tmp_path / "path.json",
                   "--out", tmp_path / "removed", "--video", tmp_path / "removed.mp4") == 0
    for i in views:
        image = np.asarray(Image.open(tmp_path / "removed" / f"{scene.view_names[i]}.png")).astype(int)
        red = (image[..., 0] > 110) & (image[..., 0] > 2 * image[..., 1]) & (image[..., 0] > 2 * image[..., 2])
        where = truth.instance_masks[i] == 1
        assert where.sum() > 50 and red[where].mean() < 0.02
    assert (tmp_path / "removed.mp4").stat().st_size > 0


def test_refusals_are_one_line(setup, tmp_path, capsys):
    folder = setup[3]
    assert _export(folder, "--format", "obj", "--object", "teapot", "--out", tmp_path / "t.obj") == 2
    grid = dict(np.load(folder / "mask_grid.npz"))
    grid["field_hash"] = np.array("0123456789abcdef")
    np.savez(tmp_path / "other.npz", **grid)
    assert _export(folder, "--format", "obj", "--object", "box", "--out", tmp_path / "b.obj",
                   grid=tmp_path / "other.npz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "choose one of sphere, box, cylinder, cone, block" in err[0]
    assert "segmented with another field" in err[1]


def test_masks_match_segment(setup, tmp_path):
    """One real `segment` run (gt segmenter): export's masks of its grid equal segment's masks."""
    scene, _, _, folder = setup
    out = tmp_path / "seg"
    assert main.main(["segment", f"builtin-{SIZE}", "--field", str(folder / "field.pt"), "--view", "view_001",
                      "--point", "20,34", "--segmenter", "gt", "--out", str(out), "--name", "sphere"]) == 0
    assert _export(folder, "--format", "masks", "--out", tmp_path / "masks", grid=out / "mask_grid.npz") == 0
    for name in scene.view_names:
        ours = np.asarray(Image.open(tmp_path / "masks" / f"{name}.png"))
        theirs = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        assert (ours == theirs).all(), name
    assert _export(folder, "--format", "obj", "--out", tmp_path / "seg.obj", grid=out / "mask_grid.npz") == 0
    volume = trimesh.load(tmp_path / "seg.obj", process=False).volume
    assert volume == pytest.approx(_analytic(br.OBJECTS[0].shape)[0], rel=0.25)
