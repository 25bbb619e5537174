"""Tile rasterisation of projected Gaussians (no gradients): colour, depth, opacity and each pixel's
(Gaussian, weight) pairs, the sparse [H*W, N] matrix that lifts a per-Gaussian mask.

Per pixel, the Gaussians that reach it are composited front to back in order of camera depth
(ties by index), as 3DGS does:

    alpha_i = min(0.99, o_i exp(-d_i^T Sigma_i^-1 d_i / 2)), skipped when < 1/255
    T_1 = 1, T_{i+1} = T_i (1 - alpha_i);  the pixel stops at the first i with T_{i+1} < 1e-4,
        which is not composited
    w_i = alpha_i T_i,  colour = sum w_i c_i + T_final background,  opacity = sum w_i = 1 - T_final

so the rendered mask of per-Gaussian values v is M = A v with A[pixel, i] = w_i. The image is cut
into 16x16 tiles; every Gaussian is listed in the tiles its square (project.py) overlaps, the lists
are sorted by depth, and each tile composites its own list. `render_reference` is the brute-force
per-pixel definition above (every Gaussian for every pixel); `composite_torch` runs the tiles as
padded batches of [tiles, 256 pixels, Gaussians] on any device; on the CPU the compiled loop of
composite_cpu.py does the same with the early stop (tests hold the three together).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy import sparse

from engine.splats.project import ALPHA_MAX, ALPHA_MIN, Projected, project

TILE = 16                    # tile side in pixels
STOP_TRANSMITTANCE = 1e-4    # a pixel's compositing stops before its transmittance falls below this
BATCH_ELEMENTS = 1 << 24     # the torch path's batch size in (pixel, Gaussian) pairs


@dataclass(frozen=True)
class Tiles:
    """Gaussians (indices into a Projected) listed per tile, depth-sorted within each tile."""
    tiles_x: int
    tiles_y: int
    order: torch.Tensor      # [L] int64 Projected indices, tile by tile, front to back
    starts: torch.Tensor     # [tiles_y * tiles_x + 1] int64 where each tile's list starts in `order`


@dataclass(frozen=True)
class SplatRender:
    """One view of a splat scene."""
    rgb: torch.Tensor                  # [H, W, 3] float32, background composited
    depth: torch.Tensor                # [H, W] float32 expected camera depth (sum w z / opacity;
                                       # the farthest Gaussian's depth where nothing is hit)
    opacity: torch.Tensor              # [H, W] float32 sum of the weights
    weights: sparse.csr_matrix | None  # [H*W, N] float32 w_i at (pixel, Gaussian index); N = cloud size


def bin_tiles(p: Projected, H: int, W: int) -> Tiles:
    """List every projected Gaussian in the tiles whose pixel centres its square may reach."""
    tiles_x, tiles_y = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    device = p.means2d.device
    lo = torch.ceil(p.means2d - p.extent - 0.5)         # first pixel whose centre is inside
    hi = torch.floor(p.means2d + p.extent - 0.5)
    size = torch.tensor([W - 1, H - 1], device=device)
    lo, hi = lo.clamp(min=0).minimum(size).long(), hi.clamp(min=-1).minimum(size).long()
    t_lo, t_hi = lo // TILE, hi // TILE                                      # [M, 2] tile x, y
    span = (t_hi - t_lo + 1).clamp(min=0)
    span = torch.where((hi >= lo).all(1, keepdim=True), span, torch.zeros_like(span))
    counts = span[:, 0] * span[:, 1]                                         # [M]
    by_depth = torch.argsort(p.depths, stable=True)
    rank = torch.empty_like(by_depth)
    rank[by_depth] = torch.arange(len(by_depth), device=device)
    g = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)   # [L]
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(g), device=device) - first[g]
    width = span[g, 0].clamp(min=1)
    tile = (t_lo[g, 1] + k // width) * tiles_x + t_lo[g, 0] + k % width               # [L]
    key = tile * max(len(counts), 1) + rank[g]
    order = g[torch.sort(key).indices]
    per_tile = torch.bincount(tile, minlength=tiles_x * tiles_y)
    starts = torch.zeros(tiles_x * tiles_y + 1, dtype=torch.long, device=device)
    starts[1:] = torch.cumsum(per_tile, 0)
    return Tiles(tiles_x, tiles_y, order, starts)


def pixel_alpha(p: Projected, gauss: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """alpha of Gaussians `gauss` [..., G] at pixel centres px, py [..., P, 1] (broadcast):
    [..., P, G], 0 where below 1/255."""
    dx = px + 0.5 - p.means2d[gauss, 0].unsqueeze(-2)
    dy = py + 0.5 - p.means2d[gauss, 1].unsqueeze(-2)
    con = p.conics[gauss].unsqueeze(-3)                                       # [..., 1, G, 3]
    power = -0.5 * (con[..., 0] * dx * dx + con[..., 2] * dy * dy) - con[..., 1] * dx * dy
    alpha = (p.opacity[gauss].unsqueeze(-2) * torch.exp(power)).clamp(max=ALPHA_MAX)
    return torch.where(alpha >= ALPHA_MIN, alpha, torch.zeros_like(alpha))


def front_to_back(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights [..., G] of depth-ordered alphas [..., G] with the stop rule, and T_final [...]."""
    keep = 1.0 - alpha
    T_after = torch.cumprod(keep, -1)                                         # T_{i+1}
    composited = T_after >= STOP_TRANSMITTANCE                                # monotone: stops once
    T_before = torch.cat([torch.ones_like(keep[..., :1]), T_after[..., :-1]], -1)
    weights = torch.where(composited, alpha * T_before, torch.zeros_like(alpha))
    t_final = torch.where(composited, keep, torch.ones_like(keep)).prod(-1)
    return weights, t_final


def composite_torch(p: Projected, tiles: Tiles, H: int, W: int):
    """Per-pixel sums (weight, weight * depth, weight * rgb [3]) [H*W, 5], T_final [H*W] and the
    (pixel, Projected index, weight) triplets of every tile, in padded batches of tiles."""
    device = p.means2d.device
    counts = tiles.starts[1:] - tiles.starts[:-1]                            # [tiles]
    busy = torch.argsort(counts, descending=True)
    busy = busy[counts[busy] > 0]
    ly, lx = torch.meshgrid(torch.arange(TILE, device=device), torch.arange(TILE, device=device), indexing="ij")
    sums = torch.zeros(H * W, 5, device=device)
    t_final = torch.ones(H * W, device=device)
    rows, cols, vals = [], [], []
    i = 0
    while i < len(busy):
        longest = int(counts[busy[i]])
        n = max(1, min(len(busy) - i, BATCH_ELEMENTS // (TILE * TILE * longest)))
        batch = busy[i:i + n]                                                 # [B]
        i += n
        slot = torch.arange(longest, device=device)
        valid = slot < counts[batch, None]                                    # [B, G]
        gauss = tiles.order[(tiles.starts[batch, None] + slot).clamp(max=len(tiles.order) - 1)]
        gauss = torch.where(valid, gauss, torch.zeros_like(gauss))            # [B, G]
        px = ((batch % tiles.tiles_x) * TILE)[:, None] + lx.reshape(1, -1)    # [B, 256]
        py = ((batch // tiles.tiles_x) * TILE)[:, None] + ly.reshape(1, -1)
        alpha = pixel_alpha(p, gauss, px[..., None].float(), py[..., None].float())  # [B, 256, G]
        alpha = alpha * valid[:, None, :]
        weights, T = front_to_back(alpha)
        inside = ((px < W) & (py < H)).reshape(-1)
        pixel = (py * W + px).reshape(-1)[inside]
        parts = torch.cat([weights.sum(-1, keepdim=True), (weights * p.depths[gauss][:, None, :]).sum(-1, keepdim=True),
                           weights @ p.rgb[gauss]], -1).reshape(-1, 5)
        sums[pixel] = parts[inside]
        t_final[pixel] = T.reshape(-1)[inside]
        b, q, g = (weights * inside.reshape(len(batch), -1, 1)).nonzero(as_tuple=True)
        rows.append(py[b, q] * W + px[b, q])
        cols.append(gauss[b, g])
        vals.append(weights[b, q, g])
    cat = lambda parts, dtype: torch.cat(parts) if parts else torch.zeros(0, dtype=dtype, device=device)
    return sums, t_final, (cat(rows, torch.long), cat(cols, torch.long), cat(vals, torch.float32))


def render_reference(p: Projected, H: int, W: int):
    """The brute-force definition: every Gaussian for every pixel, sorted by depth. Same returns as
    composite_torch. Small views only ([H*W, M] alphas)."""
    device = p.means2d.device
    by_depth = torch.argsort(p.depths, stable=True)                          # [M]
    py, px = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device), indexing="ij")
    alpha = pixel_alpha(p, by_depth, px.reshape(-1, 1).float(), py.reshape(-1, 1).float())   # [H*W, M]
    weights, t_final = front_to_back(alpha)
    sums = torch.cat([weights.sum(-1, keepdim=True), (weights * p.depths[by_depth]).sum(-1, keepdim=True),
                      weights @ p.rgb[by_depth]], -1)
    q, g = weights.nonzero(as_tuple=True)
    return sums, t_final, (q, by_depth[g], weights[q, g])


def render_splats(cloud, K, T_world_camera, H: int, W: int, *, background=(0.0, 0.0, 0.0),
                  with_weights: bool = True, min_weight: float = 0.0, method: str = "auto",
                  color: bool = True) -> SplatRender:
    """Render `cloud` (GaussianCloud) in the H x W view of intrinsics K [3, 3] and pose
    T_world_camera [4, 4] onto a constant `background` colour; the matrix keeps the entries of
    weight >= min_weight (all are composited). method: "auto" (compiled tiles on the CPU, torch
    tiles elsewhere), "cpu", "torch" or "reference". Without `color` the Gaussians' colours are not
    evaluated: rgb then holds only the background's share."""
    p = project(cloud, K, T_world_camera, H, W, color)
    device = cloud.means.device
    if method == "auto":
        method = "cpu" if device.type == "cpu" else "torch"
    from engine.splats.composite_cpu import composite_cpu, csr_from_triplets

    if method == "cpu":
        sums, t_final, weights = composite_cpu(p, bin_tiles(p, H, W), H, W, len(cloud), with_weights, min_weight)
    elif method in ("torch", "reference"):
        sums, t_final, (rows, cols, vals) = (composite_torch(p, bin_tiles(p, H, W), H, W) if method == "torch"
                                             else render_reference(p, H, W))
        kept = vals >= min_weight
        weights = csr_from_triplets(rows[kept].cpu().numpy(), cols[kept].cpu().numpy(), vals[kept].cpu().numpy(),
                                    p.ids.cpu().numpy(), (H * W, len(cloud))) if with_weights else None
    else:
        raise ValueError(f"unknown method {method!r}")
    bg = torch.as_tensor(background, dtype=torch.float32, device=device)
    rgb = sums[:, 2:] + t_final[:, None] * bg
    opacity = sums[:, 0]
    far = float(p.depths.max()) if len(p.depths) else 0.0
    depth = torch.where(opacity > 0, sums[:, 1] / opacity.clamp(min=1e-12), torch.full_like(opacity, far))
    return SplatRender(rgb=rgb.reshape(H, W, 3).float(), depth=depth.reshape(H, W).float(),
                       opacity=opacity.reshape(H, W).float(), weights=weights)
