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

import numpy as np

PROMPT_BOX_PAD = 0.25   # a box around the rendered mask grows by this share of its size per side


def prompt_radius(rendered: np.ndarray) -> int:
    """Half-size of the exclusion square: max(floor(sqrt(sum clip(M, 0, 1) / pi)) // 2, 2)."""
    area = float(np.clip(np.asarray(rendered, dtype=np.float32), 0.0, 1.0).sum())
    return max(int(math.sqrt(area / math.pi)) // 2, 2)


def select_self_prompts(rendered: np.ndarray, depth: np.ndarray, num_prompts: int) -> np.ndarray:
    """Positive prompts from a soft mask [H, W] and depth [H, W] -> int64 [P, 2] (x, y), P <= num_prompts.

    Empty ([0, 2]) when the mask has no positive pixel. See the module docstring for the rule.
    Exactly the same picks on the bounding box of M > 0 only: a pick needs a positive score and
    decays are >= 0, so only pixels with M > 0 can win (and clip(M, 0, 1) is 0 outside the box).
    Computed in numpy: a pick is a few passes over the image, where torch's per-operation
    overhead on the CPU would cost more than the arithmetic.
    """
    M = np.asarray(rendered, dtype=np.float32)                                        # [H, W]
    H, W = M.shape
    first = int(np.argmax(M))
    if M.flat[first] <= 0 or num_prompts < 1:
        return np.zeros((0, 2), np.int64)
    box = _positive_box(M)
    y0, x0 = box[0], box[2]
    crop = M[box[0]:box[1], box[2]:box[3]]                                            # [h, w] view
    h, w = crop.shape
    r = prompt_radius(crop)
    depth01 = normalised_depth(np.asarray(depth, dtype=np.float32))                   # [H, W]
    best = np.full((h, w), -np.inf, dtype=np.float32)                                 # [h, w]
    excluded = np.zeros((h, w), dtype=bool)                                           # [h, w]
    chosen = [divmod(first, W)]                                                       # (y, x) image
    while True:
        y, x = chosen[-1]
        excluded[max(y - y0 - r, 0):max(y - y0 + r + 1, 0), max(x - x0 - r, 0):max(x - x0 + r + 1, 0)] = True
        if len(chosen) >= num_prompts:
            break
        decay = normalised_distance(depth01, x, y, box)                               # [h, w]
        decay *= M[y, x]
        np.maximum(best, np.subtract(crop, decay, out=decay), out=best)               # min decay
        score = np.where(excluded, -np.inf, best)
        pick = int(np.argmax(score))
        if score.flat[pick] <= 0:
            break
        py, px = divmod(pick, w)
        chosen.append((py + y0, px + x0))
    return np.array([[x, y] for y, x in chosen], np.int64).reshape(-1, 2)


def prompt_box(mask: np.ndarray, pad: float = PROMPT_BOX_PAD) -> np.ndarray | None:
    """float32 [4] (x0, y0, x1, y1): the bounding box of a bool mask [H, W] (the binarised rendered
    mask of the IoU gate) grown by `pad` of its size on every side, clipped to the image; None when
    the mask is empty."""
    inside = np.asarray(mask, dtype=bool)                                             # [H, W]
    if not inside.any():
        return None
    H, W = inside.shape
    y0, y1, x0, x1 = _positive_box(inside)
    dy, dx = pad * (y1 - y0), pad * (x1 - x0)
    return np.array([max(x0 - dx, 0.0), max(y0 - dy, 0.0), min(x1 + dx, W), min(y1 + dy, H)], np.float32)


def normalised_depth(depth: np.ndarray) -> np.ndarray:
    """Depth [H, W] min-max normalised to [0, 1] over the image (zeros when it is constant)."""
    lo, hi = (float(depth.min()), float(depth.max())) if depth.size else (0.0, 0.0)
    return (depth - lo) / (hi - lo) if hi > lo else np.zeros_like(depth)


def normalised_distance(depth01: np.ndarray, x: int, y: int,
                        box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """d(G(p), G(q)) / max_p d for q = (x, y): [H, W] float32 in [0, 1] (the minimum, at q, is 0).

    With box = (y0, y1, x0, x1) only that window [y1 - y0, x1 - x0] is returned; the
    normalisation is still the maximum over the whole image. Separable: (row - row_q)^2 / H^2 and
    (col - col_q)^2 / W^2 are 1-D, broadcast over the image."""
    H, W = depth01.shape
    dr = np.square((np.arange(H, dtype=np.float32) - y) / H)[:, None]                # [H, 1]
    dc = np.square((np.arange(W, dtype=np.float32) - x) / W)[None, :]                # [1, W]
    d2 = np.subtract(depth01, depth01[y, x])                                          # [H, W]
    np.square(d2, out=d2)
    d2 += dr
    d2 += dc
    top = float(d2.max())
    if box is not None:
        d2 = d2[box[0]:box[1], box[2]:box[3]].copy()                                  # [h, w]
    if top > 0:
        d2 /= top
        np.sqrt(d2, out=d2)
    return d2


def _positive_box(M: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the bounding box of M > 0 for M [H, W] (float, or bool) with a positive pixel."""
    pos = M > 0                                                                       # [H, W]
    rows, cols = np.flatnonzero(pos.any(1)), np.flatnonzero(pos.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
