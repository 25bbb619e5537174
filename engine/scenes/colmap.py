"""COLMAP models: `cameras`, `images` (+ optional `points3D`), as text (`.txt`) or binary (`.bin`,
what COLMAP writes by default; engine/scenes/colmap_bin.py reads those).

The model files may sit in the scene folder, in `sparse/0/` or in `sparse/`; images are read from
the first `images/` folder found from the model's folder up to the scene folder (with
`--downscale N`, a sibling `images_N/` is used when present, else the images are resized).
Camera models: SIMPLE_PINHOLE, PINHOLE, and SIMPLE_RADIAL / RADIAL / OPENCV with zero
distortion; undistort anything else first (`colmap image_undistorter`). COLMAP stores
world-to-camera rotations (qw, qx, qy, qz) and translations in the OpenCV camera convention and
puts pixel centres at +0.5, like us. The region: for captures that walk around an object the
region the cameras see (engine/scenes/region.py), tightened to the 3D points inside it.
Forward-facing captures with 3D points (their fields live in NDC space) are moved to the frame NDC
needs (region.forward_frame, scaled so that the 1st percentile of the points' depths is 1) and
get the 1st..99th percentile of the points (+5% margin); without 10 points, a cube around the
point the cameras look at. Views are sorted by name; 0, 8, 16, ... are held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.scenes.checks import check_cameras
from engine.scenes.common import (
    bbox_from_cameras,
    every_8th_split,
    read_image,
    scale_K,
    stack_images,
    warn_missing,
)
from engine.scenes.region import forward_frame, is_forward_facing, points_region, visual_region
from engine.scenes.scene import Scene, SceneError

# model -> (number of params, indices of fx, fy, cx, cy, first distortion index)
MODELS = {"SIMPLE_PINHOLE": (3, 0, 0, 1, 2, 3), "PINHOLE": (4, 0, 1, 2, 3, 4),
          "SIMPLE_RADIAL": (4, 0, 0, 1, 2, 3), "RADIAL": (5, 0, 0, 1, 2, 3),
          "OPENCV": (8, 0, 1, 2, 3, 4)}


def _lines(path: Path) -> list[str]:
    """Lines of a COLMAP text file without comments (blank lines kept: they are empty tracks)."""
    try:
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"cannot read {path} ({exc}); export the model as text again") from exc


def read_cameras(path: Path) -> dict[int, tuple[np.ndarray, int, int]]:
    """{camera id: (K [3, 3], W, H)} from cameras.txt; SceneError for distorted or odd models."""
    cameras = {}
    for line in _lines(path):
        if not line.strip():
            continue
        parts = line.split()
        try:
            cam_id, model, W, H = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
            params = [float(p) for p in parts[4:]]
        except (ValueError, IndexError) as exc:
            raise SceneError(f"{path}: cannot parse camera line '{line}'; export the model "
                             "as text again") from exc
        cameras[cam_id] = camera_matrix(path, cam_id, model, params, W, H)
    return cameras


def camera_matrix(path: Path, cam_id: int, model: str, params: list[float], W: int, H: int
                  ) -> tuple[np.ndarray, int, int]:
    """(K [3, 3], W, H) of one camera; SceneError for distorted or unsupported models."""
    if model not in MODELS or len(params) != MODELS[model][0]:
        raise SceneError(f"{path}: camera {cam_id} uses model {model} with {len(params)} "
                         f"parameters; supported: {', '.join(MODELS)} (undistort first with "
                         "colmap image_undistorter)")
    if W <= 0 or H <= 0 or not np.isfinite(params).all():
        raise SceneError(f"{path}: camera {cam_id} has size {W}x{H} and parameters {params}; the size must "
                         "be positive and the parameters finite: export the model again")
    _, fx, fy, cx, cy, dist = MODELS[model]
    if any(abs(p) > 1e-9 for p in params[dist:]):
        raise SceneError(f"{path}: camera {cam_id} ({model}) has lens distortion; undistort "
                         "the images first (colmap image_undistorter) and load that output")
    return np.array([[params[fx], 0, params[cx]], [0, params[fy], params[cy]], [0, 0, 1]]), W, H


def world_from_colmap(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """T_world_camera [4, 4] of COLMAP's world-to-camera quaternion (w, x, y, z) and translation."""
    R = quaternion_to_matrix(q)                                    # world -> camera
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R.T, -R.T @ t
    return T


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """[3, 3] rotation of a unit quaternion (w, x, y, z)."""
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        return np.full((3, 3), np.nan)            # refused with the view's name by checks.check_cameras
    w, x, y, z = q / norm
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def read_images(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """[(image name, camera id, T_world_camera [4, 4])] from images.txt, sorted by name."""
    views = []
    for line in _lines(path)[0::2]:  # a header line, then a (possibly empty) line of 2D points
        if not line.strip():
            continue
        parts = line.split()
        try:
            q, t = np.array(parts[1:5], dtype=float), np.array(parts[5:8], dtype=float)
            cam_id, name = int(parts[8]), " ".join(parts[9:])
        except (ValueError, IndexError) as exc:
            raise SceneError(f"{path}: cannot parse image line '{line[:80]}'; export the model "
                             "as text again") from exc
        views.append((name, cam_id, world_from_colmap(q, t)))
    return sorted(views, key=lambda view: view[0])


def _image_folder(folder: Path, text_dir: Path, downscale: int) -> tuple[Path, int]:
    """(folder to read images from, remaining resize factor)."""
    for base in (text_dir, *text_dir.parents):
        if (base / "images").is_dir():
            if downscale > 1 and (base / f"images_{downscale}").is_dir():
                return base / f"images_{downscale}", 1
            return base / "images", downscale
        if base == folder:
            break
    raise SceneError(f"no images/ folder found next to {text_dir} or above it up to {folder}; "
                     "put the images in <scene>/images/")


def read_points(path: Path) -> np.ndarray | None:
    """xyz [P, 3] float64 from points3D.txt, or None when the file is absent."""
    if not path.is_file():
        return None
    try:
        return np.array([line.split()[1:4] for line in _lines(path) if line.strip()],
                        dtype=float).reshape(-1, 3)
    except ValueError as exc:
        raise SceneError(f"{path}: cannot parse a point line ({exc}); export the model again") from exc


def _bbox_from_points(xyz: np.ndarray | None, T: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """bbox [2, 3], near, far from 3D points [P, 3] (robust percentiles), or None with fewer than 10."""
    if xyz is None or len(xyz) < 10:
        return None
    lo, hi = np.percentile(xyz, 1, axis=0), np.percentile(xyz, 99, axis=0)
    margin = 0.05 * (hi - lo)
    depth = np.einsum("nj,pj->np", T[:, :3, 2], xyz) - (T[:, :3, 2] * T[:, :3, 3]).sum(1)[:, None]
    depth = depth[depth > 0]                                                    # [N * P] visible
    near, far = 0.8 * np.percentile(depth, 1), 1.2 * np.percentile(depth, 99)
    return np.stack([lo - margin, hi + margin]).astype(np.float32), float(near), float(far)


def read_model(model_dir: Path):
    """(cameras, views, points or None) of the text or binary model in `model_dir` (text first)."""
    from engine.scenes import colmap_bin

    if (model_dir / "cameras.txt").is_file():
        ext, readers = ".txt", (read_cameras, read_images, read_points)
    else:
        ext, readers = ".bin", (colmap_bin.read_cameras, colmap_bin.read_images, colmap_bin.read_points)
    if not (model_dir / f"images{ext}").is_file():
        raise SceneError(f"{model_dir} has cameras{ext} but no images{ext}; export the whole model "
                         "again (colmap model_converter)")
    cameras, views = readers[0](model_dir / f"cameras{ext}"), readers[1](model_dir / f"images{ext}")
    if not views:
        raise SceneError(f"{model_dir / f'images{ext}'} lists no images; register images in COLMAP "
                         "and export the model again")
    return cameras, views, readers[2](model_dir / f"points3D{ext}")


def load_colmap(folder: Path, text_dir: Path, downscale: int | None = None) -> Scene:
    """Read the COLMAP model (text or binary) in `text_dir` of the scene `folder`. Raises SceneError."""
    cameras, views, points = read_model(text_dir)
    image_dir, factor = _image_folder(folder, text_dir, downscale or 1)
    images, Ks, poses, names, missing = [], [], [], [], []
    for name, cam_id, T in views:
        if cam_id not in cameras:
            raise SceneError(f"{text_dir}: image {name} uses camera {cam_id}, which the model's "
                             "cameras lack; export the model again")
        if not (image_dir / name).is_file():
            missing.append(name)
            continue
        image, _ = read_image(image_dir / name, factor)
        K, W, H = cameras[cam_id]
        Ks.append(scale_K(K, image.shape[1] / W, image.shape[0] / H))
        images.append(image)
        poses.append(T)
        names.append(str(Path(name).with_suffix("")).replace("/", "_"))
    warn_missing(missing, len(views), image_dir)
    stacked = stack_images(images, names, image_dir)
    K, T = np.stack(Ks).astype(np.float32), np.stack(poses)
    check_cameras(K, T, names, text_dir, "export the model again from COLMAP")
    if points is not None:
        points = points[np.isfinite(points).all(1)]
    H, W = stacked.shape[1:3]
    forward = is_forward_facing(T) and points is not None and len(points) >= 10
    if forward:
        T, points = _forward_world(T, points)
    region = _bbox_from_points(points, T)
    bbox, near, far = region or bbox_from_cameras(K, T, H, W)
    source = "3D points (1st..99th percentile)" if region else "cube around the cameras' look-at point"
    if not forward:
        seen = visual_region(K, T, H, W, near)
        if seen is not None:
            tight = points_region(points, seen) if points is not None else None
            bbox = tight if tight is not None else seen
            source = "3D points inside the region the cameras see" if tight is not None else \
                "region the cameras see"
    train_ids, test_ids = every_8th_split(len(names))
    return Scene(name=folder.name, source=str(folder), kind="colmap", images=stacked, K=K,
                 T_world_camera=T.astype(np.float32), view_names=tuple(names),
                 train_ids=train_ids, test_ids=test_ids, bbox=bbox, near=near, far=far,
                 forward_facing=forward, bbox_source=source)


def _forward_world(T: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses [N, 4, 4] and points [P, 3] of a forward-facing capture in the frame NDC needs
    (region.forward_frame), scaled so that the 1st percentile of the points' depths is 1."""
    T_frame = forward_frame(T)
    T = np.linalg.inv(T_frame) @ T
    xyz = (xyz - T_frame[:3, 3]) @ T_frame[:3, :3]
    depth = np.einsum("nj,pj->np", T[:, :3, 2], xyz) - (T[:, :3, 2] * T[:, :3, 3]).sum(1)[:, None]
    scale = 1.0 / max(float(np.percentile(depth[depth > 0], 1)), 1e-6)
    T[:, :3, 3] *= scale
    return T, xyz * scale
