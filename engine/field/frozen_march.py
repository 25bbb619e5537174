"""No-grad CPU rendering of a frozen field in one compiled pass per ray (numba).

The torch renderer (engine/field/render.py) runs a dozen array passes over every sample of a view
(step generation, the occupancy filter, density lookup, compositing, the kept-sample filter), and
the lifting step's matrix assembly another dozen over the kept ones. Here one loop per ray does all
of it as engine/field/grid.py ("Ray marching") defines it: the same steps u_k = u0 + (k + 0.5)
step_u in float32, the same nearest-voxel occupancy test and trilinear density (grid_sample's
align_corners=True, border padding), float64 transmittance and float32 weight; 1 - alpha of the
raw density is interpolated in a float32 table (`keep_table`, error under 3e-7). A ray stops once
its transmittance is under `stop_transmittance` (no later sample can change the colour, depth or
opacity by more than that, nor reach a weight cutoff above it).

What keeps the loop cheap (measured with perf on a trained real field): nothing in it allocates or
rebinds an array (numba would reference-count it at every step), voxel indices are unsigned (no
negative-index wrapping), the ray is carried in voxel coordinates (one multiply-add per axis and
step) and the 1 - alpha table is float32: on a 504x378 view of the spinnerf-box field the compiled
loop takes 0.8 s of CPU against 3.0 s before those changes (same run, load 14 on 2 cores).

With `footprint`, each ray also gets its row of the linear map from a voxel grid of the field's
shape to the pixel (what systems/inverse/ops.py lifts masks with): for every sample of weight >=
`weight_cutoff`, w times the trilinear weights of its 8 voxels, summed per voxel, entries <=
`min_entry` dropped, voxel ids ascending; plus the exit sample (weight T_final at the exit point)
for fields whose backdrop is their exit colour. Rays are split into fixed chunks marched in
threads (the compiled loop releases the GIL), so the result does not depend on the thread count.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
import torch

CHUNK_RAYS = 8192      # rays per compiled call (one thread's unit of work)
THREADS = 2
KEEP_LO, KEEP_HI, KEEP_PER_UNIT = -60.0, 40.0, 512   # the 1 - alpha table's raw range and density


def keep_table(field) -> np.ndarray:
    """1 - alpha = exp(-softplus(raw + shift) * scale * step) [M] float32 at raw = KEEP_LO + i /
    KEEP_PER_UNIT (up to KEEP_HI), engine/field/grid.py's softplus: the compiled marcher
    interpolates it linearly instead of three transcendental calls per sample (error below 2e-7
    plus float32 rounding: the second derivative in raw is at most c^2 + c / 4 for c = scale *
    step = step_voxels)."""
    raw = KEEP_LO + np.arange(int((KEEP_HI - KEEP_LO) * KEEP_PER_UNIT) + 1) / KEEP_PER_UNIT
    x = raw + float(field.density_shift)
    soft = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)
    return np.exp(-soft * float(field.density_scale) * field.step_size).astype(np.float32)


@dataclass(slots=True)
class Footprint:
    """Rows of the linear map from a voxel grid of the field's shape to the rays (CSR layout)."""
    indptr: np.ndarray             # [N + 1] int64
    voxels: np.ndarray             # [E] int32 flat voxel ids (z * Y + y) * X + x, ascending per row
    values: np.ndarray             # [E] float32


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cell(p, n):
    """Trilinear cell of voxel coord p on an axis of n voxels, as grid_sample with align_corners=True
    and border padding: (first voxel, fraction towards the next)."""
    p = min(max(p, np.float32(0.0)), np.float32(n - 1))
    i = max(min(int(p), n - 2), 0)
    return i, p - np.float32(i)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _lerp(a, b, f):
    return a + f * (b - a)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trilinear(grid, base, ox, oy, oz, fx, fy, fz):
    """Trilinear value of flat grid around voxel `base` with neighbour offsets ox, oy, oz."""
    c00 = _lerp(grid[base], grid[base + ox], fx)
    c01 = _lerp(grid[base + oy], grid[base + oy + ox], fx)
    c10 = _lerp(grid[base + oz], grid[base + oz + ox], fx)
    c11 = _lerp(grid[base + oz + oy], grid[base + oz + oy + ox], fx)
    return _lerp(_lerp(c00, c01, fy), _lerp(c10, c11, fy), fz)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _corners(base, ox, oy, oz, fx, fy, fz, ids, tri):
    """The 8 voxels (flat ids) and trilinear weights of a cell; corner order (dz, dy, dx)."""
    one = np.float32(1.0)
    gx, gy, gz = one - fx, one - fy, one - fz
    ids[0], ids[1], ids[2], ids[3] = base, base + ox, base + oy, base + oy + ox
    ids[4], ids[5], ids[6], ids[7] = base + oz, base + oz + ox, base + oz + oy, base + oz + oy + ox
    tri[0], tri[1], tri[2], tri[3] = gx * gy * gz, fx * gy * gz, gx * fy * gz, fx * fy * gz
    tri[4], tri[5], tri[6], tri[7] = gx * gy * fz, fx * gy * fz, gx * fy * fz, fx * fy * fz


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _march_chunk(density, color, occupancy, keep_table, Z, Y, X, shift, scale, step, origin_c, dir_c, u0, counts,
                 step_u, t_near, t_scale, exit_c, ndc, weight_cutoff, color_cutoff, stop_t, min_entry,
                 footprint, exit_sample, touched, acc):
    """March rays [n] of one chunk; see the module docstring. The footprint's scratch: touched
    [Z*Y*X] uint8, whether the current ray has an entry for the voxel (all 0 between rays), and acc
    [Z*Y*X] float32, that entry (any values between rays). Returns
    per-ray opacity, sum w t, final transmittance, colour sum [n, 3], footprint row lengths,
    voxel ids and values."""
    n = u0.shape[0]
    opacity = np.zeros(n, np.float32)
    wdepth = np.zeros(n, np.float32)
    t_final = np.ones(n, np.float32)
    rgb = np.zeros((n, 3), np.float32)
    lengths = np.zeros(n, np.int64)
    out_ids = np.empty(max(1024, n * 64) if footprint else 1, np.int32)
    out_vals = np.empty(out_ids.shape[0], np.float32)
    ids = np.empty(8, np.uint64)
    tri = np.empty(8, np.float32)
    half_x, half_y, half_z = np.float32((X - 1) / 2), np.float32((Y - 1) / 2), np.float32((Z - 1) / 2)
    ox, oy, oz = np.uint64(X > 1), np.uint64(X if Y > 1 else 0), np.uint64(X * Y if Z > 1 else 0)  # next voxel
    voxels = np.uint64(Z * Y * X)
    lit = color.shape[0] == 3 * Z * Y * X
    table_top = np.float32(keep_table.shape[0] - 1)
    pos = 0
    for r in range(n):
        transmit = 1.0                                                     # float64, as composite_weights
        T = np.float32(1.0)
        ray_opacity = np.float32(0.0)
        ray_depth = np.float32(0.0)
        start = pos
        # room for every sample of the ray, made here: an array rebound inside the step loop costs
        # four reference-count calls at every step (2.5x the whole march)
        if footprint:
            while pos + 8 * (counts[r] + 1) > out_ids.shape[0]:
                out_ids, out_vals = _grown(out_ids, out_vals)
        ax, ay, az = (half_x + origin_c[r, 0] * half_x, half_y + origin_c[r, 1] * half_y,
                      half_z + origin_c[r, 2] * half_z)                    # the ray in voxel coords
        bx, by, bz = dir_c[r, 0] * half_x, dir_c[r, 1] * half_y, dir_c[r, 2] * half_z
        ua, us = u0[r], step_u[r]
        for k in range(counts[r]):
            u = ua + (np.float32(k) + np.float32(0.5)) * us
            px, py, pz = ax + u * bx, ay + u * by, az + u * bz              # voxel coords
            ix = min(max(int(np.rint(px)), 0), X - 1)
            iy = min(max(int(np.rint(py)), 0), Y - 1)
            iz = min(max(int(np.rint(pz)), 0), Z - 1)
            if not occupancy[np.uint64((iz * Y + iy) * X + ix)]:
                continue
            (x0, fx), (y0, fy), (z0, fz) = _cell(px, X), _cell(py, Y), _cell(pz, Z)
            base = np.uint64((z0 * Y + y0) * X + x0)
            raw = _trilinear(density, base, ox, oy, oz, fx, fy, fz)
            f = min(max((raw - np.float32(KEEP_LO)) * np.float32(KEEP_PER_UNIT), np.float32(0.0)), table_top)
            if f < table_top:
                i = np.uint64(f)
                keep = keep_table[i] + (f - np.float32(i)) * (keep_table[i + np.uint64(1)] - keep_table[i])
            else:                                                          # beyond the table
                x = raw + shift
                keep = np.float32(np.exp(-((np.log1p(np.exp(-abs(x))) + max(x, np.float32(0.0))) * scale) * step))
            alpha = np.float32(1.0) - keep
            w = T * alpha
            ray_opacity += w
            if ndc:
                t = t_near[r] + t_scale[r] * u / max(np.float32(1.0) - u, np.float32(1e-6))
            else:
                t = u
            ray_depth += w * t
            if lit and w >= color_cutoff:
                for ch in range(3):
                    v = _trilinear(color, base + np.uint64(ch) * voxels, ox, oy, oz, fx, fy, fz)
                    rgb[r, ch] += w / (np.float32(1.0) + np.float32(np.exp(-v)))
            if footprint and w >= weight_cutoff:
                _corners(base, ox, oy, oz, fx, fy, fz, ids, tri)
                pos = _accumulate(ids, tri, w, touched, acc, out_ids, pos)
            transmit *= max(keep, np.float32(1e-6))
            T = np.float32(transmit)
            if T < stop_t:
                break
        t_final[r] = T
        opacity[r] = ray_opacity
        wdepth[r] = ray_depth
        if footprint and exit_sample and T >= weight_cutoff:
            x0, fx = _cell(half_x + exit_c[r, 0] * half_x, X)
            y0, fy = _cell(half_y + exit_c[r, 1] * half_y, Y)
            z0, fz = _cell(half_z + exit_c[r, 2] * half_z, Z)
            _corners(np.uint64((z0 * Y + y0) * X + x0), ox, oy, oz, fx, fy, fz, ids, tri)
            pos = _accumulate(ids, tri, T, touched, acc, out_ids, pos)
        if footprint:
            _insertion_sort(out_ids, start, pos)
            kept = start
            for j in range(start, pos):
                v_id = out_ids[j]
                touched[v_id] = 0
                if acc[v_id] > min_entry:
                    out_ids[kept] = v_id
                    out_vals[kept] = acc[v_id]
                    kept += 1
            lengths[r] = kept - start
            pos = kept
    return opacity, wdepth, t_final, rgb, lengths, out_ids[:pos].copy(), out_vals[:pos].copy()


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _accumulate(ids, tri, weight, touched, acc, out_ids, pos):
    """Add weight * tri[c] to the current ray's entry of voxel ids[c] (c < 8): a voxel the ray has
    not touched yet gets a zeroed entry and is listed at out_ids[pos]. Returns the new list length."""
    for c in range(8):
        v_id = ids[c]
        if not touched[v_id]:
            touched[v_id] = 1
            acc[v_id] = np.float32(0.0)
            out_ids[pos] = v_id
            pos += 1
        acc[v_id] += weight * tri[c]
    return pos


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _insertion_sort(a, lo, hi):
    """Sort a[lo:hi] ascending in place (fast on the nearly sorted voxel lists of a ray)."""
    for i in range(lo + 1, hi):
        v = a[i]
        j = i - 1
        while j >= lo and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _grown(ids, vals):
    """Copies of ids / vals with twice the capacity."""
    new_ids = np.empty(2 * ids.shape[0], np.int32)
    new_vals = np.empty(2 * vals.shape[0], np.float32)
    new_ids[:ids.shape[0]] = ids
    new_vals[:vals.shape[0]] = vals
    return new_ids, new_vals


_SCRATCH: queue.SimpleQueue = queue.SimpleQueue()   # footprint scratches (touched, acc) free for a chunk
_NO_SCRATCH = (np.zeros(1, np.uint8), np.zeros(1, np.float32))   # marches without a footprint never write it


def _take_scratch(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A free footprint scratch of `size` voxels, kept from an earlier chunk when one is free (a view
    does not clear 20 MB per thread again), else new. Scratches of another size are dropped."""
    while True:
        try:
            touched, acc = _SCRATCH.get_nowait()
        except queue.Empty:
            return np.zeros(size, np.uint8), np.empty(size, np.float32)
        if touched.shape[0] == size:
            return touched, acc


_WARM_UP: list[threading.Thread] = []
_WARM_UP_LOCK = threading.Lock()


def warm_up_in_background() -> threading.Thread:
    """Start, once per process, a thread that compiles the marcher or loads numba's cached machine
    code (about 1 s; compiling, after an install or an edit of this file, about 5 s on an idle
    2-core CPU) by rendering a 2x2x2 field through render_view, the path every caller takes.
    Called when a scene opens, so that a user's first click does not pay it; returns the thread.
    Not a daemon: a process that ends while it is inside torch aborts ("terminate called without
    an active exception"), so an early exit (a one-line error) waits for it instead."""
    with _WARM_UP_LOCK:
        if not _WARM_UP:
            _WARM_UP.append(threading.Thread(target=_warm_up, name="sa3d-march-warm-up", daemon=False))
            _WARM_UP[0].start()
        return _WARM_UP[0]


def _warm_up() -> None:
    from engine.field.grid import VoxelField
    from engine.field.render import render_view

    field = VoxelField(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), (2, 2, 2)).requires_grad_(False)
    pose = np.eye(4, dtype=np.float32)
    pose[2, 3] = -3.0                                  # in front of the box, looking along +z
    try:
        render_view(field, np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]), pose, 1, 1,
                    footprint=True, weight_cutoff=1e-2, min_entry=1e-3)
    except Exception:                                  # the first real render raises it where it is seen
        pass


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sa3d-march")


def march_frozen(field, rays, *, weight_cutoff: float, color_cutoff: float, footprint: bool,
                 min_entry: float, stop_transmittance: float) -> tuple:
    """Per-ray results of the compiled march for `rays`: engine/field/render.py's normalised rays
    (origin_c [N, 3], dir_c [N, 3], u0, u1, step_u [N]), the exit coords [N, 3] and the
    camera-depth parameters t_near, t_scale [N] (NDC: t = t_near + t_scale u / (1 - u)).
    Returns opacity [N], sum w t [N], T_final [N] and the colour sum [N, 3] as torch tensors, and
    the Footprint (None without `footprint`)."""
    origin_c, dir_c, u0, u1, step_u, exit_c, t_near, t_scale = rays
    counts = torch.floor((u1 - u0) / step_u).clamp(min=0).long().numpy()
    grid = field.density.detach()[0, 0].float().contiguous().reshape(-1).numpy()
    lit = color_cutoff != float("inf")
    color = field.color.detach()[0].float().contiguous().reshape(-1).numpy() if lit else np.zeros(0, np.float32)
    occupancy = field.occupancy.contiguous().reshape(-1).numpy()
    table = keep_table(field)
    Z, Y, X = field.resolution
    arrays = [np.ascontiguousarray(a.float().numpy()) for a in (origin_c, dir_c, u0, step_u, t_near, t_scale, exit_c)]
    n = u0.shape[0]
    shift, scale, step = (np.float32(float(v)) for v in (field.density_shift, field.density_scale, field.step_size))
    cutoffs = (np.float32(v) for v in (weight_cutoff, color_cutoff, stop_transmittance, min_entry))
    settings = (field.space == "ndc", *cutoffs, footprint, field.background_from_exit)


    def chunk(lo):
        o, d, a, s, tn, ts, e = (x[lo:lo + CHUNK_RAYS] for x in arrays)
        touched, acc = _take_scratch(Z * Y * X) if footprint else _NO_SCRATCH
        result = _march_chunk(grid, color, occupancy, table, Z, Y, X, shift, scale, step, o, d, a,
                              counts[lo:lo + CHUNK_RAYS], s, tn, ts, e, *settings, touched, acc)
        if footprint:
            _SCRATCH.put((touched, acc))       # clean again (not returned when the march raised)
        return result

    parts = list(_pool().map(chunk, range(0, n, CHUNK_RAYS)))
    opacity, wdepth, t_final = (torch.from_numpy(np.concatenate([p[i] for p in parts])) for i in range(3))
    rgb = torch.from_numpy(np.concatenate([p[3] for p in parts]))
    rows = None
    if footprint:
        lengths = np.concatenate([p[4] for p in parts])
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        rows = Footprint(indptr, np.concatenate([p[5] for p in parts]), np.concatenate([p[6] for p in parts]))
    return opacity, wdepth, t_final, rgb, rows
