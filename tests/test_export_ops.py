"""Pure export math on synthetic grids: iso level, marching cubes in world space, smoothing, encodings."""

import io
import math

import numpy as np
import plyfile
import pytest
import trimesh

from systems.export import formats, ops

BBOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], np.float32)
RES = (41, 41, 41)                        # spacing 0.05
SPACING = 0.05
LEVEL = math.log(2.0) / (0.5 * SPACING)  # alpha 0.5 over a half-voxel step (= 27.7)


def _centres() -> np.ndarray:
    """World centres [Z, Y, X, 3] (x, y, z) of the test grid."""
    axis = np.linspace(-1.0, 1.0, RES[0])
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([x, y, z], axis=-1)


def _sphere_density(center, radius) -> np.ndarray:
    """A trained-field-like solid: density 2 LEVEL inside, LEVEL at the radius, 0 a voxel further."""
    d = np.linalg.norm(_centres() - np.asarray(center), axis=-1)
    return (2.0 * LEVEL / (1.0 + np.exp((d - radius) / (0.25 * SPACING)))).astype(np.float32)


def test_iso_density_inverts_alpha_over_one_step():
    # alpha = 1 - exp(-sigma * step): alpha 0.5 over a step of 0.1 needs sigma = ln 2 / 0.1 = 6.93
    assert ops.iso_density(0.5, 0.1) == pytest.approx(math.log(2.0) / 0.1)
    with pytest.raises(ValueError):
        ops.iso_density(1.0, 0.1)


def test_marching_cubes_world_places_a_sphere_in_world_coordinates():
    density = _sphere_density((0.2, -0.1, 0.3), 0.4)
    vertices, faces = ops.marching_cubes_world(density, LEVEL, BBOX)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight and mesh.volume > 0             # closed, outward faces
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * 0.4 ** 3, rel=0.03)
    assert np.allclose(mesh.bounds.mean(0), (0.2, -0.1, 0.3), atol=0.01)


def test_objects_touching_the_box_are_closed_by_the_padding():
    density = _sphere_density((0.0, 0.0, -1.0), 0.5)          # cut in half by the bottom face
    vertices, faces = ops.marching_cubes_world(density, LEVEL, BBOX)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(2.0 / 3.0 * math.pi * 0.5 ** 3, rel=0.05)
    assert mesh.bounds[0, 2] == pytest.approx(-1.0, abs=1e-5)


def test_object_mesh_keeps_only_the_masked_object_and_colours_it():
    density = _sphere_density((-0.5, 0.0, 0.0), 0.3) + _sphere_density((0.5, 0.0, 0.0), 0.3)
    rgb = np.zeros(RES + (3,), np.float32)
    rgb[..., 0] = _centres()[..., 0] < 0                       # left sphere red, right one black
    mask = np.linalg.norm(_centres() - (-0.5, 0.0, 0.0), axis=-1) <= 0.3
    mesh = ops.object_mesh(density, rgb, mask, BBOX, raw_level=LEVEL, empty_raw=0.0)
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.is_watertight and len(tm.split(only_watertight=True)) == 1
    assert tm.bounds[1, 0] < 0.0                               # nothing of the right sphere
    assert tm.volume == pytest.approx(4.0 / 3.0 * math.pi * 0.3 ** 3, rel=0.1)  # the cut shaves a little
    assert (mesh.colors[:, 0] > 200).all() and (mesh.colors[:, 1:] == 0).all()


def test_empty_mask_gives_an_empty_mesh():
    density = _sphere_density((0.0, 0.0, 0.0), 0.4)
    mesh = ops.object_mesh(density, np.zeros(RES + (3,), np.float32), np.zeros(RES, bool), BBOX,
                           raw_level=1.0, empty_raw=0.0)
    assert mesh.vertices.shape == (0, 3) and mesh.faces.shape == (0, 3)


def test_taubin_smoothing_removes_noise_and_keeps_the_volume():
    rng = np.random.default_rng(0)
    density = _sphere_density((0.0, 0.0, 0.0), 0.5) * rng.uniform(0.7, 1.3, RES).astype(np.float32)
    vertices, faces = ops.marching_cubes_world(density, LEVEL, BBOX)
    smooth = ops.taubin_smooth(vertices, faces, 20)
    radii = lambda v: np.linalg.norm(v, axis=1)
    assert radii(smooth).std() < 0.6 * radii(vertices).std()
    before = trimesh.Trimesh(vertices, faces, process=False).volume
    assert trimesh.Trimesh(smooth, faces, process=False).volume == pytest.approx(before, rel=0.03)


def test_surface_samples_lie_on_the_mesh_with_its_colours():
    density = _sphere_density((0.0, 0.0, 0.0), 0.5)
    rgb = np.broadcast_to(np.array([0.0, 1.0, 0.0], np.float32), RES + (3,)).copy()
    solid = np.linalg.norm(_centres(), axis=-1) <= 0.5                  # the sphere's solid mask
    mesh = ops.object_mesh(density, rgb, solid, BBOX, raw_level=LEVEL, empty_raw=0.0)
    points, colors = ops.sample_surface(mesh, 2000)
    assert points.shape == (2000, 3) and colors.shape == (2000, 3)
    assert np.abs(np.linalg.norm(points, axis=1) - 0.5).max() < SPACING
    assert (colors == (0, 255, 0)).all()


def _small_mesh():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    return vertices, faces, colors


def test_ply_points_parse_with_plyfile():
    points = np.array([[0.5, -1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)
    colors = np.array([[1, 2, 3], [250, 251, 252]], np.uint8)
    data = plyfile.PlyData.read(io.BytesIO(formats.ply_points(points, colors)))
    vertex = data["vertex"]
    assert data.text is False and data.byte_order == "<"
    assert np.allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), points)
    assert (np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1) == colors).all()
    assert vertex["x"].dtype == np.float32 and vertex["red"].dtype == np.uint8


def test_ply_and_obj_meshes_parse_with_trimesh():
    vertices, faces, colors = _small_mesh()
    for data, kind in ((formats.ply_mesh(vertices, faces, colors), "ply"),
                       (formats.obj_mesh(vertices, faces, colors), "obj")):
        mesh = trimesh.load(io.BytesIO(data), file_type=kind, process=False)
        assert np.allclose(mesh.vertices, vertices, atol=1e-6)
        assert (mesh.faces == faces).all()
        assert mesh.is_watertight and mesh.volume == pytest.approx(1.0 / 6.0)
        assert np.abs(mesh.visual.vertex_colors[:, :3].astype(int) - colors).max() <= 1


def test_object_grid_layout():
    votes = np.zeros((2, 3, 4, 5), np.float32)
    votes[1, 1, 2, 3] = 0.7
    solid = votes > 0.5
    solid[1, 0, 2, 3] = True                                            # the solid reaches below the surface
    data = formats.object_grid_npz(mask=solid, votes=votes, names=["cube", "ball"], colors=np.zeros((2, 3)),
                                   bbox=[[0, 0, 0], [4, 3, 2]], space="ndc", ndc=(1.5, (2.0, 3.0)),
                                   up=np.array([0.0, -1.0, 0.0]), scene_hash="s", field_hash="f")
    grid = np.load(io.BytesIO(data))
    assert grid["mask"].dtype == np.uint8 and grid["mask"].sum() == 2 and grid["mask"][1, 0, 2, 3] == 1
    assert list(grid["names"]) == ["cube", "ball"] and list(grid["resolution"]) == [3, 4, 5]
    assert np.allclose(grid["spacing"], 1.0) and str(grid["field_hash"]) == "f" and int(grid["version"]) == 2
    assert float(grid["ndc_near"]) == 1.5 and grid["ndc_scale"].tolist() == [2.0, 3.0]
    assert grid["up"].tolist() == [0.0, -1.0, 0.0] and str(grid["space"]) == "ndc"
