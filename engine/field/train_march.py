"""Training render of a VoxelField on the CPU: one compiled pass per ray forward, one backward.

The torch renderer (engine/field/render.py) builds every sample of a batch as arrays (step
generation, occupancy filter, two grid_sample lookups, compositing) and autograd keeps them all
for the backward, where CPU grid_sample's scatter runs one grid per thread and is the largest cost
of a step. Here the foreground box of a batch is one torch.autograd.Function whose forward marches
each ray as engine/field/grid.py ("Ray marching") defines it and whose backward marches it again
and scatters the gradients into dense grid buffers; nothing per sample is stored.

Forward, per ray: samples u_k = u0 + (k + offset) step_u whose nearest voxel is occupied, raw
density trilinear (grid_sample's align_corners=True, border padding), s_k = sigma_k step =
softplus(raw + shift) scale step, alpha_k = 1 - exp(-s_k), T_k = prod_{j<k} (1 - alpha_j) (float64,
each factor at least 1e-6), w_k = T_k alpha_k, colour sigmoid(trilinear raw colour) for samples
with w_k >= color_cutoff. Outputs: C = sum w_k c_k [N, 3], T_final [N], and the sum of alpha over
every sample (the sparsity term's numerator; the count is returned apart). The caller adds
T_final x background. A ray stops once T falls under `stop_transmittance` (0: never).

Backward, per ray, with g = dL/dC, g_T = dL/dT_final, g_a = dL/d(alpha sum), and P_k = sum_{j<=k}
w_j c_j (the colour up to sample k):

    dL/ds_k = g . (T_{k+1} c_k - (C - P_k)) - g_T T_final + g_a (1 - alpha_k)

(no division by 1 - alpha, so opaque samples are safe), dL/draw_k = dL/ds_k step scale
sigmoid(raw_k + shift), and dL/dcolour_k = g w_k c_k (1 - c_k); both are scattered into the 8
voxels of the sample's cell with its trilinear weights. Each sample also raises the largest weight
seen at its nearest voxel (the trainer's pruning record).

Rays are split into THREADS fixed parts marched in threads (the compiled loops release the GIL),
each with its own gradient and record buffers, added in a fixed order: the result does not depend
on the machine's thread count. tests/test_train_march.py checks values and gradients against the
torch renderer.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from engine.field.frozen_march import THREADS, _cell, _corners, _pool, _trilinear


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _strides(Z, Y, X):
    """Flat-index offsets to the next voxel along x, y, z (0 along an axis of one voxel) and the
    number of voxels, as _trilinear takes them."""
    return (np.uint64(X > 1), np.uint64(X if Y > 1 else 0), np.uint64(X * Y if Z > 1 else 0),
            np.uint64(Z * Y * X))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _position(origin_c, dir_c, u0, step_u, offset, r, k, Z, Y, X):
    """Ray r's sample k in voxel coords (px, py, pz) and the flat index of its nearest voxel
    (clamped to the grid)."""
    u = u0[r] + (np.float32(k) + offset[r]) * step_u[r]
    hx, hy, hz = np.float32((X - 1) / 2), np.float32((Y - 1) / 2), np.float32((Z - 1) / 2)
    px = hx + (origin_c[r, 0] + u * dir_c[r, 0]) * hx
    py = hy + (origin_c[r, 1] + u * dir_c[r, 1]) * hy
    pz = hz + (origin_c[r, 2] + u * dir_c[r, 2]) * hz
    nearest = np.uint64((min(max(int(np.rint(pz)), 0), Z - 1) * Y + min(max(int(np.rint(py)), 0), Y - 1))
                        * X + min(max(int(np.rint(px)), 0), X - 1))
    return px, py, pz, nearest


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _step(grid, rays, r, k):
    """Step k of ray r: its nearest voxel, cell base and fractions fx, fy, fz, and _absorption's
    exp(-s), alpha and ds/draw of its trilinear density; exp(-s) is -1 where the nearest voxel is
    empty (the step is skipped). grid = (density, occupancy, Z, Y, X, ox, oy, oz, shift, scale,
    step), rays = (origin_c, dir_c, u0, step_u, offset)."""
    density, occupancy, Z, Y, X, ox, oy, oz, shift, scale, step = grid
    origin_c, dir_c, u0, step_u, offset = rays
    px, py, pz, nearest = _position(origin_c, dir_c, u0, step_u, offset, r, k, Z, Y, X)
    zero = np.float32(0.0)
    if not occupancy[nearest]:
        return nearest, np.uint64(0), zero, zero, zero, np.float32(-1.0), zero, zero
    (x0, fx), (y0, fy), (z0, fz) = _cell(px, X), _cell(py, Y), _cell(pz, Z)
    base = np.uint64((z0 * Y + y0) * X + x0)
    keep, alpha, slope = _absorption(_trilinear(density, base, ox, oy, oz, fx, fy, fz), shift, scale, step)
    return nearest, base, fx, fy, fz, keep, alpha, slope


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _absorption(raw, shift, scale, step):
    """A sample's exp(-s) and alpha = 1 - exp(-s), s = softplus(raw + shift) * scale * step
    (engine/field/grid.py's softplus), and ds/draw."""
    x = raw + shift
    soft = np.log1p(np.exp(-abs(x))) + max(x, np.float32(0.0))
    slope = np.float32(1.0) / (np.float32(1.0) + np.exp(-x))
    keep = np.exp(-soft * scale * step)
    return keep, np.float32(1.0) - keep, slope * scale * step


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward(density, color, occupancy, Z, Y, X, shift, scale, step, origin_c, dir_c, u0, counts, step_u,
             offset, color_cutoff, stop_t, max_weight):
    """Forward of rays [n] (module docstring). Returns colour [n, 3], T_final [n], the alpha sum and
    the number of samples; raises max_weight [Z*Y*X] at each sample's nearest voxel."""
    n = u0.shape[0]
    rgb = np.zeros((n, 3), np.float32)
    t_final = np.ones(n, np.float32)
    alpha_sum = 0.0
    samples = 0
    ox, oy, oz, voxels = _strides(Z, Y, X)
    grid, rays = (density, occupancy, Z, Y, X, ox, oy, oz, shift, scale, step), (origin_c, dir_c, u0, step_u, offset)
    for r in range(n):
        transmit = 1.0
        for k in range(counts[r]):
            nearest, base, fx, fy, fz, keep, alpha, slope = _step(grid, rays, r, k)
            if keep < 0:
                continue
            w = np.float32(transmit) * alpha
            alpha_sum += alpha
            samples += 1
            if w > max_weight[nearest]:
                max_weight[nearest] = w
            if w >= color_cutoff:
                for ch in range(3):
                    v = _trilinear(color, base + np.uint64(ch) * voxels, ox, oy, oz, fx, fy, fz)
                    rgb[r, ch] += w / (np.float32(1.0) + np.exp(-v))
            transmit *= max(keep, np.float32(1e-6))
            if transmit < stop_t:
                break
        t_final[r] = transmit
    return rgb, t_final, alpha_sum, samples


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _backward(density, color, occupancy, Z, Y, X, shift, scale, step, origin_c, dir_c, u0, counts, step_u,
              offset, color_cutoff, stop_t, rgb, t_final, grad_rgb, grad_t, grad_alpha, grad_density,
              grad_color):
    """Backward of rays [n] (module docstring): adds dL/draw into grad_density [Z*Y*X] and
    grad_color [3*Z*Y*X] from the forward's rgb [n, 3], t_final [n] and the output gradients
    grad_rgb [n, 3], grad_t [n], grad_alpha (a number)."""
    n = u0.shape[0]
    ox, oy, oz, voxels = _strides(Z, Y, X)
    grid, rays = (density, occupancy, Z, Y, X, ox, oy, oz, shift, scale, step), (origin_c, dir_c, u0, step_u, offset)
    ids = np.empty(8, np.uint64)
    tri = np.empty(8, np.float32)
    c = np.empty(3, np.float32)
    for r in range(n):
        transmit = 1.0
        g0, g1, g2 = grad_rgb[r, 0], grad_rgb[r, 1], grad_rgb[r, 2]
        rest = g0 * rgb[r, 0] + g1 * rgb[r, 1] + g2 * rgb[r, 2]           # g . (C - P_k), P_{-1} = 0
        final = grad_t[r] * t_final[r]
        for k in range(counts[r]):
            nearest, base, fx, fy, fz, keep, alpha, slope = _step(grid, rays, r, k)
            if keep < 0:
                continue
            T = np.float32(transmit)
            w = T * alpha
            _corners(base, ox, oy, oz, fx, fy, fz, ids, tri)
            d_s = grad_alpha * keep - final
            if w >= color_cutoff:
                T_next = T * keep
                for ch in range(3):
                    v = _trilinear(color, base + np.uint64(ch) * voxels, ox, oy, oz, fx, fy, fz)
                    c[ch] = np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
                lit = g0 * c[0] + g1 * c[1] + g2 * c[2]
                rest -= w * lit
                d_s += T_next * lit
                for ch in range(3):
                    d_c = grad_rgb[r, ch] * w * c[ch] * (np.float32(1.0) - c[ch])
                    offset_ch = np.uint64(ch) * voxels
                    for j in range(8):
                        grad_color[offset_ch + ids[j]] += tri[j] * d_c
            d_raw = (d_s - rest) * slope
            for j in range(8):
                grad_density[ids[j]] += tri[j] * d_raw
            transmit *= max(keep, np.float32(1e-6))
            if transmit < stop_t:
                break


class _Batch:
    """A batch's rays as numpy arrays, split into THREADS parts, and the field's constants."""

    def __init__(self, field, rays, offset, color_cutoff: float, stop_transmittance: float) -> None:
        origin_c, dir_c, u0, u1, step_u = rays
        counts = torch.floor((u1 - u0) / step_u).clamp(min=0).long().numpy()
        arrays = [np.ascontiguousarray(a.detach().float().numpy()) for a in (origin_c, dir_c, u0, step_u, offset)]
        n = u0.shape[0]
        bounds = [n * i // THREADS for i in range(THREADS + 1)]
        self.parts = [(lo, hi, [a[lo:hi] for a in arrays[:3]] + [counts[lo:hi]] + [a[lo:hi] for a in arrays[3:]])
                      for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        self.occupancy = field.occupancy.contiguous().reshape(-1).numpy()
        self.shape = field.resolution
        self.constants = tuple(np.float32(float(v)) for v in (field.density_shift, field.density_scale,
                                                              field.step_size))
        self.settings = (np.float32(color_cutoff), float(stop_transmittance))
        self.samples = 0


def _flat(grid: torch.Tensor) -> np.ndarray:
    return grid.detach().contiguous().reshape(-1).numpy()


class _CompiledRender(torch.autograd.Function):
    """(density, colour) -> (C [N, 3], T_final [N], alpha sum []) of a _Batch; module docstring."""

    @staticmethod
    def forward(ctx, batch: _Batch, max_weight: np.ndarray, density: torch.Tensor, color: torch.Tensor):
        grid, colors = _flat(density), _flat(color)
        records = [max_weight] + [np.zeros_like(max_weight) for _ in batch.parts[1:]]

        def part(i):
            _, _, arrays = batch.parts[i]
            return _forward(grid, colors, batch.occupancy, *batch.shape, *batch.constants, *arrays,
                            *batch.settings, records[i])

        results = list(_pool().map(part, range(len(batch.parts))))
        for extra in records[1:]:
            np.maximum(max_weight, extra, out=max_weight)
        batch.samples = sum(r[3] for r in results)
        rgb = torch.from_numpy(np.concatenate([r[0] for r in results]))
        t_final = torch.from_numpy(np.concatenate([r[1] for r in results]))
        ctx.batch = batch
        ctx.save_for_backward(density, color, rgb, t_final)
        return rgb, t_final, torch.tensor(sum(r[2] for r in results), dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_rgb, grad_t, grad_alpha):
        density, color, rgb, t_final = ctx.saved_tensors
        batch = ctx.batch
        grid, colors = _flat(density), _flat(color)
        grad_rgb = np.ascontiguousarray(grad_rgb.float().numpy())
        grad_t = np.ascontiguousarray(grad_t.float().numpy())
        rgb_np, t_np = rgb.numpy(), t_final.numpy()
        buffers = [(np.zeros(grid.shape[0], np.float32), np.zeros(colors.shape[0], np.float32))
                   for _ in batch.parts]

        def part(i):
            lo, hi, arrays = batch.parts[i]
            _backward(grid, colors, batch.occupancy, *batch.shape, *batch.constants, *arrays, *batch.settings,
                      rgb_np[lo:hi], t_np[lo:hi], grad_rgb[lo:hi], grad_t[lo:hi], np.float32(grad_alpha),
                      *buffers[i])

        list(_pool().map(part, range(len(batch.parts))))
        d_density, d_color = buffers[0]
        for extra_density, extra_color in buffers[1:]:
            d_density += extra_density
            d_color += extra_color
        return (None, None, torch.from_numpy(d_density).view_as(density),
                torch.from_numpy(d_color).view_as(color))


def render_foreground(field, rays, offset, max_weight: torch.Tensor, *, color_cutoff: float = 1e-4,
                      stop_transmittance: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The box part of a training batch on the CPU: colour C [N, 3] (background excluded), T_final
    [N] and the mean sample alpha (0 without samples), differentiable in field.density and
    field.color. `rays` are engine/field/render.py's normalised rays (origin_c, dir_c, u0, u1,
    step_u [N]), `offset` [N] the per-ray sample offset; max_weight [Z, Y, X] float32 (CPU) is
    raised in place to the largest weight of the samples nearest to each voxel."""
    batch = _Batch(field, rays, offset, color_cutoff, stop_transmittance)
    rgb, t_final, alpha_sum = _CompiledRender.apply(batch, max_weight.reshape(-1).numpy(), field.density,
                                                    field.color)
    return rgb, t_final, alpha_sum / max(batch.samples, 1)
