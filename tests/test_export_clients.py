"""Exports read back by the tools people open them in (trimesh, plyfile, MeshLab's pymeshlab and Open3D
where installed, Pillow),
through `main.py export` on the built-in scene (64 px) with its exact-geometry field.

The mask grid holds what SA3D gives: each object's visible surface (an open shell: no voxel of its
base, which no camera sees). The exports must still be solid objects, upright in OBJ's Y-up
convention, one piece each, with the colours and frame delays they were written with, and
readable by other users (mode 0644 under umask 022).
"""

import math
import os
import stat

import numpy as np
import plyfile
import pytest
import trimesh
from PIL import Image
from scipy import ndimage

import main
from engine.scenes import builtin_render as br

SIZE = 64


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(scene, truth, field, folder with field.pt and mask_grid.npz of every object's visible shell)."""
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import exact_builtin_field
    from engine.io import file_sha256
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.segmentation.grid_file import MaskGridFile, write_mask_grid

    scene, truth = builtin_scene(SIZE), builtin_truth(SIZE)
    field = exact_builtin_field(scene, truth, SIZE)
    folder = tmp_path_factory.mktemp("clients")
    save_field(folder / "field.pt", field, scene_hash=scene.content_hash())
    bbox = field.bbox.numpy()
    shells = []
    for k in range(1, len(truth.object_names) + 1):
        solid = truth.voxel_truth(k, bbox, field.resolution)
        shell = solid & ~ndimage.binary_erosion(solid, iterations=2)
        lowest = np.flatnonzero(solid.any(axis=(1, 2))).min()
        shell[lowest:lowest + 2] &= ~solid[lowest:lowest + 2]           # the unseen base: no votes
        shells.append(np.where(shell, 1.0, -1.0))
    votes = np.stack(shells).astype(np.float32)
    write_mask_grid(folder / "mask_grid.npz", MaskGridFile(
        votes=votes, counts=np.ones_like(votes), names=truth.object_names, colors=truth.colors, bbox=bbox,
        space="world", scene_hash=scene.content_hash(), field_hash=file_sha256(folder / "field.pt"), path=folder))
    return scene, truth, field, folder


def _export(folder, *args) -> int:
    return main.main(["export", str(folder / "mask_grid.npz"), "--field", str(folder / "field.pt"),
                      "--scene", f"builtin-{SIZE}", *map(str, args)])


def _sphere_volume() -> float:
    return 4.0 / 3.0 * math.pi * br.OBJECTS[0].shape.radius ** 3


def test_npz_masks_are_solid_objects(setup, tmp_path):
    _, truth, field, folder = setup
    assert _export(folder, "--format", "npz", "--out", tmp_path / "all.npz") == 0
    with np.load(tmp_path / "all.npz") as data:
        mask, votes = data["mask"].astype(bool), data["votes"]
        assert data["up"].tolist() == [0.0, 0.0, 1.0] and str(data["space"]) == "world"
        assert tuple(data["resolution"]) == field.resolution and int(data["version"]) == 2
    for k, name in enumerate(truth.object_names):
        exact = truth.voxel_truth(k + 1, field.bbox.numpy(), field.resolution)
        iou = (mask[k] & exact).sum() / (mask[k] | exact).sum()
        shell_iou = ((votes[k] > 0) & exact).sum() / ((votes[k] > 0) | exact).sum()
        # 64 px: ~10 voxels across, and the 1.5-voxel contact band over the ground is left out
        assert iou >= 0.65 and iou > shell_iou + 0.2, (name, iou, shell_iou)
        assert ndimage.label(mask[k], np.ones((3, 3, 3)))[1] == 1, name                   # one piece
        assert not mask[k][:2].any(), name                             # nothing below the ground (z < 0)


def test_meshes_open_solid_upright_and_in_one_piece(setup, tmp_path):
    _, truth, _, folder = setup
    for name in truth.object_names:
        assert _export(folder, "--format", "obj", "--object", name, "--out", tmp_path / f"{name}.obj") == 0
        mesh = trimesh.load(tmp_path / f"{name}.obj", process=False)
        assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1, name
        # OBJ is Y-up: Blender's importer turns (x, y, z) into (x, -z, y); the object must stand on z = 0
        blender = mesh.vertices @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T
        lowest = 0.0 if name != "block" else 0.4                        # the block stands on the box
        assert blender[:, 2].min() == pytest.approx(lowest, abs=0.05), name         # less the contact band
    sphere = trimesh.load(tmp_path / "sphere.obj", process=False)
    assert sphere.volume == pytest.approx(_sphere_volume(), rel=0.05)
    with open(tmp_path / "sphere.obj") as f:
        assert "file (x, y, z) = world (x, z, -y)" in f.read(400)


def test_every_reader_sees_the_same_mesh_and_colours(setup, tmp_path):
    folder = setup[3]
    for fmt, name in (("obj", "c.obj"), ("mesh-ply", "c.ply"), ("ply", "p.ply")):
        assert _export(folder, "--format", fmt, "--object", "cylinder", "--points", 4000, "--out", tmp_path / name) == 0
    obj, ply = trimesh.load(tmp_path / "c.obj", process=False), plyfile.PlyData.read(tmp_path / "c.ply")
    assert len(obj.vertices) == ply["vertex"].count and len(obj.faces) == ply["face"].count
    turned = np.stack([ply["vertex"]["x"], ply["vertex"]["z"], -ply["vertex"]["y"]], 1)   # PLY is Z-up
    assert np.abs(obj.vertices - turned).max() < 1e-5
    ply_colors = np.stack([ply["vertex"][c] for c in ("red", "green", "blue")], 1)
    rows = [line.split() for line in open(tmp_path / "c.obj") if line.startswith("v ")]
    obj_colors = np.array([[float(v) for v in row[4:7]] for row in rows])
    assert np.array_equal(np.floor(obj_colors * 255.0).astype(np.uint8), ply_colors)     # MeshLab truncates
    assert np.array_equal(obj.visual.vertex_colors[:, :3], ply_colors)
    points = plyfile.PlyData.read(tmp_path / "p.ply")["vertex"]
    assert points.count == 4000
    xyz = np.stack([points["x"], points["y"], points["z"]], 1)
    shape = br.OBJECTS[2].shape
    radial = np.linalg.norm(xyz[:, :2] - shape.center_xy, axis=1)
    on_side = np.abs(radial - shape.radius) < 0.04                            # voxels of 0.025
    on_top = (np.abs(xyz[:, 2] - shape.z1) < 0.04) & (radial < shape.radius + 0.04)
    assert (on_side | on_top).mean() > 0.99                     # the visible surface, no inside walls
    assert ((xyz[:, 2] < 0.04) & (radial < shape.radius - 0.04)).mean() < 0.005   # nor the unseen base


def test_open3d_reads_them_where_installed(setup, tmp_path):
    o3d = pytest.importorskip("open3d")
    folder = setup[3]
    assert _export(folder, "--format", "mesh-ply", "--object", "sphere", "--out", tmp_path / "s.ply") == 0
    assert _export(folder, "--format", "ply", "--object", "sphere", "--points", 500, "--out", tmp_path / "p.ply") == 0
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / "s.ply"))
    assert mesh.is_watertight() and mesh.get_volume() == pytest.approx(_sphere_volume(), rel=0.05)
    assert len(o3d.io.read_point_cloud(str(tmp_path / "p.ply")).points) == 500


def test_meshlab_opens_them_solid_upright_in_one_piece_with_their_colours(setup, tmp_path):
    pymeshlab = pytest.importorskip("pymeshlab", reason="MeshLab's Python module (pip install pymeshlab)")
    folder = setup[3]
    for fmt, name in (("obj", "s.obj"), ("mesh-ply", "s.ply"), ("ply", "p.ply")):
        assert _export(folder, "--format", fmt, "--object", "sphere", "--points", 500, "--out", tmp_path / name) == 0
    meshes = {}
    for name in ("s.obj", "s.ply", "p.ply"):
        meshes[name] = pymeshlab.MeshSet()
        meshes[name].load_new_mesh(str(tmp_path / name))
    obj, ply = meshes["s.obj"], meshes["s.ply"]
    topology = obj.get_topological_measures()
    assert topology["connected_components_number"] == 1 and topology["boundary_edges"] == 0
    assert topology["is_mesh_two_manifold"]
    assert obj.get_geometric_measures()["mesh_volume"] == pytest.approx(_sphere_volume(), rel=0.05)
    # MeshLab shows Y up and keeps the file's axes: the sphere rests on y = 0 (less the contact band)
    assert obj.current_mesh().bounding_box().min()[1] == pytest.approx(0.0, abs=0.05)
    assert ply.current_mesh().bounding_box().min()[2] == pytest.approx(0.0, abs=0.05)    # PLY: world, Z-up
    a, b = obj.current_mesh(), ply.current_mesh()
    assert a.has_vertex_color() and a.vertex_number() == b.vertex_number() and a.face_number() == b.face_number()
    assert np.array_equal(np.round(a.vertex_color_matrix() * 255), np.round(b.vertex_color_matrix() * 255))
    assert meshes["p.ply"].current_mesh().vertex_number() == 500 and meshes["p.ply"].current_mesh().face_number() == 0


def test_removed_renders_keep_the_ground_and_the_files_are_readable(setup, tmp_path, capsys):
    scene, truth, _, folder = setup
    old = os.umask(0o022)
    try:
        assert _export(folder, "--format", "removed-renders", "--object", "cylinder", "--out", tmp_path / "removed",
                       "--video", tmp_path / "removed.gif", "--fps", 10) == 0
        assert _export(folder, "--format", "obj", "--object", "cone", "--out", tmp_path / "cone.obj") == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert f"{len(scene)} PNG files under {tmp_path / 'removed'}, {tmp_path / 'removed.gif'}" in out
    with Image.open(tmp_path / "removed.gif") as gif:
        assert gif.n_frames == len(scene) and gif.info["duration"] == 100
    written = [tmp_path / "removed", tmp_path / "removed.gif", tmp_path / "cone.obj", *(tmp_path / "removed").iterdir()]
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in written}
    assert modes.pop("removed") == 0o755 and set(modes.values()) == {0o644}
    for view in scene.train_ids[:6]:
        image = np.asarray(Image.open(tmp_path / "removed" / f"{scene.view_names[view]}.png")).astype(int)
        ground = (truth.instance_masks[view] == 3) & _ground_behind(scene, view)   # the cylinder hid the ground
        if ground.sum() < 20:
            continue
        sky = np.abs(image - np.array(br.BACKGROUND) * 255).sum(-1) < 30
        green = (image[..., 1] > image[..., 0] + 40) & (image[..., 1] > image[..., 2] + 40)
        assert sky[ground].mean() < 0.05 and green[ground].mean() < 0.02, view      # ground, not a hole


def _ground_behind(scene, view) -> np.ndarray:
    """bool [H, W]: pixels of `view` whose ray meets the ground square."""
    H, W = scene.H, scene.W
    y, x = np.mgrid[0:H, 0:W] + 0.5
    K, T = scene.K[view].astype(np.float64), scene.T_world_camera[view].astype(np.float64)
    rays = np.stack([(x - K[0, 2]) / K[0, 0], (y - K[1, 2]) / K[1, 1], np.ones_like(x)], -1).reshape(-1, 3)
    t, _ = br.GROUND.intersect(np.tile(T[:3, 3], (H * W, 1)), rays @ T[:3, :3].T)
    return np.isfinite(t).reshape(H, W)
