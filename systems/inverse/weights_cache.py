"""View-weights disk cache: one file per (field content, device, camera, cutoffs), bounded by size.

A view's weights (its ViewWeights matrix, rendered depth and colour) cost one render of the frozen
field; they depend only on the field's bytes, the device it renders on, the camera (K, pose, size)
and the cutoffs, which together make the key. Files are `<key>.npz` (uncompressed: loading is a
copy) under `$SA3D_CACHE/view-weights/`, written atomically; reading one refreshes its time, and
after every write the least recently used files are deleted until the folder is under its cap
(`$SA3D_VIEW_CACHE_MB`, default 4096). An unreadable or damaged file is a miss: the caller builds
the weights again and the file is rewritten. Deleting the folder at any time is safe.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
from scipy import sparse

from engine.io import DAMAGED_ARRAY_FILE, atomic_path
from systems.inverse.ops import ROW_BLOCKS, ViewWeights, row_blocks

FORMAT = 3                      # bump when the weights of a key would change (marching, matrix layout)
DEFAULT_CAP_MB = 4096


def cache_folder() -> Path:
    """`$SA3D_CACHE/view-weights` (default `~/.cache/sa3d/view-weights`)."""
    return Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d") / "view-weights"


def cap_bytes() -> int:
    """The size cap of the folder: `$SA3D_VIEW_CACHE_MB` megabytes (default DEFAULT_CAP_MB)."""
    text = os.environ.get("SA3D_VIEW_CACHE_MB", "")
    try:
        megabytes = float(text) if text else DEFAULT_CAP_MB
    except ValueError:
        megabytes = DEFAULT_CAP_MB
    return int(max(megabytes, 0.0) * 2**20)


def weights_key(field_hash: str, device: str, K, T_world_camera, H: int, W: int,
                weight_cutoff: float, min_entry: float) -> str:
    """Hex key of a view's weights: field bytes, device, camera and cutoffs (and FORMAT)."""
    h = hashlib.sha256(f"v{FORMAT}|{field_hash}|{device}|{H}x{W}|{weight_cutoff!r}|{min_entry!r}".encode())
    h.update(np.ascontiguousarray(K, np.float32).tobytes())
    h.update(np.ascontiguousarray(T_world_camera, np.float32).tobytes())
    return h.hexdigest()[:32]


class WeightsCache:
    """get / put of (ViewWeights, depth [H, W] float32 numpy, rgb [H, W, 3] uint8) by key in `folder`
    (rgb [0, 0, 3] for a view whose render colours were not needed)."""

    def __init__(self, folder: str | Path, cap: int | None = None):
        self.folder = Path(folder).expanduser()
        self.cap = cap_bytes() if cap is None else int(cap)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> tuple[ViewWeights, np.ndarray, np.ndarray] | None:
        """The stored entry, or None when missing or unreadable (a damaged file counts as missing)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {name: f[name] for name in f.files}
            entry = _from_arrays(arrays)
        except FileNotFoundError:
            return None
        except DAMAGED_ARRAY_FILE:
            return None
        try:
            os.utime(path)                           # most recently used
        except OSError:
            pass
        return entry

    def put(self, key: str, weights: ViewWeights, depth: np.ndarray, rgb: np.ndarray) -> None:
        """Write the entry atomically, then evict least recently used files above the cap. A
        folder that cannot be written (read-only, full disk) leaves the cache memory-only."""
        try:
            with atomic_path(self.path(key)) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, **_to_arrays(weights, depth, rgb))
            self.evict()
        except OSError:
            pass

    def evict(self) -> None:
        """Delete the least recently used `.npz` files until the folder holds at most `cap` bytes."""
        files = []
        for path in self.folder.glob("*.npz"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.cap:
                break
            path.unlink(missing_ok=True)
            total -= size


def _to_arrays(weights: ViewWeights, depth: np.ndarray, rgb: np.ndarray) -> dict:
    A = weights.A
    return {"shape": np.array([weights.H, weights.W, *weights.mask_shape], np.int64),
            "voxels": weights.primitives, "data": A.data, "indices": A.indices, "indptr": A.indptr,
            "col_sums": weights.col_sums, "pixel_weight": weights.pixel_weight,
            "depth": np.asarray(depth, np.float32), "rgb": np.asarray(rgb, np.uint8)}


def _from_arrays(a: dict) -> tuple[ViewWeights, np.ndarray, np.ndarray]:
    """Rebuild an entry, checking that the arrays fit together (a damaged file raises ValueError)."""
    H, W, *mask_shape = (int(v) for v in a["shape"])
    U = a["voxels"].shape[0]
    if (a["indptr"].shape != (H * W + 1,) or a["col_sums"].shape != (U,) or a["pixel_weight"].shape != (H * W,)
            or a["depth"].shape != (H, W) or a["rgb"].shape not in ((H, W, 3), (0, 0, 3))
            or a["data"].shape != a["indices"].shape
            or (U and (a["voxels"].min() < 0 or a["voxels"].max() >= math.prod(mask_shape)))):
        raise ValueError("view-weights arrays do not fit together")
    A = sparse.csr_matrix((a["data"].astype(np.float32, copy=False), a["indices"].astype(np.int32, copy=False),
                           a["indptr"].astype(np.int32, copy=False)), shape=(H * W, U))
    A.check_format(full_check=True)              # indptr monotone, indices in range (ValueError)
    weights = ViewWeights(H, W, tuple(mask_shape), a["voxels"].astype(np.int64, copy=False), A,
                          a["col_sums"].astype(np.float32, copy=False),
                          a["pixel_weight"].astype(np.float32, copy=False), row_blocks(A, ROW_BLOCKS))
    return weights, a["depth"].astype(np.float32, copy=False), a["rgb"]
