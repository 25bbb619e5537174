"""Propagation never ends below its own start: compare the pass with the mask it began from.

The start (in `segment`: the single-view lift of the prompted view) is confident on a pixel of a
view when most of the pixel's weight lies on voxels that some view of the start voted on (counts
> 0): the pixel sees a surface the start has an opinion about. A view is confident when nearly all
of the pixels of the two masks (start and pass) are. On those views the IoU of the two masks,
counted on confident pixels, says how much the pass changed what the start already knew. When the
mean falls below AGREEMENT, the pass removed what its start was sure of: the start's voxels come
back (the mask becomes the union of both), which bench/bench_real.py measured as better on held-out
masks than either grid alone in that case; the pass's additions are kept either way.
"""

from __future__ import annotations

import numpy as np
import torch

from systems.inverse.ops import MASK_COVERAGE, ViewWeights, mask_iou, render_coverage

AGREEMENT = 0.8          # mean IoU on confident views below this: the pass disagrees with its start
CONFIDENT_SHARE = 0.9    # a view is confident when this share of its masks' pixels are


def agreement_grids(start: torch.Tensor, start_counts: torch.Tensor, propagated: torch.Tensor) -> np.ndarray:
    """[3, N] float32: the start's votes, the pass's votes and +1 / -1 where the start was voted on
    or not, each thresholded by render_coverage (> 0): built once per check, read by every view.

    start, start_counts, propagated: [Z, Y, X] (or flat) votes and counts of one channel.
    """
    return np.stack([start.reshape(-1).numpy(), propagated.reshape(-1).numpy(),
                     np.where(start_counts.reshape(-1).numpy() > 0, 1.0, -1.0)]).astype(np.float32)


def view_agreement(view: ViewWeights, grids: np.ndarray) -> float | None:
    """IoU of the start's and the pass's masks of one view on the pixels where the start is
    confident, or None when the view is not confident (or both masks are empty).
    grids: agreement_grids(...) [3, N]."""
    share = render_coverage(view, grids) > MASK_COVERAGE                             # [3, H, W]
    before, after, known = share
    both = before | after
    if not both.any() or (both & known).sum() < CONFIDENT_SHARE * both.sum():
        return None
    return mask_iou(before & known, after & known)


def keep_supported(start: torch.Tensor, propagated: torch.Tensor) -> torch.Tensor:
    """The union of the two masks as votes: the pass's votes, and the start's where only the start
    is positive. [Z, Y, X] -> [Z, Y, X]."""
    return torch.where((start > 0) & (propagated <= 0), start, propagated)
