"""Scene loaders on the shared real scenes, on tiny scenes written here, and their error paths."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from engine.scenes import SceneError, load_scene
from engine.scenes import builtin_render as br

DATA = Path(os.environ.get("SA3D_SHARED_DATA")
            or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared scenes not found at {DATA}")


@needs_data
def test_llff_fern_downscale_8():
    scene = load_scene(str(DATA / "llff" / "fern"), downscale=8)
    assert scene.images.shape == (20, 378, 504, 3) and scene.kind == "llff"
    assert scene.test_ids == (0, 8, 16) and len(scene.train_ids) == 17
    assert scene.forward_facing and scene.near < 1.0 < scene.far
    np.testing.assert_allclose(scene.K[:, 0, 0], 3260.5263 / 8, rtol=1e-3)  # focal / 8
    assert (scene.T_world_camera[:, 2, 2] > 0.95).all()  # recentred: every camera looks along +Z
    R = scene.T_world_camera[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-5)
    assert np.linalg.det(R).min() > 0.99
    # the bbox holds the centre of every frustum between near and far
    for depth in (scene.near, scene.far):
        points = scene.T_world_camera[:, :3, 2] * depth + scene.T_world_camera[:, :3, 3]
        assert (points >= scene.bbox[0] - 1e-5).all() and (points <= scene.bbox[1] + 1e-5).all()
    assert load_scene(str(DATA / "llff" / "fern")).images.shape == scene.images.shape  # default


@needs_data
def test_llff_flower_and_missing_folder_message():
    scene = load_scene(str(DATA / "llff" / "flower"), downscale=8)
    assert scene.images.shape == (34, 378, 504, 3) and scene.test_ids == (0, 8, 16, 24, 32)
    with pytest.raises(SceneError, match=r"no images_4/.*images_8/ \(--downscale 8\)"):
        load_scene(str(DATA / "llff" / "flower"), downscale=4)


@needs_data
def test_blender_lego_skips_missing_test_images():
    with pytest.warns(UserWarning, match=r"skipping 187 of 200 .*test/r_1\b"):
        scene = load_scene(str(DATA / "blender" / "lego"), downscale=8)
    assert scene.images.shape == (113, 100, 100, 3)
    assert len(scene.train_ids) == 100 and len(scene.test_ids) == 13
    assert scene.view_names[scene.test_ids[1]] == "test_r_16"
    assert scene.background == (1.0, 1.0, 1.0)
    assert (scene.images[:, 0, 0] == 255).all()  # transparent corners composited on white
    np.testing.assert_allclose(scene.K[0, 0, 0], 0.5 * 100 / np.tan(0.5 * 0.6911112), rtol=1e-5)
    centres = scene.T_world_camera[:, :3, 3]
    forward = scene.T_world_camera[:, :3, 2]                  # OpenCV +Z of every camera
    to_origin = -centres / np.linalg.norm(centres, axis=1, keepdims=True)
    assert ((forward * to_origin).sum(1) > 0.99).all()
    assert (scene.T_world_camera[:, 2, 1] < 0).mean() > 0.9   # image down points world down
    assert (scene.bbox[0] < -1).all() and (scene.bbox[1] > 1).all()


def _write_images(folder: Path, names: list[str], size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / name)


def test_colmap_text_round_trip(tmp_path):
    size, K = 32, br.intrinsics(32)
    poses = br.camera_poses()[:10]                          # [10, 4, 4] T_world_camera
    names = [f"img_{i:02d}.png" for i in range(len(poses))]
    _write_images(tmp_path / "images", names, size)
    sparse = tmp_path / "sparse" / "0"
    sparse.mkdir(parents=True)
    (sparse / "cameras.txt").write_text(
        f"# id model W H params\n1 PINHOLE {size} {size} {K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}\n")
    lines = ["# header"]
    for i in reversed(range(len(poses))):                   # file order differs from name order
        T_camera_world = np.linalg.inv(poses[i])
        x, y, z, w = Rotation.from_matrix(T_camera_world[:3, :3]).as_quat()
        t = T_camera_world[:3, 3]
        lines += [f"{i + 1} {w} {x} {y} {z} {t[0]} {t[1]} {t[2]} 1 {names[i]}", ""]
    (sparse / "images.txt").write_text("\n".join(lines) + "\n")
    corners = np.random.default_rng(1).uniform(br.BBOX[0], br.BBOX[1], (50, 3))
    (sparse / "points3D.txt").write_text(
        "".join(f"{j} {p[0]} {p[1]} {p[2]} 0 0 0 0.1\n" for j, p in enumerate(corners)))
    scene = load_scene(str(tmp_path))
    assert scene.kind == "colmap" and scene.view_names[:2] == ("img_00", "img_01")
    np.testing.assert_allclose(scene.T_world_camera, poses, atol=1e-5)
    np.testing.assert_allclose(scene.K[0], K, rtol=1e-6)
    assert scene.test_ids == (0, 8)
    margin = 0.25 * (br.BBOX[1] - br.BBOX[0])                # the points' box plus 20% (region.py)
    assert (scene.bbox[0] >= br.BBOX[0] - margin).all() and (scene.bbox[1] <= br.BBOX[1] + margin).all()
    assert 0 < scene.near < scene.far
    half = load_scene(str(tmp_path), downscale=2)
    assert half.images.shape == (10, 16, 16, 3)
    np.testing.assert_allclose(half.K[0], np.diag([0.5, 0.5, 1]) @ K, rtol=1e-6)
    (sparse / "cameras.txt").write_text(f"1 OPENCV {size} {size} 40 40 16 16 0.1 0 0 0\n")
    with pytest.raises(SceneError, match="undistort"):
        load_scene(str(tmp_path))


def test_nerfstudio_per_frame_intrinsics_and_missing_extension(tmp_path):
    _write_images(tmp_path / "images", ["a.png", "b.jpg"], 16)
    frames = [{"file_path": "images/a", "fl_x": 20.0, "fl_y": 22.0, "cx": 8, "cy": 7, "w": 16,
               "h": 16, "transform_matrix": np.eye(4).tolist()},
              {"file_path": "images/b", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 30.0, "frames": frames}))
    scene = load_scene(str(tmp_path))
    np.testing.assert_allclose(scene.K[0], [[20, 0, 8], [0, 22, 7], [0, 0, 1]])
    np.testing.assert_allclose(scene.K[1], [[30, 0, 8], [0, 30, 8], [0, 0, 1]])
    np.testing.assert_allclose(scene.T_world_camera[0], np.diag([1, -1, -1, 1]))  # GL -> CV
    assert scene.view_names == ("a", "b") and scene.background is None


def test_error_paths(tmp_path):
    with pytest.raises(SceneError, match="does not exist"):
        load_scene(str(tmp_path / "nope"))
    with pytest.raises(SceneError, match="no scene found.*poses_bounds"):
        load_scene(str(tmp_path))
    (tmp_path / "transforms.json").write_text('{\n "frames": [\n  {"file_path": x}\n ]\n}')
    with pytest.raises(SceneError, match=r"transforms.json:3: malformed JSON"):
        load_scene(str(tmp_path))
    frame = {"file_path": "broken.png", "transform_matrix": np.eye(4).tolist()}
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 9, "frames": [frame]}))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SceneError, match="cannot read image.*broken.png"):
        load_scene(str(tmp_path))
    (tmp_path / "broken.png").unlink()
    with pytest.raises(SceneError, match="none of the 1 images"):
        load_scene(str(tmp_path))


def test_llff_error_paths(tmp_path):
    np.save(tmp_path / "poses_bounds.npy", np.zeros((3, 17)))
    _write_images(tmp_path / "images_4", ["0.png", "1.png"], 8)
    with pytest.raises(SceneError, match=r"no images_8/ .*images_4/"):
        load_scene(str(tmp_path), downscale=8)
    with pytest.raises(SceneError, match="2 images but .* 3 poses"):
        load_scene(str(tmp_path))
    with pytest.raises(SceneError, match="positive"):
        load_scene(str(tmp_path), downscale=0)
    shutil.rmtree(tmp_path / "images_4")
    with pytest.raises(SceneError, match="no images/ or images_N/"):
        load_scene(str(tmp_path))
