"""Cross-view self-prompting (SA3D): positive point prompts picked from a rendered soft mask.

For a rendered mask M [H, W] and depth [H, W], every pixel p gets G(p) = (row/H, col/W,
depth_normalised(p)) (depth min-max normalised over the image).
1. p0 = argmax M; if M(p0) <= 0 there is no prompt.
2. r = max(floor(sqrt(area / pi)) // 2, 2), area = sum clip(M, 0, 1); a square of half-size r
   around every chosen point is excluded from later picks.
3. Each further pick maximises M(p) - min_q M(q) d(G(p), G(q)) over the chosen points q, with d
   the Euclidean distance min-max normalised over the image; stop when the best score is <= 0 or
   `num_prompts` points are chosen.
Points are pixels (x, y) = (column, row), all positive (label 1).
"""

from __future__ import annotations

import math

import torch

NUM_PROMPTS = 3   # the reference's default number of self-prompts per view


def prompt_radius(rendered: torch.Tensor) -> int:
    """Half-size of the exclusion square: max(floor(sqrt(sum clip(M, 0, 1) / pi)) // 2, 2)."""
    area = float(rendered.clamp(0.0, 1.0).sum())
    return max(int(math.sqrt(area / math.pi)) // 2, 2)


def pixel_features(depth: torch.Tensor) -> torch.Tensor:
    """G(p) = (row / H, col / W, min-max normalised depth) for depth [H, W] -> [H, W, 3]."""
    H, W = depth.shape
    rows = (torch.arange(H, dtype=torch.float32) / H)[:, None].expand(H, W)
    cols = (torch.arange(W, dtype=torch.float32) / W)[None, :].expand(H, W)
    d = depth.float()
    span = float(d.max() - d.min()) if d.numel() else 0.0
    d = (d - d.min()) / span if span > 0 else torch.zeros_like(d)
    return torch.stack([rows, cols, d], dim=-1)


def select_self_prompts(rendered: torch.Tensor, depth: torch.Tensor,
                        num_prompts: int = NUM_PROMPTS) -> torch.Tensor:
    """Positive prompts from a soft mask [H, W] and depth [H, W] -> int64 [P, 2] (x, y), P <= num_prompts.

    Empty ([0, 2]) when the mask has no positive pixel. See the module docstring for the rule.
    """
    H, W = rendered.shape
    M = rendered.float()
    flat = M.reshape(-1)
    first = int(torch.argmax(flat))
    if float(flat[first]) <= 0 or num_prompts < 1:
        return torch.zeros(0, 2, dtype=torch.long)
    r = prompt_radius(M)
    G = pixel_features(depth).reshape(-1, 3)                                        # [H*W, 3]
    excluded = torch.zeros(H, W, dtype=torch.bool)
    best = torch.full((H * W,), -math.inf)                                          # [H*W]
    chosen = [first]
    while True:
        y, x = divmod(chosen[-1], W)
        excluded[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] = True
        if len(chosen) >= num_prompts:
            break
        dist = (G - G[chosen[-1]]).norm(dim=1)                                      # [H*W]
        span = float(dist.max() - dist.min())
        dist = (dist - dist.min()) / span if span > 0 else torch.zeros_like(dist)
        best = torch.maximum(best, flat - dist * float(flat[chosen[-1]]))           # min decay
        score = best.masked_fill(excluded.reshape(-1), -math.inf)
        pick = int(torch.argmax(score))
        if float(score[pick]) <= 0:
            break
        chosen.append(pick)
    ids = torch.tensor(chosen, dtype=torch.long)
    return torch.stack([ids % W, ids // W], dim=1)
