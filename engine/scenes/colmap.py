"""COLMAP text models: `cameras.txt` + `images.txt` (+ optional `points3D.txt`).

The text files may sit in the scene folder, in `sparse/0/` or in `sparse/`; images are read from
the first `images/` folder found from the text files' folder up to the scene folder (with
`--downscale N`, a sibling `images_N/` is used when present, else the images are resized).
Camera models: SIMPLE_PINHOLE, PINHOLE, and SIMPLE_RADIAL / RADIAL / OPENCV with zero
distortion; undistort anything else first (`colmap image_undistorter`). COLMAP stores
world-to-camera rotations (qw, qx, qy, qz) and translations in the OpenCV camera convention and
puts pixel centres at +0.5, like us. The bbox spans the 1st..99th percentile of the 3D points
(+5% margin) when points3D.txt has at least 10 points, else a cube around the point the cameras
look at. Views are sorted by name; 0, 8, 16, ... are held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.scenes.common import (
    bbox_from_cameras,
    every_8th_split,
    read_image,
    scale_K,
    stack_images,
    warn_missing,
)
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
        if model not in MODELS or len(params) != MODELS[model][0]:
            raise SceneError(f"{path}: camera {cam_id} uses model {model} with {len(params)} "
                             f"parameters; supported: {', '.join(MODELS)} (undistort first with "
                             "colmap image_undistorter)")
        _, fx, fy, cx, cy, dist = MODELS[model]
        if any(abs(p) > 1e-9 for p in params[dist:]):
            raise SceneError(f"{path}: camera {cam_id} ({model}) has lens distortion; undistort "
                             "the images first (colmap image_undistorter) and load that output")
        K = np.array([[params[fx], 0, params[cx]], [0, params[fy], params[cy]], [0, 0, 1]])
        cameras[cam_id] = (K, W, H)
    return cameras


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """[3, 3] rotation of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q / np.linalg.norm(q)
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
        R = quaternion_to_matrix(q)                                # world -> camera
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R.T, -R.T @ t
        views.append((name, cam_id, T))
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


def _bbox_from_points(path: Path, T: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """bbox [2, 3], near, far from points3D.txt (robust percentiles), or None without points."""
    if not path.is_file():
        return None
    rows = [line.split()[1:4] for line in _lines(path) if line.strip()]
    if len(rows) < 10:
        return None
    xyz = np.array(rows, dtype=float)                                           # [P, 3]
    lo, hi = np.percentile(xyz, 1, axis=0), np.percentile(xyz, 99, axis=0)
    margin = 0.05 * (hi - lo)
    depth = np.einsum("nj,pj->np", T[:, :3, 2], xyz) - (T[:, :3, 2] * T[:, :3, 3]).sum(1)[:, None]
    depth = depth[depth > 0]                                                    # [N * P] visible
    near, far = 0.8 * np.percentile(depth, 1), 1.2 * np.percentile(depth, 99)
    return np.stack([lo - margin, hi + margin]).astype(np.float32), float(near), float(far)


def load_colmap(folder: Path, text_dir: Path, downscale: int | None = None) -> Scene:
    """Read the COLMAP text model in `text_dir` of the scene `folder`. Raises SceneError."""
    if not (text_dir / "images.txt").is_file():
        raise SceneError(f"{text_dir} has cameras.txt but no images.txt; export the whole model "
                         "as text (colmap model_converter --output_type TXT)")
    cameras = read_cameras(text_dir / "cameras.txt")
    views = read_images(text_dir / "images.txt")
    if not views:
        raise SceneError(f"{text_dir / 'images.txt'} lists no images; register images in COLMAP "
                         "and export the model again")
    image_dir, factor = _image_folder(folder, text_dir, downscale or 1)
    images, Ks, poses, names, missing = [], [], [], [], []
    for name, cam_id, T in views:
        if cam_id not in cameras:
            raise SceneError(f"{text_dir / 'images.txt'}: image {name} uses camera {cam_id}, "
                             "which cameras.txt lacks; export the model again")
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
    region = _bbox_from_points(text_dir / "points3D.txt", T)
    bbox, near, far = region or bbox_from_cameras(K, T, stacked.shape[1], stacked.shape[2])
    train_ids, test_ids = every_8th_split(len(names))
    return Scene(name=folder.name, source=str(folder), kind="colmap", images=stacked, K=K,
                 T_world_camera=T.astype(np.float32), view_names=tuple(names),
                 train_ids=train_ids, test_ids=test_ids, bbox=bbox, near=near, far=far)
