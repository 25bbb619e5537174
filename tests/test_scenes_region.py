"""The scene region and the capture kind: a synthetic 360 capture whose box must hold the object,
forward-facing vs inward detection, COLMAP binary against its text export, nerfstudio's ply."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from engine.scenes import SceneError, load_scene
from engine.scenes.region import is_forward_facing, views_seeing_pixels, visual_region

DATA = Path(os.environ.get("SA3D_SHARED_DATA")
            or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared scenes not found at {DATA}")

# The object of the synthetic capture: an axis-aligned box off the world origin (world +z up).
OBJECT = np.array([[0.4, -0.5, 0.0], [1.0, 0.1, 0.9]])
H, W = 30, 40


def look_at(position, target) -> np.ndarray:
    """T_world_camera [4, 4] (OpenCV) at `position` looking at `target`, world +z up."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    T[:3, 3] = position
    return T


def ring_capture(views: int = 24):
    """K [3, 3] and T_world_camera [N, 4, 4] of cameras walking around OBJECT at two heights, each
    aimed a little off the object's centre and zoomed so that the object just fits its image."""
    rng = np.random.default_rng(3)
    centre = OBJECT.mean(0)
    poses = []
    for i in range(views):
        angle = 2 * np.pi * i / views
        position = centre + [3.0 * np.cos(angle), 3.0 * np.sin(angle), 1.2 if i % 2 else 0.3]
        poses.append(look_at(position, centre + rng.uniform(-0.1, 0.1, 3)))
    corners = np.array([[x, y, z] for x in OBJECT[:, 0] for y in OBJECT[:, 1] for z in OBJECT[:, 2]])
    focal = min(min(0.5 * W, 0.5 * H) / np.abs(_camera(corners, T)[:, :2] / _camera(corners, T)[:, 2:]).max()
                for T in poses) * 0.97
    K = np.array([[focal, 0, W / 2], [0, focal, H / 2], [0, 0, 1]])
    return K, np.stack(poses), corners


def _camera(points, T) -> np.ndarray:
    return (points - T[:3, 3]) @ T[:3, :3]


def test_synthetic_360_capture_box_holds_the_object_and_is_not_a_forward_facing_one():
    K, T, corners = ring_capture()
    for pose in T:                                       # the object is whole in every view ...
        cam = _camera(corners, pose) @ K.T
        x, y = cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]
        assert (x >= 0).all() and (x <= W).all() and (y >= 0).all() and (y <= H).all()
    assert not is_forward_facing(T)
    bbox = visual_region(np.repeat(K[None], len(T), 0), T, H, W, near=0.1)
    assert (bbox[0] <= OBJECT[0]).all() and (bbox[1] >= OBJECT[1]).all()   # ... so the box holds it
    assert np.prod(bbox[1] - bbox[0]) < 20 * np.prod(OBJECT[1] - OBJECT[0])  # and stays near it


def test_views_seeing_pixels_counts_the_cameras_that_see_each_pixels_point():
    # Camera A at the origin and B 1 to its right, both looking along +z (f = 20, 40 x 30 pixels):
    # at depth 2, A's column u shows x = (u + .5 - 20) / 10 and B sees x in [1 - 2, 1 + 2], so
    # A's columns 0-9 are seen by no other camera and columns 10-39 by B; A itself counts when listed.
    K = np.array([[20.0, 0, 20], [0, 20.0, 15], [0, 0, 1]])
    a, b = np.eye(4), np.eye(4)
    b[0, 3] = 1.0
    depth = np.full((30, 40), 2.0)
    counts = views_seeing_pixels(K, a, depth, K[None], b[None], near=0.1)
    assert counts.shape == (30, 40)
    assert (counts[:, :10] == 0).all() and (counts[:, 10:] == 1).all()
    both = views_seeing_pixels(K, a, depth, np.stack([K, K]), np.stack([a, b]), near=0.1)
    assert (both == counts + 1).all()
    assert (views_seeing_pixels(K, a, depth, K[None], b[None], near=2.5) == 0).all()   # before near


def test_forward_facing_detection():
    T = np.stack([look_at(np.array([x, 0.0, 0.0]), np.array([x * 0.5, 5.0, 0.2])) for x in np.linspace(-1, 1, 6)])
    assert is_forward_facing(T)
    assert not is_forward_facing(ring_capture(8)[1])


@needs_data
def test_llff_poses_of_a_360_capture_are_not_forward_facing():
    assert load_scene(str(DATA / "llff" / "fern")).forward_facing
    cape = load_scene(str(DATA / "real" / "gold-cape"))
    assert not cape.forward_facing and cape.bbox_source == "region the cameras see"


def _write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / name)


def _colmap_model(views: int = 12):
    """Cameras (id, model, params), images (id, qvec, tvec, camera id, name, 2D points) and
    points (id, xyz, rgb, error, track) of the ring capture, as COLMAP stores them."""
    K, T, _ = ring_capture(views)
    cameras = [(1, "PINHOLE", 1, [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]),
               (2, "SIMPLE_RADIAL", 2, [K[0, 0], K[0, 2], K[1, 2], 0.0])]
    images = []
    for i in reversed(range(views)):                    # file order differs from name order
        T_camera_world = np.linalg.inv(T[i])
        x, y, z, w = Rotation.from_matrix(T_camera_world[:3, :3]).as_quat()
        points2d = [(1.5 * j, 2.5, j) for j in range(i % 3)]
        images.append((i + 1, (w, x, y, z), T_camera_world[:3, 3], 1 + i % 2, f"v_{i:02d}.png", points2d))
    rng = np.random.default_rng(1)
    inside = rng.uniform(OBJECT[0], OBJECT[1], (40, 3))
    room = rng.uniform(-8, 8, (40, 3))                   # the walls around: outside the region
    points = [(j + 1, p, (10, 20, 30), 0.5, [(1, j), (2, j)]) for j, p in enumerate(np.concatenate([inside, room]))]
    return cameras, images, points, T


def _write_text(folder: Path, cameras, images, points) -> None:
    folder.mkdir(parents=True)
    (folder / "cameras.txt").write_text("# cameras\n" + "".join(
        f"{c} {model} {W} {H} {' '.join(map(str, map(float, params)))}\n" for c, model, _, params in cameras))
    lines = ["# images"]
    for i, q, t, cam, name, p2d in images:
        lines += [f"{i} {' '.join(map(str, map(float, q)))} {' '.join(map(str, map(float, t)))} {cam} {name}",
                  " ".join(f"{x} {y} {pid}" for x, y, pid in p2d)]
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "points3D.txt").write_text("".join(
        f"{pid} {' '.join(map(str, map(float, xyz)))} {' '.join(map(str, rgb))} {err} "
        f"{' '.join(f'{a} {b}' for a, b in track)}\n" for pid, xyz, rgb, err, track in points))


def _write_binary(folder: Path, cameras, images, points) -> None:
    folder.mkdir(parents=True)
    data = struct.pack("<Q", len(cameras))
    for c, _, model_id, params in cameras:
        data += struct.pack("<iiQQ", c, model_id, W, H) + struct.pack(f"<{len(params)}d", *params)
    (folder / "cameras.bin").write_bytes(data)
    data = struct.pack("<Q", len(images))
    for i, q, t, cam, name, p2d in images:
        data += struct.pack("<i7di", i, *q, *t, cam) + name.encode() + b"\0" + struct.pack("<Q", len(p2d))
        data += b"".join(struct.pack("<ddq", x, y, pid) for x, y, pid in p2d)
    (folder / "images.bin").write_bytes(data)
    data = struct.pack("<Q", len(points))
    for pid, xyz, rgb, err, track in points:
        data += struct.pack("<Q3d3BdQ", pid, *xyz, *rgb, err, len(track))
        data += b"".join(struct.pack("<ii", a, b) for a, b in track)
    (folder / "points3D.bin").write_bytes(data)


def test_colmap_binary_reads_as_its_text_export(tmp_path):
    cameras, images, points, T = _colmap_model()
    names = [image[4] for image in images]
    for kind, write in (("text", _write_text), ("binary", _write_binary)):
        _write_images(tmp_path / kind / "images", names)
        write(tmp_path / kind / "sparse" / "0", cameras, images, points)
    text, binary = load_scene(str(tmp_path / "text")), load_scene(str(tmp_path / "binary"))
    assert binary.view_names == text.view_names == tuple(sorted(n[:-4] for n in names))
    np.testing.assert_allclose(binary.T_world_camera, text.T_world_camera, atol=1e-6)
    np.testing.assert_allclose(binary.T_world_camera, T, atol=1e-5)
    np.testing.assert_allclose(binary.K, text.K)
    np.testing.assert_allclose(binary.bbox, text.bbox)
    assert binary.bbox_source == "3D points inside the region the cameras see"
    assert (binary.bbox[0] <= OBJECT[0]).all() and (binary.bbox[1] >= OBJECT[1]).all()
    assert (binary.bbox[1] - binary.bbox[0]).max() < 1.5        # the room's points are left out
    images_bin = tmp_path / "binary" / "sparse" / "0" / "images.bin"
    images_bin.write_bytes(images_bin.read_bytes()[:200])
    with pytest.raises(SceneError, match="ends early"):
        load_scene(str(tmp_path / "binary"))


def test_nerfstudio_ply_points_tighten_the_region(tmp_path):
    K, T, _ = ring_capture(10)
    names = [f"f{i}.png" for i in range(len(T))]
    _write_images(tmp_path / "images", names)
    opengl = T @ np.diag([1.0, -1.0, -1.0, 1.0])                 # OpenCV -> nerfstudio's OpenGL
    frames = [{"file_path": f"images/{n}", "transform_matrix": p.tolist()} for n, p in zip(names, opengl)]
    meta = {"fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "w": W, "h": H, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    seen = load_scene(str(tmp_path))
    assert seen.bbox_source == "region the cameras see" and seen.background is None
    rng = np.random.default_rng(2)
    xyz = np.concatenate([rng.uniform(OBJECT[0], OBJECT[1], (60, 3)), rng.uniform(-9, 9, (20, 3))])
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\nproperty double x\n"
              "property double y\nproperty double z\nproperty uchar red\nproperty uchar green\n"
              "property uchar blue\nend_header\n").encode()
    rows = np.zeros(len(xyz), [("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rows["x"], rows["y"], rows["z"] = xyz.T
    (tmp_path / "sparse_pc.ply").write_bytes(header + rows.tobytes())
    meta["ply_file_path"] = "sparse_pc.ply"
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    tight = load_scene(str(tmp_path))
    assert tight.bbox_source == "ply_file_path points inside the region the cameras see"
    assert (tight.bbox[0] <= OBJECT[0]).all() and (tight.bbox[1] >= OBJECT[1]).all()
    assert np.prod(tight.bbox[1] - tight.bbox[0]) < np.prod(seen.bbox[1] - seen.bbox[0])
    (tmp_path / "sparse_pc.ply").write_bytes(b"not a ply")
    with pytest.raises(SceneError, match="not a PLY"):
        load_scene(str(tmp_path))


def test_a_forward_facing_colmap_capture_is_moved_to_the_frame_ndc_needs(tmp_path):
    from engine.field.train import field_kind

    T = np.stack([look_at(np.array([x, 0.0, z]), np.array([0.3 * x, 6.0, 0.5]))
                  for x in np.linspace(-1, 1, 4) for z in (0.0, 0.4)])   # 8 views looking along +y
    K = np.array([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    cameras = [(1, "PINHOLE", 1, [K[0, 0], K[1, 1], K[0, 2], K[1, 2]])]
    images = []
    for i, pose in enumerate(T):
        T_camera_world = np.linalg.inv(pose)
        x, y, z, w = Rotation.from_matrix(T_camera_world[:3, :3]).as_quat()
        images.append((i + 1, (w, x, y, z), T_camera_world[:3, 3], 1, f"f_{i}.png", []))
    xyz = np.random.default_rng(4).uniform([-2, 3, -1], [2, 9, 2], (50, 3))      # 3..9 ahead
    points = [(j + 1, p, (0, 0, 0), 0.1, [(1, 0)]) for j, p in enumerate(xyz)]
    _write_images(tmp_path / "images", [image[4] for image in images])
    _write_binary(tmp_path / "sparse" / "0", cameras, images, points)
    scene = load_scene(str(tmp_path))
    assert scene.forward_facing and field_kind(scene) == "ndc"
    axes = scene.T_world_camera[:, :3, 2]
    assert (axes[:, 2] > 0.9).all()                                # world +Z = the viewing direction
    assert np.abs(scene.T_world_camera[:, :3, 3].mean(0)).max() < 1e-5   # cameras centred on 0
    assert 0.5 < scene.near < 1.0 < scene.far                      # nearest points at depth ~1
