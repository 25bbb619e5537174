"""File encodings of the exports (numpy only): PLY point clouds and meshes, OBJ meshes, mask grids.

PLY: binary little-endian, vertices `x y z` float32 and `red green blue` uint8; meshes add faces
as `list uchar int vertex_indices`. Open3D, MeshLab, Blender, trimesh and plyfile read both.
OBJ: `v x y z r g b` lines (colour in [0, 1], the vertex-colour extension MeshLab, Blender and
trimesh read) then `f a b c` lines with 1-based indices.

Object grid (`--format npz`), version 1; `np.load(path)` gives:
    mask        [K, Z, Y, X] uint8, 1 inside object k (the 3D mask votes > 0)
    votes       [K, Z, Y, X] float32, the SA3D votes the mask was thresholded from
    names       [K] str, object names;   colors [K, 3] uint8, display colours
    bbox        [2, 3] float32 world min / max (x, y, z) of the grid
    resolution  [3] int64 (Z, Y, X);     spacing [3] float64 (x, y, z) world distance of voxel centres
    space       str ("world");           scene_hash, field_hash: str;   version: int (1)
Voxel (k, j, i) of channel c is centred at bbox[0] + (i, j, k) * spacing (box corners are centres).
"""

from __future__ import annotations

import io

import numpy as np

OBJECT_GRID_VERSION = 1


def _vertex_records(points: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Structured [N] array of little-endian float32 x, y, z and uint8 red, green, blue."""
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                      ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    records = np.empty(len(points), dtype=dtype)
    for i, axis in enumerate("xyz"):
        records[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        records[channel] = colors[:, i]
    return records


def _ply_header(vertex_count: int, face_count: int | None) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", "comment written by sa3d export",
             f"element vertex {vertex_count}", "property float x", "property float y",
             "property float z", "property uchar red", "property uchar green", "property uchar blue"]
    if face_count is not None:
        lines += [f"element face {face_count}", "property list uchar int vertex_indices"]
    return ("\n".join(lines + ["end_header"]) + "\n").encode("ascii")


def ply_points(points: np.ndarray, colors: np.ndarray) -> bytes:
    """Binary PLY of points [N, 3] float and colours [N, 3] uint8."""
    return _ply_header(len(points), None) + _vertex_records(points, colors).tobytes()


def ply_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> bytes:
    """Binary PLY of a triangle mesh: vertices [V, 3], faces [F, 3] int, vertex colours [V, 3] uint8."""
    face_dtype = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])
    face_records = np.empty(len(faces), dtype=face_dtype)
    face_records["count"] = 3
    face_records["indices"] = faces
    return (_ply_header(len(vertices), len(faces)) + _vertex_records(vertices, colors).tobytes()
            + face_records.tobytes())


def obj_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> bytes:
    """Wavefront OBJ text of a mesh with per-vertex colours (see the module docstring)."""
    out = io.StringIO()
    out.write("# written by sa3d export: v x y z r g b, faces 1-based\n")
    rows = np.concatenate([vertices.astype(np.float64), colors.astype(np.float64) / 255.0], axis=1)
    np.savetxt(out, rows, fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
    np.savetxt(out, faces.astype(np.int64) + 1, fmt="f %d %d %d")
    return out.getvalue().encode("ascii")


def object_grid_npz(*, votes: np.ndarray, names, colors: np.ndarray, bbox: np.ndarray, space: str,
                    scene_hash: str, field_hash: str) -> bytes:
    """The object grid file (layout in the module docstring) of votes [K, Z, Y, X] as npz bytes."""
    bbox = np.asarray(bbox, np.float32).reshape(2, 3)
    resolution = np.array(votes.shape[1:], dtype=np.int64)                 # [3] Z, Y, X
    spacing = (bbox[1].astype(np.float64) - bbox[0]) / (resolution[::-1] - 1.0)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mask=(votes > 0).astype(np.uint8), votes=votes.astype(np.float32),
                        names=np.array(list(names), dtype=str), colors=np.asarray(colors, np.uint8),
                        bbox=bbox, resolution=resolution, spacing=spacing, space=np.array(space),
                        scene_hash=np.array(scene_hash), field_hash=np.array(field_hash),
                        version=np.array(OBJECT_GRID_VERSION))
    return buffer.getvalue()
