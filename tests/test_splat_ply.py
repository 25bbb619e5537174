"""3DGS point_cloud.ply files: the round trip keeps every property bit for bit, errors name the property."""

import json

import numpy as np
import plyfile
import pytest
import torch

from engine.splats.cameras import read_cameras_json
from engine.splats.cloud import SplatError, vertex_table
from engine.splats.plyio import read_splats, write_splats


def inria_table(n=50, degree=3, seed=0):
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    return vertex_table(rng.normal(size=(n, 3)).astype(np.float32),
                        rng.normal(size=(n, (degree + 1) ** 2, 3)).astype(np.float32),
                        rng.uniform(0.01, 0.99, n).astype(np.float32),
                        np.exp(rng.uniform(-5, -1, (n, 3))).astype(np.float32), quats)


def write_raw(path, table, **options):
    plyfile.PlyData([plyfile.PlyElement.describe(table, "vertex")], **options).write(str(path))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_load_save_load_keeps_every_property_bit_for_bit(tmp_path, degree):
    table = inria_table(degree=degree)
    write_raw(tmp_path / "in.ply", table, text=False, byte_order="<")
    cloud = read_splats(tmp_path / "in.ply")
    assert len(cloud) == 50 and cloud.sh_degree == degree
    write_splats(tmp_path / "out.ply", cloud)
    again = plyfile.PlyData.read(str(tmp_path / "out.ply"))["vertex"].data
    assert again.dtype == table.dtype                              # names, order, dtypes
    assert again.tobytes() == table.tobytes()
    assert read_splats(tmp_path / "out.ply").vertex.tobytes() == table.tobytes()


def test_activations_follow_the_inria_layout(tmp_path):
    table = inria_table(degree=2)
    table["f_rest_0"][0], table["f_rest_8"][0] = 0.25, -0.75      # red band 1, green band 1 (8 per channel)
    write_raw(tmp_path / "in.ply", table, text=False, byte_order="<")
    cloud = read_splats(tmp_path / "in.ply")
    assert float(cloud.sh[0, 1, 0]) == 0.25 and float(cloud.sh[0, 1, 1]) == -0.75
    assert torch.allclose(cloud.opacity, torch.sigmoid(torch.from_numpy(table["opacity"])))
    assert torch.allclose(cloud.scales[:, 2], torch.exp(torch.from_numpy(table["scale_2"])))
    assert torch.allclose(cloud.quats.norm(dim=1), torch.ones(50))
    assert float(cloud.sh[0, 0, 2]) == float(table["f_dc_2"][0])


def test_big_endian_and_ascii_files_read_the_same_values(tmp_path):
    table = inria_table(n=7, degree=1)
    write_raw(tmp_path / "le.ply", table, text=False, byte_order="<")
    write_raw(tmp_path / "be.ply", table.astype(table.dtype.newbyteorder(">")), text=False, byte_order=">")
    write_raw(tmp_path / "ascii.ply", table, text=True)
    le = read_splats(tmp_path / "le.ply")
    for name in ("be.ply", "ascii.ply"):
        other = read_splats(tmp_path / name)
        assert torch.equal(other.means, le.means) and torch.equal(other.sh, le.sh)
    write_splats(tmp_path / "out.ply", read_splats(tmp_path / "be.ply"))
    assert (tmp_path / "out.ply").read_bytes().split(b"end_header")[0].count(b"binary_little_endian") == 1


def test_subset_keeps_the_properties_and_the_chosen_gaussians(tmp_path):
    table = inria_table()
    write_raw(tmp_path / "in.ply", table, text=False, byte_order="<")
    cloud = read_splats(tmp_path / "in.ply")
    keep = np.zeros(50, bool)
    keep[[3, 10, 44]] = True
    part = cloud.subset(keep)
    write_splats(tmp_path / "part.ply", part)
    read = plyfile.PlyData.read(str(tmp_path / "part.ply"))["vertex"].data
    assert read.dtype == table.dtype and read.tobytes() == table[keep].tobytes()
    assert torch.equal(part.means, cloud.means[[3, 10, 44]])


def drop(table, name):
    """A packed copy of `table` without property `name`."""
    names = [n for n in table.dtype.names if n != name]
    out = np.zeros(len(table), [(n, table.dtype[n]) for n in names])
    for n in names:
        out[n] = table[n]
    return out


@pytest.mark.parametrize("name", ["x", "f_dc_1", "opacity", "scale_1", "rot_3"])
def test_a_missing_property_is_named(tmp_path, name):
    write_raw(tmp_path / "in.ply", drop(inria_table(), name), text=False)
    with pytest.raises(SplatError, match=f"property '{name}' is missing"):
        read_splats(tmp_path / "in.ply")


def test_malformed_properties_are_named(tmp_path):
    table = inria_table()
    ints = table.astype([(n, "<i4" if n == "opacity" else "<f4") for n in table.dtype.names])
    write_raw(tmp_path / "int.ply", ints, text=False)
    with pytest.raises(SplatError, match="property 'opacity' is malformed: int32"):
        read_splats(tmp_path / "int.ply")
    table["scale_2"][4] = np.nan
    write_raw(tmp_path / "nan.ply", table, text=False)
    with pytest.raises(SplatError, match="property 'scale_2' is malformed: 1 values are not finite .*Gaussian 4"):
        read_splats(tmp_path / "nan.ply")
    table = inria_table()
    for i in range(4):
        table[f"rot_{i}"][2] = 0.0
    write_raw(tmp_path / "quat.ply", table, text=False)
    with pytest.raises(SplatError, match="rot_0..3' is malformed: 1 zero quaternions"):
        read_splats(tmp_path / "quat.ply")
    write_raw(tmp_path / "rest.ply", drop(inria_table(), "f_rest_44"), text=False)
    with pytest.raises(SplatError, match="property f_rest_\\* malformed: found 44"):
        read_splats(tmp_path / "rest.ply")


def test_files_that_are_not_3dgs_plys_say_what_they_are(tmp_path):
    (tmp_path / "text.ply").write_text("hello")
    with pytest.raises(SplatError, match="not a readable PLY"):
        read_splats(tmp_path / "text.ply")
    with pytest.raises(SplatError, match="does not exist"):
        read_splats(tmp_path / "none.ply")
    packed = np.zeros(3, [("packed_position", "<u4"), ("packed_color", "<u4")])
    write_raw(tmp_path / "compressed.ply", packed, text=False)
    with pytest.raises(SplatError, match="property 'x' is missing: this is a compressed splat PLY"):
        read_splats(tmp_path / "compressed.ply")
    faces = plyfile.PlyElement.describe(np.zeros(2, [("a", "<f4")]), "face")
    plyfile.PlyData([faces]).write(str(tmp_path / "faces.ply"))
    with pytest.raises(SplatError, match="no 'vertex' element"):
        read_splats(tmp_path / "faces.ply")


def test_cameras_json_gives_opencv_poses_and_centred_intrinsics(tmp_path):
    rotation = [[1, 0, 0], [0, -1, 0], [0, 0, -1]]                   # camera looking down -Z
    entries = [{"id": 0, "img_name": "a", "width": 200, "height": 100, "position": [1, 2, 3],
                "rotation": rotation, "fx": 150.0, "fy": 140.0},
               {"id": 1, "img_name": "a", "width": 400, "height": 200, "position": [0, 0, 5],
                "rotation": rotation, "fx": 300.0, "fy": 280.0}]
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    cams = read_cameras_json(tmp_path / "cameras.json", downscale=2)
    assert (cams.H, cams.W) == (50, 100) and cams.names == ("a", "a_1")
    assert cams.K[0].tolist() == [[75.0, 0, 50.0], [0, 70.0, 25.0], [0, 0, 1]]
    assert np.allclose(cams.K[1], cams.K[0])                          # rescaled to the common size
    assert cams.T_world_camera[0, :3, 3].tolist() == [1, 2, 3]
    assert cams.T_world_camera[0, :3, :3].tolist() == rotation
    del entries[1]["fx"]
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    with pytest.raises(SplatError, match="camera 1 has a missing or malformed key .*'fx'"):
        read_cameras_json(tmp_path / "cameras.json")
