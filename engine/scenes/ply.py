"""The vertices of a PLY point cloud (nerfstudio's `ply_file_path`, e.g. sparse_pc.ply), numpy only.

Reads the `vertex` element's x, y, z from ascii, binary_little_endian or binary_big_endian files;
other elements before it are skipped when they are ascii or have fixed-size rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.scenes.scene import SceneError

_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def read_ply_points(path: Path) -> np.ndarray:
    """xyz [P, 3] float64 of the vertices in `path`; SceneError naming the file when it is unusable."""
    fix = "write it again (e.g. ns-process-data) or remove ply_file_path from transforms.json"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SceneError(f"cannot read {path} ({exc}); {fix}") from exc
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise SceneError(f"{path} is not a PLY file; {fix}")
    header = data[:end].decode("ascii", errors="replace").splitlines()
    body = data[data.index(b"\n", end) + 1:]
    fmt, elements = None, []                                   # [(name, count, [(prop, type)])]
    for line in header:
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) == 3:
            elements.append((words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements:
            elements[-1][2].append((words[-1], "list" if words[1] == "list" else _TYPES.get(words[1])))
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    if fmt != "ascii" and order is None:
        raise SceneError(f"{path} has PLY format {fmt}; {fix}")
    offset = 0
    lines = body.decode("ascii", errors="replace").splitlines() if fmt == "ascii" else None
    for name, count, props in elements:
        names = [p for p, _ in props]
        if name == "vertex" and {"x", "y", "z"} <= set(names):
            if lines is not None:
                rows = np.array([line.split() for line in lines[offset:offset + count]], dtype=float)
                xyz = rows[:, [names.index(a) for a in "xyz"]]
            else:
                if any(t in (None, "list") for _, t in props):
                    raise SceneError(f"{path}: the vertex element has properties of unknown size; {fix}")
                dtype = np.dtype([(p, order + t) for p, t in props])
                if offset + count * dtype.itemsize > len(body):
                    raise SceneError(f"{path} ends early; {fix}")
                rows = np.frombuffer(body, dtype, count, offset)
                xyz = np.stack([rows[a].astype(np.float64) for a in "xyz"], -1)
            return xyz[np.isfinite(xyz).all(1)]
        if lines is not None:
            offset += count
        elif any(t in (None, "list") for _, t in props):
            raise SceneError(f"{path}: cannot skip the element {name} before the vertices; {fix}")
        else:
            offset += count * np.dtype([(p, order + t) for p, t in props]).itemsize
    raise SceneError(f"{path} has no vertex element with x, y, z; {fix}")
