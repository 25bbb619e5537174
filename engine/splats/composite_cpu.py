"""The CPU path of raster.py's compositing: one compiled loop per tile (numba), with the early stop.

A tile walks its depth-sorted Gaussians once, front to back, and each Gaussian visits only the
pixels of the tile inside its box (project.py's `extent`: every pixel it can reach with alpha >=
1/255), updating those pixels' transmittance, sums and done flags. Per pixel this is the same
sequence of operations as raster.py's per-pixel definition, in the same order, but a small
Gaussian costs its few pixels instead of the tile's 256. Tiles are dealt round-robin to CHUNKS
chunks run in threads (the compiled loop releases the GIL); each tile writes only its own pixels,
so the sums need no merge. The (pixel, Gaussian, weight) triplets become the view's CSR matrix by
one counting pass (each chunk scatters its own triplets: its pixels are its own), then each row is
sorted by Gaussian index (canonical CSR, what scipy and the lifting expect).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np
import torch
from scipy import sparse

from engine.splats.project import ALPHA_MAX, ALPHA_MIN
from engine.splats.raster import STOP_TRANSMITTANCE, TILE

THREADS = 2
CHUNKS = 8        # tile chunks (more than threads: tiles differ in cost)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _composite_tiles(tile_ids, starts, order, means2d, conics, extent, opacity, depths, rgb, tiles_x, H, W,
                     with_weights, min_weight, sums, t_final):
    """Composite the tiles `tile_ids`; writes sums [H*W, 5] (w, w z, w rgb) and t_final [H*W] of
    their pixels; returns their triplets of weight >= min_weight: (pixel, Projected index) [E, 2]
    int32, weights [E] float32."""
    out_pairs = np.empty((4096, 2), np.int32)        # grown as needed
    out_w = np.empty(4096, np.float32)
    pos = 0
    half, amin, amax = np.float32(0.5), np.float32(ALPHA_MIN), np.float32(ALPHA_MAX)
    stop, one = np.float32(STOP_TRANSMITTANCE), np.float32(1.0)
    T = np.empty((TILE, TILE), np.float32)
    acc = np.empty((TILE, TILE, 5), np.float32)
    done = np.empty((TILE, TILE), np.bool_)
    for tile in tile_ids:
        x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
        nx, ny = min(TILE, W - x0), min(TILE, H - y0)
        T[:] = one
        acc[:] = np.float32(0.0)
        done[:] = False
        live = nx * ny
        for k in range(starts[tile], starts[tile + 1]):
            if live == 0:
                break
            g = order[k]
            mx, my = means2d[g, 0], means2d[g, 1]
            ca, cb, cc, op = conics[g, 0], conics[g, 1], conics[g, 2], opacity[g]
            xa = max(int(np.ceil(mx - extent[g, 0] - half)) - x0, 0)
            xb = min(int(np.floor(mx + extent[g, 0] - half)) - x0, nx - 1)
            ya = max(int(np.ceil(my - extent[g, 1] - half)) - y0, 0)
            yb = min(int(np.floor(my + extent[g, 1] - half)) - y0, ny - 1)
            for ly in range(ya, yb + 1):
                dy = np.float32(y0 + ly) + half - my
                for lx in range(xa, xb + 1):
                    if done[ly, lx]:
                        continue
                    dx = np.float32(x0 + lx) + half - mx
                    power = -half * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                    alpha = min(amax, op * np.exp(power))
                    if alpha < amin:
                        continue
                    T_next = T[ly, lx] * (one - alpha)
                    if T_next < stop:
                        done[ly, lx] = True
                        live -= 1
                        continue
                    w = alpha * T[ly, lx]
                    acc[ly, lx, 0] += w
                    acc[ly, lx, 1] += w * depths[g]
                    for ch in range(3):
                        acc[ly, lx, 2 + ch] += w * rgb[g, ch]
                    if with_weights and w >= min_weight:
                        if pos == out_w.shape[0]:                   # twice the room
                            out_pairs = np.concatenate((out_pairs, np.empty_like(out_pairs)))
                            out_w = np.concatenate((out_w, np.empty_like(out_w)))
                        out_pairs[pos, 0], out_pairs[pos, 1], out_w[pos] = (y0 + ly) * W + x0 + lx, g, w
                        pos += 1
                    T[ly, lx] = T_next
        for ly in range(ny):
            for lx in range(nx):
                pixel = (y0 + ly) * W + x0 + lx
                sums[pixel] = acc[ly, lx]
                t_final[pixel] = T[ly, lx]
    return out_pairs[:pos].copy(), out_w[:pos].copy()


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sa3d-splats")


def composite_cpu(p, tiles, H: int, W: int, n_gaussians: int, with_weights: bool = True, min_weight: float = 0.0):
    """raster.composite_torch's sums [H*W, 5] and T_final [H*W] by the compiled loop, and the view's
    matrix [H*W, n_gaussians] (columns: p.ids; entries of weight >= min_weight) when `with_weights`,
    else None."""
    arrays = [np.ascontiguousarray(t.detach().cpu().float().numpy())
              for t in (p.means2d, p.conics, p.extent, p.opacity, p.depths, p.rgb)]
    starts = tiles.starts.cpu().numpy()
    order = tiles.order.cpu().numpy()
    sums = np.zeros((H * W, 5), np.float32)
    t_final = np.ones(H * W, np.float32)
    n_tiles = tiles.tiles_x * tiles.tiles_y
    chunks = [np.arange(c, n_tiles, CHUNKS) for c in range(CHUNKS)]
    parts = list(_pool().map(lambda ids: _composite_tiles(ids, starts, order, *arrays, tiles.tiles_x, H, W,
                                                          with_weights, np.float32(min_weight), sums, t_final),
                             chunks))
    matrix = None
    if with_weights:
        counts = np.zeros(H * W, np.int64)
        for pairs, _ in parts:
            counts += np.bincount(pairs[:, 0], minlength=H * W)
        matrix = _assemble(counts, [(pairs[:, 0], pairs[:, 1], w) for pairs, w in parts],
                           p.ids.cpu().numpy().astype(np.int32), n_gaussians)
    return torch.from_numpy(sums), torch.from_numpy(t_final), matrix


@numba.njit(cache=True, nogil=True)
def _scatter_rows(rows, cols, vals, column_ids, cursor, out_cols, out_vals):
    """Place triplet e at the next free slot cursor[rows[e]] of its row, as column column_ids[cols[e]]."""
    for e in range(rows.shape[0]):
        slot = cursor[rows[e]]
        out_cols[slot] = column_ids[cols[e]]
        out_vals[slot] = vals[e]
        cursor[rows[e]] = slot + 1


def _assemble(counts: np.ndarray, parts: list, column_ids: np.ndarray, n_cols: int) -> sparse.csr_matrix:
    """CSR [len(counts), n_cols] of the triplet lists `parts` [(rows, cols, vals)], whose rows never
    share a row with another part, with row lengths `counts`; scattered part by part in threads."""
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    out_cols = np.empty(indptr[-1], np.int32)
    out_vals = np.empty(indptr[-1], np.float32)
    cursor = indptr[:-1].copy()
    list(_pool().map(lambda part: _scatter_rows(*part, column_ids, cursor, out_cols, out_vals), parts))
    matrix = sparse.csr_matrix((out_vals, out_cols, indptr), shape=(len(counts), n_cols))
    matrix.has_sorted_indices = False
    matrix.sort_indices()                            # scipy's per-row sort: ~0.3 s of CPU for 13M entries
    return matrix


def csr_from_triplets(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, column_ids: np.ndarray,
                      shape: tuple[int, int]) -> sparse.csr_matrix:
    """CSR float32 `shape` of distinct triplets (row, column_ids[col], val), rows sorted by column."""
    counts = np.bincount(rows, minlength=shape[0])
    return _assemble(counts, [(rows, cols, vals.astype(np.float32))], column_ids.astype(np.int32), shape[1])
