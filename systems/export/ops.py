"""Pure geometry of the exports: masked density, iso level, marching cubes, smoothing, sampling.

Grid convention (the field's, engine/field/grid.py): arrays are [Z, Y, X]; voxel centres sit on
the box corners and faces, so voxel (k, j, i) is at world
bbox_min + (i, j, k) * spacing with spacing = (bbox_max - bbox_min) / (resolution - 1) in (x, y, z).

Iso level. The mesh is the surface where the frozen field's alpha over one ray-marching step
reaches `alpha_iso`: sigma_iso = -ln(1 - alpha_iso) / step_size (`iso_density`), step-size aware,
so the same alpha gives the same surface whatever the grid resolution. Default 0.01: the light a
sample must stop for the views to count it at all (SegmentationSettings.weight_cutoff, a sample's
compositing weight, which is its alpha where nothing lies in front), so the mesh holds what the
carving's views see of the object. Fields trained here are soft (their densest voxels stop
~0.5-0.65 of the light per step, an object's outer layer often less than 0.05: the built-in
box's and block's faces are a fog) and hollow inside. On the built-in scene's default field
(bench/bench_export.py) 0.05 put the surface up to a voxel inside the solid mask, 4-15% of its
volume lost (meshes -2.0% to -7.9% of the analytic solids); 0.01 gives -2.7% to +3.4%.
Marching cubes runs on the raw density
at the raw value whose activation is sigma_iso (see `object_mesh`).

Empty space. `EMPTY_RAW` is the raw density of "nothing here": its activation is ~0 for any
density scale and shift the field can hold. Exports cut an object out (or away) by writing it.

Closing. The masked volume is padded with one layer of empty voxels before marching cubes, so objects
that touch the box are closed too (by a cap on the box face: vertices are clamped to the box): the
mesh is watertight wherever the masked density is a solid.
Faces are wound counter-clockwise seen from outside (positive signed volume).
"""

from __future__ import annotations

import math
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


def iso_density(alpha_iso: float, step_size: float) -> float:
    """sigma (per world unit) at which one step of `step_size` world units has alpha `alpha_iso`."""
    if not 0.0 < alpha_iso < 1.0:
        raise ValueError(f"alpha_iso must lie in (0, 1), got {alpha_iso}")
    return -math.log1p(-alpha_iso) / step_size


def grid_spacing(bbox: np.ndarray, resolution: tuple[int, int, int]) -> np.ndarray:
    """World distance between voxel centres [3] (x, y, z) of a [Z, Y, X] grid in bbox [2, 3]."""
    counts = np.array(resolution[::-1], dtype=np.float64) - 1.0          # [3] x, y, z
    return (np.asarray(bbox, np.float64)[1] - np.asarray(bbox, np.float64)[0]) / counts


def grow_mask(mask: np.ndarray, voxels: int) -> np.ndarray:
    """mask [Z, Y, X] bool dilated by `voxels` (26-neighbourhood); voxels = 0 returns it unchanged."""
    if voxels <= 0:
        return mask.astype(bool)
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), bool), iterations=voxels)


def masked_values(values: np.ndarray, mask: np.ndarray, empty: float) -> np.ndarray:
    """values [Z, Y, X] with every voxel outside mask [Z, Y, X] set to `empty` -> float32 [Z, Y, X]."""
    return np.where(mask, values, empty).astype(np.float32)


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


def cut_volume(raw: np.ndarray, mask: np.ndarray, level: float, empty: float) -> np.ndarray:
    """The field's raw density [Z, Y, X] cut to the solid object mask [Z, Y, X] bool, as a solid.

    In the mask's outer layer the raw density is kept (the surface lies where the field puts it);
    deeper inside, voxels are raised to at least the mask's densest value, so the unobserved inside
    of a trained object (its density is arbitrary) is solid. The one-voxel shell around the mask is
    capped below `level` at 2 level - (largest inside neighbour), so an iso edge from an inside
    voxel into the shell crosses no further than halfway (where the mask cuts through density:
    contacts with the ground or other objects) but earlier where the field's own density falls off
    (the object's border with empty space); everything further out is `empty`.
    """
    inside = masked_values(raw, mask, -np.inf)                             # [Z, Y, X]
    neighbour_max = ndimage.maximum_filter(inside, size=3, mode="constant", cval=-np.inf)
    shell = grow_mask(mask, 1) & ~mask
    below = np.nextafter(np.float32(level), np.float32(-np.inf))
    capped = np.minimum(np.minimum(raw, 2.0 * level - neighbour_max), below)
    volume = np.where(mask, raw, np.where(shell, capped, empty)).astype(np.float32)
    deep = ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool))
    if deep.any():
        solid_value = max(float(raw[mask].max()), level + 1.0)
        volume[deep] = np.maximum(volume[deep], solid_value)
    return volume


def object_mesh(raw: np.ndarray, rgb: np.ndarray, mask: np.ndarray, bbox: np.ndarray, *,
                raw_level: float, empty_raw: float, smooth_iterations: int = 0) -> Mesh:
    """The coloured, closed mesh of the object marked by mask [Z, Y, X] bool in a field.

    Reads the field's raw (pre-activation) density raw [Z, Y, X], rgb [Z, Y, X, 3] in [0, 1] and
    bbox [2, 3]. The field renders act(trilinear(raw)) with a monotone activation, so the iso
    surface {raw = raw_level} is exactly the renderer's {sigma = act(raw_level)} along grid edges.
    The volume is `cut_volume` (the object, solid, cut at the mask), the surface is extracted,
    Taubin-smoothed `smooth_iterations` times and clamped to the box (smoothing may push a vertex
    out of it). Returns an empty Mesh when nothing in the mask exceeds `raw_level`.
    """
    volume = cut_volume(raw, mask, raw_level, empty_raw)                 # [Z, Y, X]
    vertices, faces = marching_cubes_world(volume, raw_level, bbox, empty=empty_raw)
    vertices = np.clip(taubin_smooth(vertices, faces, smooth_iterations), bbox[0], bbox[1])
    return Mesh(vertices=vertices, faces=faces, colors=inward_colors(rgb, volume, vertices, bbox))
