"""File encodings of the exports (numpy only): PLY point clouds and meshes, OBJ meshes, object grids.

Units are the scene's world units (the built-in scene: metres; a COLMAP or LLFF capture: its
reconstruction's arbitrary scale). Axes: the exporter turns the world so that the scene's up is
the file's up (systems/export/axes.py) and names the turn in the file's header comment.
PLY: binary little-endian, vertices `x y z` float32 and `red green blue` uint8; meshes add faces
as `list uchar int vertex_indices`. Open3D, MeshLab, Blender, trimesh and plyfile read both.
OBJ: `v x y z r g b` lines (colour in [0, 1], the vertex-colour extension MeshLab, Blender and
trimesh read) then `f a b c` lines with 1-based indices. Colours are c / 255 rounded *up* at six
decimals, so readers that truncate (MeshLab) and readers that round get the byte back.

Object grid (`--format npz`), version 2; `np.load(path)` gives:
    mask        [K, Z, Y, X] uint8, 1 where object k is: its solid mask, the region it occupies
                (unseen inside included, carved from the views; systems/export/solid.py)
    votes       [K, Z, Y, X] float32, the SA3D votes (votes > 0: the visible surface the views marked)
    names       [K] str, object names;   colors [K, 3] uint8, display colours
    bbox        [2, 3] float32 min / max (x, y, z) of the grid in field space (see `space`)
    resolution  [3] int64 (Z, Y, X);     spacing [3] float64 (x, y, z) field-space distance of voxel centres
    space       str: "world", or "ndc" for forward-facing scenes
    ndc_near    float, ndc_scale [2] float (a_x, a_y): the NDC parameters (0 and [0, 0] for "world")
    up          [3] float: the world's up axis
    scene_hash, field_hash: str;   version: int (2)
Voxel (k, j, i) is centred at p = bbox[0] + (i, j, k) * spacing (box corners are centres). In
"world" space p is the world point. In "ndc" space the world point is
    z = 2 ndc_near / (1 - p_z),   x = p_x z / a_x,   y = p_y z / a_y
(engine/field/grid.py; p_z = 1 is infinitely far), in the scene's world frame.
"""

from __future__ import annotations

import io

import numpy as np

OBJECT_GRID_VERSION = 2
OBJ_COLOR_DECIMALS = 6


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


def _ply_header(vertex_count: int, face_count: int | None, comment: str) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", "comment written by sa3d export",
             *(f"comment {line}" for line in comment.splitlines()),
             f"element vertex {vertex_count}", "property float x", "property float y",
             "property float z", "property uchar red", "property uchar green", "property uchar blue"]
    if face_count is not None:
        lines += [f"element face {face_count}", "property list uchar int vertex_indices"]
    return ("\n".join(lines + ["end_header"]) + "\n").encode("ascii")


def ply_points(points: np.ndarray, colors: np.ndarray, comment: str = "") -> bytes:
    """Binary PLY of points [N, 3] float and colours [N, 3] uint8 (`comment` lines in the header)."""
    return _ply_header(len(points), None, comment) + _vertex_records(points, colors).tobytes()


def ply_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, comment: str = "") -> bytes:
    """Binary PLY of a triangle mesh: vertices [V, 3], faces [F, 3] int, vertex colours [V, 3] uint8."""
    face_dtype = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])
    face_records = np.empty(len(faces), dtype=face_dtype)
    face_records["count"] = 3
    face_records["indices"] = faces
    return (_ply_header(len(vertices), len(faces), comment) + _vertex_records(vertices, colors).tobytes()
            + face_records.tobytes())


def obj_colors(colors: np.ndarray) -> np.ndarray:
    """uint8 colours [V, 3] -> [V, 3] float64 in [0, 1]: c / 255 rounded up at OBJ_COLOR_DECIMALS,
    so that both floor(v * 255) and round(v * 255) give c back."""
    scale = 10.0 ** OBJ_COLOR_DECIMALS
    return np.ceil(colors.astype(np.float64) / 255.0 * scale) / scale


def obj_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, comment: str = "") -> bytes:
    """Wavefront OBJ text of a mesh with per-vertex colours (see the module docstring)."""
    out = io.StringIO()
    out.write("# written by sa3d export: v x y z r g b, faces 1-based\n")
    out.writelines(f"# {line}\n" for line in comment.splitlines())
    rows = np.concatenate([vertices.astype(np.float64), obj_colors(colors)], axis=1)
    d = OBJ_COLOR_DECIMALS
    np.savetxt(out, rows, fmt=f"v %.6f %.6f %.6f %.{d}f %.{d}f %.{d}f")
    np.savetxt(out, faces.astype(np.int64) + 1, fmt="f %d %d %d")
    return out.getvalue().encode("ascii")


def object_grid_npz(*, mask: np.ndarray, votes: np.ndarray, names, colors: np.ndarray, bbox: np.ndarray,
                    space: str, ndc: tuple[float, tuple[float, float]] | None, up: np.ndarray,
                    scene_hash: str, field_hash: str) -> bytes:
    """The object grid file (layout in the module docstring) of solid masks [K, Z, Y, X] bool and
    votes [K, Z, Y, X] as npz bytes; `ndc` = (ndc_near, (a_x, a_y)) for an NDC grid."""
    ndc_near, ndc_scale = ndc if ndc is not None else (0.0, (0.0, 0.0))
    bbox = np.asarray(bbox, np.float32).reshape(2, 3)
    resolution = np.array(votes.shape[1:], dtype=np.int64)                 # [3] Z, Y, X
    spacing = (bbox[1].astype(np.float64) - bbox[0]) / (resolution[::-1] - 1.0)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, mask=mask.astype(np.uint8), votes=votes.astype(np.float32),
                        names=np.array(list(names), dtype=str), colors=np.asarray(colors, np.uint8),
                        bbox=bbox, resolution=resolution, spacing=spacing, space=np.array(space),
                        ndc_near=np.array(float(ndc_near)), ndc_scale=np.asarray(ndc_scale, np.float64),
                        up=np.asarray(up, np.float64),
                        scene_hash=np.array(scene_hash), field_hash=np.array(field_hash),
                        version=np.array(OBJECT_GRID_VERSION))
    return buffer.getvalue()
