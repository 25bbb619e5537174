"""COLMAP binary models: `cameras.bin`, `images.bin`, `points3D.bin` (COLMAP's default output).

Layout (little-endian, as COLMAP's src/colmap/scene/reconstruction_io.cc writes it):
- cameras.bin: uint64 count, then per camera int32 id, int32 model id, uint64 width, uint64 height,
  float64 params[n(model)];
- images.bin: uint64 count, then per image int32 id, float64 qw qx qy qz, float64 tx ty tz, int32
  camera id, the name as NUL-terminated bytes, uint64 n2D, then n2D x (float64 x, float64 y, int64
  point id);
- points3D.bin: uint64 count, then per point uint64 id, float64 x y z, uint8 r g b, float64 error,
  uint64 track length, then that many x (int32 image id, int32 point2D index).
The readers return what the text readers of engine/scenes/colmap.py return.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from engine.scenes.scene import SceneError

# model id -> name, number of params (COLMAP's camera model list)
MODEL_IDS = {0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
             4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
             8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
             11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16)}


class _Reader:
    """Sequential little-endian reads of a whole file; SceneError naming the file when it ends early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise SceneError(f"cannot read {path} ({exc}); check the file") from exc
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise SceneError(f"{self.path} ends early (byte {self.pos} of {len(self.data)}); the model is "
                             "truncated: export it again from COLMAP")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, nbytes: int) -> None:
        if self.pos + nbytes > len(self.data):
            self.take(f"{nbytes}x")
        self.pos += nbytes

    def name(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise SceneError(f"{self.path}: an image name is not terminated; export the model again")
        text = self.data[self.pos:end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return text


def read_cameras(path: Path) -> dict[int, tuple[np.ndarray, int, int]]:
    """{camera id: (K [3, 3], W, H)} from cameras.bin; SceneError for distorted or odd models."""
    from engine.scenes.colmap import camera_matrix

    reader = _Reader(path)
    cameras = {}
    for _ in range(reader.take("Q")[0]):
        cam_id, model_id, W, H = reader.take("iiQQ")
        if model_id not in MODEL_IDS:
            raise SceneError(f"{path}: camera {cam_id} has unknown model id {model_id}; the file is "
                             "damaged or from another program: export the model again")
        model, n = MODEL_IDS[model_id]
        cameras[cam_id] = camera_matrix(path, cam_id, model, list(reader.take(f"{n}d")), int(W), int(H))
    return cameras


def read_images(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """[(image name, camera id, T_world_camera [4, 4])] from images.bin, sorted by name."""
    from engine.scenes.colmap import world_from_colmap

    reader = _Reader(path)
    views = []
    for _ in range(reader.take("Q")[0]):
        values = reader.take("i7di")
        name = reader.name()
        reader.skip(24 * reader.take("Q")[0])                     # the 2D points: x, y, point id
        views.append((name, values[8], world_from_colmap(np.array(values[1:5]), np.array(values[5:8]))))
    return sorted(views, key=lambda view: view[0])


def read_points(path: Path) -> np.ndarray | None:
    """xyz [P, 3] float64 from points3D.bin, or None when the file is absent."""
    if not path.is_file():
        return None
    reader = _Reader(path)
    xyz = []
    for _ in range(reader.take("Q")[0]):
        values = reader.take("Q3d3BdQ")
        xyz.append(values[1:4])
        reader.skip(8 * values[-1])                               # the track: image id, point2D index
    return np.array(xyz, dtype=float).reshape(-1, 3)
