"""Pure geometry of the exports: marching cubes, smoothing, colours, sampling.

Grid convention (the field's, engine/field/grid.py): arrays are [Z, Y, X]; voxel centres sit on
the box corners and faces, so voxel (k, j, i) is at world
bbox_min + (i, j, k) * spacing with spacing = (bbox_max - bbox_min) / (resolution - 1) in (x, y, z).

An object's mesh is the surface of its solid mask (systems/export/solid.py: the region it
occupies, decided voxel centre by voxel centre): marching cubes of the mask's occupancy (1 in, 0
out) at one half, which runs midway between the centres in and out, then Taubin smoothing, which
takes off the stair-steps without shrinking it. Its volume is the mask's (its voxel count times a
voxel's volume) to a fraction of a percent, so the mesh and the npz's mask say the same of the
object's size. (Marching the field's density inside the mask instead put the surface where the
trained field's soft outer layer fades, up to a voxel inside the mask: 4-15% of the volume lost
on the built-in objects, bench/bench_export.py.)

Empty space. `EMPTY_RAW` is the raw density of "nothing here": its activation is ~0 for any
density scale and shift the field can hold. Exports cut an object out (or away) by writing it.

Closing. The volume is padded with one layer of empty voxels before marching cubes, so objects
that touch the box are closed too (by a cap on the box face: vertices are clamped to the box): the
mesh is watertight.
Faces are wound counter-clockwise seen from outside (positive signed volume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from skimage import measure

EMPTY_RAW = -60.0  # softplus(-60 + shift) ~ 1e-26: no density


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray   # [V, 3] float32 world x, y, z
    faces: np.ndarray      # [F, 3] int32 vertex indices, counter-clockwise seen from outside
    colors: np.ndarray     # [V, 3] uint8 RGB


def grid_spacing(bbox: np.ndarray, resolution: tuple[int, int, int]) -> np.ndarray:
    """World distance between voxel centres [3] (x, y, z) of a [Z, Y, X] grid in bbox [2, 3]."""
    counts = np.array(resolution[::-1], dtype=np.float64) - 1.0          # [3] x, y, z
    return (np.asarray(bbox, np.float64)[1] - np.asarray(bbox, np.float64)[0]) / counts


def grow_mask(mask: np.ndarray, voxels: int) -> np.ndarray:
    """mask [Z, Y, X] bool dilated by `voxels` (26-neighbourhood); voxels = 0 returns it unchanged."""
    if voxels <= 0:
        return mask.astype(bool)
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), bool), iterations=voxels)


def marching_cubes_world(volume: np.ndarray, level: float, bbox: np.ndarray, *, empty: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Closed iso surface {volume = level} of a [Z, Y, X] grid in world coordinates.

    Returns vertices [V, 3] float32 (x, y, z) and faces [F, 3] int32, both empty when the volume
    never exceeds `level`. The grid is padded with `empty` (< level) so the surface closes at the
    box faces.
    """
    if not np.any(volume > level):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    padded = np.pad(volume.astype(np.float32), 1, mode="constant", constant_values=empty)
    verts_zyx, faces, _, _ = measure.marching_cubes(padded, level=level, allow_degenerate=False)
    spacing = grid_spacing(bbox, volume.shape)                          # [3] x, y, z
    index_xyz = verts_zyx[:, ::-1] - 1.0                                # [V, 3] voxel index x, y, z
    vertices = np.asarray(bbox, np.float64)[0] + index_xyz * spacing    # [V, 3]
    vertices = np.clip(vertices, bbox[0], bbox[1])                      # the padding's half voxel
    return vertices.astype(np.float32), faces.astype(np.int32)


def taubin_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int, *,
                  lam: float = 0.5, mu: float = -0.53) -> np.ndarray:
    """Taubin (lambda | mu) smoothing of a triangle mesh: removes voxel stair-steps, keeps volume.

    Reads vertices [V, 3] and faces [F, 3]; returns new vertices [V, 3] float32 (same topology).
    Each iteration moves every vertex by lam, then by mu, times its uniform Laplacian (the mean
    of its neighbours minus itself).
    """
    if iterations <= 0 or len(faces) == 0:
        return vertices.astype(np.float32)
    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # [3F, 2]
    edges = np.concatenate([edges, edges[:, ::-1]])                                # [6F, 2]
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0                                                        # duplicates summed
    degree = np.asarray(adjacency.sum(axis=1)).ravel()                             # [V]
    mean_of_neighbours = sparse.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
    v = vertices.astype(np.float64)
    for _ in range(iterations):
        for factor in (lam, mu):
            v = v + factor * (mean_of_neighbours @ v - v)
    return v.astype(np.float32)


def sample_grid(values: np.ndarray, points: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """Trilinear samples of values [Z, Y, X, C] at world points [N, 3] -> [N, C] (clamped at the box)."""
    spacing = grid_spacing(bbox, values.shape[:3])                      # [3] x, y, z
    index_xyz = (points - np.asarray(bbox, np.float64)[0]) / spacing    # [N, 3] fractional voxel index
    coords = index_xyz[:, ::-1].T                                       # [3, N] z, y, x
    return np.stack([ndimage.map_coordinates(values[..., c], coords, order=1, mode="nearest")
                     for c in range(values.shape[3])], axis=1)


def inward_colors(rgb: np.ndarray, density: np.ndarray, vertices: np.ndarray, bbox: np.ndarray,
                  depth_voxels: float = 0.5) -> np.ndarray:
    """Colours [V, 3] uint8 for surface vertices [V, 3]: the rgb grid [Z, Y, X, 3] in [0, 1]
    sampled `depth_voxels` inside the surface (up the gradient of the density-like grid
    [Z, Y, X]), where the field's colour is trained, rather than on the iso surface itself."""
    if len(vertices) == 0:
        return np.zeros((0, 3), np.uint8)
    spacing = grid_spacing(bbox, density.shape)                         # [3] x, y, z
    grads = np.stack(np.gradient(density.astype(np.float32))[::-1], axis=-1) / spacing  # [Z, Y, X, 3]
    g = sample_grid(grads, vertices, bbox)                              # [V, 3] x, y, z
    g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    inside = vertices + g * depth_voxels * spacing.mean()               # [V, 3]
    colors = sample_grid(rgb, inside, bbox)                             # [V, 3]
    return np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)


def sample_surface(mesh: Mesh, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` points spread uniformly by area over the mesh's triangles, with interpolated colours.

    Returns points [count, 3] float32 and colours [count, 3] uint8 (empty if the mesh is empty).
    """
    if len(mesh.faces) == 0 or count <= 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    tri = mesh.vertices[mesh.faces].astype(np.float64)                  # [F, 3, 3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(tri), size=count, p=area / area.sum())      # [count]
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u, v = np.where(flip, 1.0 - u, u), np.where(flip, 1.0 - v, v)
    bary = np.stack([1.0 - u - v, u, v], axis=1)                        # [count, 3]
    points = np.einsum("nk,nkc->nc", bary, tri[chosen])                 # [count, 3]
    cols = np.einsum("nk,nkc->nc", bary, mesh.colors[mesh.faces[chosen]].astype(np.float64))
    return points.astype(np.float32), np.clip(np.round(cols), 0, 255).astype(np.uint8)


def object_mesh(mask: np.ndarray, rgb: np.ndarray, bbox: np.ndarray, *, smooth_iterations: int = 0) -> Mesh:
    """The coloured, closed mesh of the solid mask [Z, Y, X] bool (module docstring) in a field
    with colours rgb [Z, Y, X, 3] in [0, 1] and box bbox [2, 3]: marching cubes of the occupancy
    at one half, Taubin-smoothed `smooth_iterations` times and clamped to the box (smoothing may
    push a vertex out of it), coloured half a voxel inside. An empty mask gives an empty Mesh."""
    occupancy = mask.astype(np.float32)                                  # [Z, Y, X]
    vertices, faces = marching_cubes_world(occupancy, 0.5, bbox, empty=0.0)
    vertices = np.clip(taubin_smooth(vertices, faces, smooth_iterations), bbox[0], bbox[1])
    return Mesh(vertices=vertices, faces=faces, colors=inward_colors(rgb, occupancy, vertices, bbox))
