"""The CPU path of raster.py's compositing: one compiled loop per tile (numba), with the early stop.

Each tile copies its depth-sorted Gaussians' parameters into local arrays, then runs every pixel
front to back until its transmittance would fall below raster.STOP_TRANSMITTANCE, writing the
pixel's sums and its (pixel, Gaussian, weight) triplets as it goes. Tiles are dealt round-robin to
CHUNKS chunks run in threads (the compiled loop releases the GIL); each tile writes only its own
pixels, so the sums need no merge, and the triplets are joined in chunk order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np
import torch

from engine.splats.project import ALPHA_MAX, ALPHA_MIN
from engine.splats.raster import STOP_TRANSMITTANCE, TILE

THREADS = 2
CHUNKS = 8        # tile chunks (more than threads: tiles differ in cost)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _composite_tiles(tile_ids, starts, order, means2d, conics, opacity, depths, rgb, tiles_x, H, W,
                     with_weights, sums, t_final):
    """Composite the tiles `tile_ids`; writes sums [H*W, 5] (w, w z, w rgb) and t_final [H*W] of
    their pixels; returns their triplets: (pixel, Projected index) [E, 2] int32 and weights [E] float32."""
    out_pairs = np.empty((4096, 2), np.int32)        # (pixel, Projected index), grown as needed
    out_w = np.empty(4096, np.float32)
    pos = 0
    half, amin, amax = np.float32(0.5), np.float32(ALPHA_MIN), np.float32(ALPHA_MAX)
    stop = np.float32(STOP_TRANSMITTANCE)
    for tile in tile_ids:
        first, last = starts[tile], starts[tile + 1]
        n = last - first
        if n == 0:
            continue
        mx = np.empty(n, np.float32)
        my = np.empty(n, np.float32)
        ca = np.empty(n, np.float32)
        cb = np.empty(n, np.float32)
        cc = np.empty(n, np.float32)
        op = np.empty(n, np.float32)
        for j in range(n):
            g = order[first + j]
            mx[j], my[j] = means2d[g, 0], means2d[g, 1]
            ca[j], cb[j], cc[j] = conics[g, 0], conics[g, 1], conics[g, 2]
            op[j] = opacity[g]
        x0, y0 = (tile % tiles_x) * TILE, (tile // tiles_x) * TILE
        for py in range(y0, min(y0 + TILE, H)):
            for px in range(x0, min(x0 + TILE, W)):
                cx, cy = np.float32(px) + half, np.float32(py) + half
                T = np.float32(1.0)
                zero = np.float32(0.0)
                w_sum, wz, r, gr, b = zero, zero, zero, zero, zero
                pixel = py * W + px
                for j in range(n):
                    dx, dy = cx - mx[j], cy - my[j]
                    power = -half * (ca[j] * dx * dx + cc[j] * dy * dy) - cb[j] * dx * dy
                    alpha = min(amax, op[j] * np.exp(power))
                    if alpha < amin:
                        continue
                    T_next = T * (np.float32(1.0) - alpha)
                    if T_next < stop:
                        break
                    w = alpha * T
                    g = order[first + j]
                    w_sum += w
                    wz += w * depths[g]
                    r += w * rgb[g, 0]
                    gr += w * rgb[g, 1]
                    b += w * rgb[g, 2]
                    if with_weights:
                        if pos == out_w.shape[0]:
                            out_pairs, out_w = _doubled(out_pairs, out_w)
                        out_pairs[pos, 0], out_pairs[pos, 1], out_w[pos] = pixel, g, w
                        pos += 1
                    T = T_next
                sums[pixel, 0], sums[pixel, 1] = w_sum, wz
                sums[pixel, 2], sums[pixel, 3], sums[pixel, 4] = r, gr, b
                t_final[pixel] = T
    return out_pairs[:pos].copy(), out_w[:pos].copy()


@numba.njit(cache=True, nogil=True)
def _doubled(pairs, weights):
    """Copies of the triplet buffers with twice the room."""
    more_pairs = np.empty((2 * pairs.shape[0], 2), np.int32)
    more_weights = np.empty(2 * weights.shape[0], np.float32)
    more_pairs[:pairs.shape[0]] = pairs
    more_weights[:weights.shape[0]] = weights
    return more_pairs, more_weights


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sa3d-splats")


def composite_cpu(p, tiles, H: int, W: int, with_weights: bool = True):
    """raster.composite_torch's results ([H*W, 5] sums, [H*W] T_final, triplets) by the compiled loop."""
    arrays = [np.ascontiguousarray(t.detach().cpu().float().numpy())
              for t in (p.means2d, p.conics, p.opacity, p.depths, p.rgb)]
    starts = tiles.starts.cpu().numpy()
    order = tiles.order.cpu().numpy()
    sums = np.zeros((H * W, 5), np.float32)
    t_final = np.ones(H * W, np.float32)
    n_tiles = tiles.tiles_x * tiles.tiles_y
    chunks = [np.arange(c, n_tiles, CHUNKS) for c in range(CHUNKS)]
    parts = list(_pool().map(lambda ids: _composite_tiles(ids, starts, order, *arrays, tiles.tiles_x, H, W,
                                                          with_weights, sums, t_final), chunks))
    pairs = torch.from_numpy(np.concatenate([part[0] for part in parts])).long()         # [E, 2]
    vals = torch.from_numpy(np.concatenate([part[1] for part in parts]))
    return torch.from_numpy(sums), torch.from_numpy(t_final), (pairs[:, 0], pairs[:, 1], vals)
