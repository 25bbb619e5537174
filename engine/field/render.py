"""Volume rendering of a VoxelField: colour, depth, opacity and the per-sample compositing weights.

The sampling and compositing rules (step, alpha, transmittance, background) are written once, in
the docstring of engine/field/grid.py. Per-ray segments of the flat sample arrays are handled with
`repeat_interleave` / `index_add_`, so everything runs on the CPU as well as on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.field.background import background_start
from engine.field.frozen_march import Footprint, march_frozen
from engine.field.grid import VoxelField
from engine.field.march import march_blocks, march_every_step
from engine.field.train_march import render_foreground
from engine.math.rays import camera_rays, ray_box

STOP_TRANSMITTANCE = 1e-4   # the compiled marcher stops a ray whose transmittance is below


@dataclass(slots=True)
class SampleWeights:
    """Compositing weights of a frozen field: M(r) = sum over samples of ray r of weights * V(coords)."""
    ray_ids: torch.Tensor   # [S] int64 pixel index (row * W + column), sorted ascending
    coords: torch.Tensor    # [S, 3] float32 normalised grid coords (x, y, z) in [-1, 1]
    weights: torch.Tensor   # [S] float32 w = T * alpha, all >= the cutoff


@dataclass(slots=True)
class RayResult:
    rgb: torch.Tensor       # [N, 3] composited colour (background included)
    depth: torch.Tensor     # [N] expected t (= camera depth), the background sits at the exit t1
    opacity: torch.Tensor   # [N] sum of the weights of the grid samples (background excluded)
    alpha: torch.Tensor     # [S] alpha of every sample that was looked up (training regularisers)
    weights: torch.Tensor   # [S] their compositing weights (training: pruning by the largest weight)
    coords: torch.Tensor    # [S, 3] their normalised grid coords
    samples: SampleWeights | None = None
    background_weights: torch.Tensor | None = None  # [N, B] weights of the background grid's bins,
                                                    # scaled by the transmittance reaching them


@dataclass(slots=True)
class TrainingRays:
    rgb: torch.Tensor         # [N, 3] composited colour (background included)
    alpha_mean: torch.Tensor  # [] mean alpha of the samples looked up (the sparsity term)
    background_weights: torch.Tensor | None  # as RayResult's


@dataclass(slots=True)
class RenderedView:
    rgb: torch.Tensor       # [H, W, 3] float32 in [0, 1]
    depth: torch.Tensor     # [H, W] float32 camera depth
    opacity: torch.Tensor   # [H, W] float32 in [0, 1]
    samples: SampleWeights | None = None
    footprint: Footprint | None = None   # [H*W] rows (render_view's footprint)


def render_rays(field: VoxelField, origins: torch.Tensor, dirs: torch.Tensor, *,
                near: float | None = None, far: float | None = None, jitter: bool = False,
                color_cutoff: float = 1e-4, keep_weights: bool = False,
                weight_cutoff: float = 1e-3, skip_blocks: bool = True) -> RayResult:
    """Render rays origins [N, 3], dirs [N, 3] (camera z of dirs = 1) through `field`.

    Differentiable unless called under no_grad. `jitter` draws the sample offset per ray uniformly
    (training) instead of 0.5. Samples with weight < color_cutoff skip the colour lookup (their
    colour contribution is dropped); with keep_weights, samples with weight >= weight_cutoff are
    returned (the background exit sample included when field.background_from_exit). near / far
    (camera depths) default to the field's own range. Rays are converted to the field's space
    (world or NDC) first; depth is camera depth either way. Samples come from
    engine/field/march.py: empty blocks skipped (skip_blocks=False: every step, the reference).
    """
    near = field.near if near is None else near
    far = field.far if far is None else far
    n_rays = origins.shape[0]
    device = origins.device
    rays, hit, u_bg, exit_coords = _ray_setup(field, origins, dirs, near, far)
    offset = torch.rand(n_rays, device=device) if jitter else torch.full((n_rays,), 0.5, device=device)
    marched = (march_blocks if skip_blocks else march_every_step)(field, *rays, offset)
    ray_ids, u, coords = marched.ray_ids, marched.u, marched.coords    # [S], [S], [S, 3]
    sigma = field.sample_density(coords)                               # [S]
    alpha = 1.0 - torch.exp(-sigma * field.step_size)                  # [S]
    weights, t_final = composite_weights(alpha, ray_ids, n_rays)       # [S], [N]

    lit = weights >= color_cutoff                                      # [S]
    rgb = torch.zeros(n_rays, 3, device=device, dtype=weights.dtype)
    rgb = rgb.index_add(0, ray_ids[lit], weights[lit, None] * field.sample_rgb(coords[lit]))
    opacity = torch.zeros(n_rays, device=device).index_add(0, ray_ids, weights)  # [N]
    t = field.camera_depth(u, origins, dirs, ray_ids)                  # [S] camera depth
    background, t_bg, bg_weights = _background(field, origins, dirs, hit, near, far, u_bg, exit_coords, jitter)
    depth = torch.zeros(n_rays, device=device).index_add(0, ray_ids, weights * t) + t_final * t_bg
    rgb = rgb + t_final[:, None] * background

    samples = None
    if keep_weights:
        samples = _kept_samples(field, ray_ids, coords, weights, exit_coords, t_final, weight_cutoff)
    return RayResult(rgb=rgb, depth=depth, opacity=opacity, alpha=alpha, weights=weights, coords=coords,
                     samples=samples,
                     background_weights=None if bg_weights is None else t_final[:, None] * bg_weights)


def _ray_setup(field, origins, dirs, near, far) -> tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rays in normalised grid coords as engine/field/march.py takes them (origin_c, dir_c
    [N, 3], u0, u1, step_u [N]), whether each hits the box [N], its exit (or far) parameter u_bg
    [N] and the exit point's normalised coords [N, 3]."""
    o_f, d_f, u_lo, u_hi = field.field_rays(origins, dirs, near, far)  # [N, 3] x2, [N] x2
    u_enter, u_exit = ray_box(o_f, d_f, field.bbox)                    # [N], [N]
    u0 = torch.maximum(u_enter, u_lo)                                  # [N]
    u1 = torch.minimum(u_exit, u_hi)                                   # [N]
    step_u = field.step_size / d_f.norm(dim=-1)                        # [N] u units per step
    scale = 2.0 / (field.bbox[1] - field.bbox[0])                      # [3] field -> normalised
    hit = u1 > u0                                                      # [N]
    u_bg = torch.where(hit, u1, u_hi)                                  # [N] exit (or far) parameter
    exit_coords = field.to_grid_coords(o_f + u_bg[:, None] * d_f)      # [N, 3]
    return (field.to_grid_coords(o_f), d_f * scale, u0, u1, step_u), hit, u_bg, exit_coords


def render_training_rays(field: VoxelField, origins: torch.Tensor, dirs: torch.Tensor, max_weight: torch.Tensor,
                         *, color_cutoff: float = 1e-4, stop_transmittance: float = 0.0,
                         compiled: bool = True) -> TrainingRays:
    """A training batch: render_rays with jitter, differentiable, and max_weight [Z, Y, X] raised in
    place to the largest weight of the samples nearest to each voxel (the pruning record). A CPU
    field's box is marched by the compiled forward and backward (engine/field/train_march.py; rays
    stop once their transmittance is under stop_transmittance), others by render_rays (which never
    stops a ray)."""
    if not compiled or field.density.device.type != "cpu":
        out = render_rays(field, origins, dirs, jitter=True, color_cutoff=color_cutoff)
        with torch.no_grad():
            max_weight.view(-1).scatter_reduce_(0, field.nearest_voxel(out.coords), out.weights.detach(), "amax")
        alpha_mean = out.alpha.mean() if out.alpha.numel() else out.rgb.new_zeros(())
        return TrainingRays(out.rgb, alpha_mean, out.background_weights)
    near, far = field.near, field.far
    rays, hit, u_bg, exit_coords = _ray_setup(field, origins, dirs, near, far)
    offset = torch.rand(origins.shape[0])                               # render_rays' draws, in order
    rgb, t_final, alpha_mean = render_foreground(field, rays, offset, max_weight, color_cutoff=color_cutoff,
                                                 stop_transmittance=stop_transmittance)
    background, _, bg_weights = _background(field, origins, dirs, hit, near, far, u_bg, exit_coords, True)
    return TrainingRays(rgb + t_final[:, None] * background, alpha_mean,
                        None if bg_weights is None else t_final[:, None] * bg_weights)


@torch.no_grad()
def render_rays_compiled(field: VoxelField, origins: torch.Tensor, dirs: torch.Tensor, *,
                         color_cutoff: float = 1e-4, footprint: bool = False, weight_cutoff: float = 1e-3,
                         min_entry: float = 0.0) -> tuple[RayResult, Footprint | None]:
    """render_rays of a frozen field on the CPU by the compiled marcher (engine/field/frozen_march.py):
    rgb, depth and opacity (alpha, weights and coords left empty), and with `footprint` each ray's
    row of compositing weight per voxel (samples of weight >= weight_cutoff, entries > min_entry)."""
    near, far = field.near, field.far
    rays, hit, u_bg, exit_coords = _ray_setup(field, origins, dirs, near, far)
    if field.space == "ndc":
        dz = dirs[:, 2].clamp(min=1e-9)                                # camera_depth's parameters
        t_near, t_scale = (field.ndc_near - origins[:, 2]) / dz, field.ndc_near / dz
    else:
        t_near = t_scale = torch.zeros_like(u_bg)
    opacity, wdepth, t_final, rgb, rows = march_frozen(
        field, (*rays, exit_coords, t_near, t_scale), weight_cutoff=weight_cutoff, color_cutoff=color_cutoff,
        footprint=footprint, min_entry=min_entry, stop_transmittance=STOP_TRANSMITTANCE)
    background, t_bg, _ = _background(field, origins, dirs, hit, near, far, u_bg, exit_coords, False)
    empty = torch.zeros(0)
    return RayResult(rgb=rgb + t_final[:, None] * background, depth=wdepth + t_final * t_bg, opacity=opacity,
                     alpha=empty, weights=empty, coords=empty.reshape(0, 3)), rows


def _background(field, origins, dirs, hit, near, far, u_bg, exit_coords, jitter
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """What a ray's remaining transmittance sees: colour [N, 3] and camera depth [N] of the
    background grid (kind "unbounded", from the box exit on; with its bins' weights [N, B]), the
    exit sample's colour at the exit (background_from_exit) or the constant backdrop at the exit
    (or at far, missing the box); the weights are None but for the grid."""
    if field.outside is not None:
        start = background_start(origins, dirs, field.outside.centre, u_bg, hit, near)  # [N]
        out = field.outside.render(origins, dirs, start, jitter=jitter)
        return out.rgb, out.depth, out.weights
    t_bg = torch.where(hit, field.camera_depth(u_bg, origins, dirs), torch.full_like(u_bg, far))  # [N]
    if field.background_from_exit:
        return field.sample_rgb(exit_coords), t_bg, None               # [N, 3]
    return field.background.to(origins.device).expand(origins.shape[0], 3), t_bg, None


def composite_weights(alpha: torch.Tensor, ray_ids: torch.Tensor, n_rays: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights w_i = T_i alpha_i [S] and the final transmittance [N] of rays given by ray_ids [S].

    ray_ids must be sorted (samples of a ray contiguous, front to back). The segmented exclusive
    cumulative product is a float64 cumsum of log(1 - alpha) minus its value at each ray's start.
    """
    log_keep = torch.log1p(-alpha.clamp(max=1.0 - 1e-6)).double()      # [S]
    csum = torch.cumsum(log_keep, 0)                                   # [S] inclusive
    exclusive = csum - log_keep                                        # [S]
    seg_counts = torch.bincount(ray_ids, minlength=n_rays)             # [N]
    seg_starts = (torch.cumsum(seg_counts, 0) - seg_counts).clamp(max=max(alpha.shape[0] - 1, 0))
    base = exclusive[seg_starts] if alpha.shape[0] else exclusive.new_zeros(n_rays)  # [N]
    transmittance = torch.exp(exclusive - base[ray_ids]).to(alpha.dtype)  # [S]
    weights = transmittance * alpha                                    # [S]
    log_final = torch.zeros(n_rays, dtype=torch.float64, device=alpha.device).index_add(0, ray_ids, log_keep)
    return weights, torch.exp(log_final).to(alpha.dtype)


def _kept_samples(field, ray_ids, coords, weights, exit_coords, t_final, cutoff) -> SampleWeights:
    """Samples with weight >= cutoff, detached, plus the exit samples when the exit is the backdrop."""
    ids, pts, w = ray_ids, coords, weights
    if field.background_from_exit:
        all_ids = torch.arange(t_final.shape[0], device=ray_ids.device)
        ids = torch.cat([ids, all_ids])
        pts = torch.cat([pts, exit_coords])
        w = torch.cat([w, t_final])
    keep = w >= cutoff
    ids, pts, w = ids[keep], pts[keep], w[keep]
    order = torch.sort(ids, stable=True).indices                       # exit samples after a ray's own
    return SampleWeights(ray_ids=ids[order].detach(), coords=pts[order].detach().float(),
                         weights=w[order].detach().float())


@torch.no_grad()
def render_view(field: VoxelField, K, T_world_camera, H: int, W: int, *, keep_weights: bool = False,
                weight_cutoff: float = 1e-3, chunk: int = 8192, skip_blocks: bool = True,
                color_cutoff: float = 1e-4, footprint: bool = False, min_entry: float = 0.0,
                compiled: bool = True) -> RenderedView:
    """Render an H x W view (no gradients) in chunks of `chunk` rays.

    Reads K [3, 3], T_world_camera [4, 4] (numpy or torch); the depth range is the field's own
    (field.near, field.far). SampleWeights.ray_ids index pixels row-major over the whole view.
    A field on the CPU renders through the compiled marcher (render_rays_compiled; with
    `footprint`, RenderedView.footprint holds each pixel's row), unless `compiled` is False or
    keep_weights asks for the samples themselves: then the torch renderer runs, skip_blocks=False
    being its reference marcher (every step generated); color_cutoff as in render_rays (inf: no
    colour lookups but the exit's, for callers that need weights and depth).
    """
    device = field.density.device
    origins, dirs = camera_rays(K, T_world_camera, H, W, device=device)  # [H*W, 3] each
    if compiled and device.type == "cpu" and not keep_weights:
        out, rows = render_rays_compiled(field, origins, dirs, color_cutoff=color_cutoff, footprint=footprint,
                                         weight_cutoff=weight_cutoff, min_entry=min_entry)
        return RenderedView(rgb=out.rgb.reshape(H, W, 3).clamp(0, 1), depth=out.depth.reshape(H, W),
                            opacity=out.opacity.reshape(H, W), footprint=rows)
    if footprint:
        raise ValueError("a footprint comes from the compiled marcher: a CPU field, compiled=True")
    parts = []
    for lo in range(0, H * W, chunk):
        parts.append(render_rays(field, origins[lo:lo + chunk], dirs[lo:lo + chunk],
                                 keep_weights=keep_weights, weight_cutoff=weight_cutoff,
                                 skip_blocks=skip_blocks, color_cutoff=color_cutoff))
    samples = None
    if keep_weights:
        offsets = range(0, H * W, chunk)
        samples = SampleWeights(
            ray_ids=torch.cat([p.samples.ray_ids + lo for p, lo in zip(parts, offsets)]),
            coords=torch.cat([p.samples.coords for p in parts]),
            weights=torch.cat([p.samples.weights for p in parts]))
    return RenderedView(rgb=torch.cat([p.rgb for p in parts]).reshape(H, W, 3).clamp(0, 1),
                        depth=torch.cat([p.depth for p in parts]).reshape(H, W),
                        opacity=torch.cat([p.opacity for p in parts]).reshape(H, W),
                        samples=samples)
