"""View-weights disk cache: one file per (field content, device, camera, cutoffs), bounded by size.

A view's weights (its ViewWeights matrix, rendered depth and colour) cost one render of the frozen
field; they depend only on the field's bytes, the device it renders on, the camera (K, pose, size)
and the cutoffs, which together make the key. Files are `<key>.weights` under
`$SA3D_CACHE/view-weights/`, written atomically; reading one refreshes its time, and after every
write the least recently used files are deleted until the folder is under its cap
(`$SA3D_VIEW_CACHE_MB`, default 4096). Deleting the folder at any time is safe.

A file is its arrays' bytes as they lie in memory, each at a 64-byte aligned offset, after a JSON
header that lists them (name, dtype, shape, offset), and is read by memory-mapping it: an entry
costs no copy and no allocation, its pages are the kernel's file cache (shared by every process
that reads the view, given back under memory pressure). Its first 16 bytes are a magic string and
the xxh3-64 hash of everything after them (under 10 ms for a 38 MB view): a file whose hash does not
match (truncated, overwritten, flipped bits) is a miss, and the caller builds the weights again and
rewrites it. A file that matches is the one this module wrote from a built matrix, so its indices
are not scanned again. Files are only ever replaced by a rename or deleted, never changed in place,
so an entry mapped by a running process stays valid whatever happens to the folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import xxhash
from scipy import sparse

from engine.io import DAMAGED_ARRAY_FILE, atomic_path
from systems.inverse.ops import ROW_BLOCKS, ViewWeights, compressed_view, row_blocks

FORMAT = 4                      # bump when the weights of a key would change (marching, matrix layout, file layout)
DEFAULT_CAP_MB = 4096
SUFFIX = ".weights"
MAGIC = b"SA3D-VW\n"
_PREFIX = 32                    # magic, xxh3-64 of the rest, header offset and length
_ALIGN = 64


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
        return self.folder / f"{key}{SUFFIX}"

    def get(self, key: str) -> tuple[ViewWeights, np.ndarray, np.ndarray] | None:
        """The stored entry (memory-mapped), or None when missing or damaged (a miss)."""
        path = self.path(key)
        try:
            entry = _from_arrays(read_arrays(path))
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
                write_arrays(tmp, _to_arrays(weights, depth, rgb))
            self.evict()
        except OSError:
            pass

    def evict(self) -> None:
        """Delete the least recently used files until the folder holds at most `cap` bytes. Every
        file counts (an older FORMAT's leftovers too, which are the least recently used), except the
        hidden temporaries of writes in progress."""
        files = []
        for path in self.folder.glob("[!.]*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.cap:
                break
            path.unlink(missing_ok=True)
            total -= size


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays in the cache's file layout to `path`: magic, the xxh3-64 of every byte
    after it, the header's offset and length (uint64), the arrays from byte 64 on (each 64-byte
    aligned), then the JSON header [name, dtype, shape, offset] per array."""
    listing, chunks, offset = [], [], _ALIGN
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        listing.append([name, a.dtype.str, list(a.shape), offset])
        end = offset + a.nbytes
        offset = -(-end // _ALIGN) * _ALIGN
        chunks += [a.reshape(-1).view(np.uint8), bytes(offset - end)]
    header = json.dumps({"format": FORMAT, "arrays": listing}).encode()
    fields = offset.to_bytes(8, "little") + len(header).to_bytes(8, "little") + bytes(_ALIGN - _PREFIX)
    digest = xxhash.xxh3_64()
    with open(path, "wb") as f:
        f.write(MAGIC + bytes(8))
        for chunk in [fields, *chunks, header]:
            digest.update(chunk)
            f.write(chunk)
        f.seek(len(MAGIC))
        f.write(digest.digest())


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of a file written by write_arrays, memory-mapped (copy-on-write: an entry
    changed in memory never changes the file). Raises ValueError when the file is not whole."""
    blob = np.memmap(path, dtype=np.uint8, mode="c")                    # ValueError when empty
    if blob.size < _ALIGN or bytes(blob[:len(MAGIC)]) != MAGIC:
        raise ValueError(f"{path} is not a view-weights file")
    if xxhash.xxh3_64_digest(blob[len(MAGIC) + 8:]) != bytes(blob[len(MAGIC):len(MAGIC) + 8]):
        raise ValueError(f"{path} is damaged (its hash does not match)")
    at, length = (int.from_bytes(blob[i:i + 8], "little") for i in (16, 24))
    header = json.loads(bytes(blob[at:at + length]))
    arrays = {}
    for name, dtype, shape, offset in header["arrays"]:
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        if offset % _ALIGN or offset + size > at:
            raise ValueError(f"{path}: array {name} lies outside the file")
        arrays[name] = blob[offset:offset + size].view(dtype=dtype, type=np.ndarray).reshape(shape)
    return arrays


def _to_arrays(weights: ViewWeights, depth: np.ndarray, rgb: np.ndarray) -> dict:
    A = weights.A if weights.A.has_sorted_indices else weights.A.sorted_indices()
    return {"shape": np.array([weights.H, weights.W, *weights.mask_shape], np.int64),
            "voxels": weights.primitives.astype(np.int64, copy=False), "data": A.data.astype(np.float32, copy=False),
            "indices": A.indices.astype(np.int32, copy=False), "indptr": A.indptr.astype(np.int32, copy=False),
            "col_sums": weights.col_sums.astype(np.float32, copy=False),
            "pixel_weight": weights.pixel_weight.astype(np.float32, copy=False),
            "depth": np.asarray(depth, np.float32), "rgb": np.asarray(rgb, np.uint8)}


def _from_arrays(a: dict) -> tuple[ViewWeights, np.ndarray, np.ndarray]:
    """Rebuild an entry from the arrays of a whole file (O(1) checks that they fit together: a file
    whose hash matched holds what put wrote, so its indices are not scanned; a mismatch raises
    ValueError)."""
    H, W, *mask_shape = (int(v) for v in a["shape"])
    U = a["voxels"].shape[0]
    if (a["indptr"].shape != (H * W + 1,) or a["col_sums"].shape != (U,) or a["pixel_weight"].shape != (H * W,)
            or a["depth"].shape != (H, W) or a["rgb"].shape not in ((H, W, 3), (0, 0, 3))
            or a["data"].shape != a["indices"].shape or a["indptr"][0] != 0 or a["indptr"][-1] != a["data"].size):
        raise ValueError("view-weights arrays do not fit together")
    A = compressed_view(sparse.csr_matrix, (H * W, U), a["data"], a["indices"], a["indptr"])
    A.has_sorted_indices = True                  # put writes sorted rows
    weights = ViewWeights(H, W, tuple(mask_shape), a["voxels"], A, a["col_sums"], a["pixel_weight"],
                          row_blocks(A, ROW_BLOCKS))
    return weights, a["depth"], a["rgb"]
