"""The mask prior a propagated view hands to a segmenter with `rendered_prior` (the fallback): what
the 3D mask knows about each pixel of the view.

Each voxel gets a belief that it is the object: 1 inside the 3D mask (V > 0); 0.5 where no view has
voted on it (counts == 0: no opinion; the far side of an object walked around); 0.5 / (c + 1) where
c views voted on it and the mask does not hold it: one view's "not the object" reads 0.25, two
views' 0.17, and so on, because one view's no is weak evidence (a grazing ray at a silhouette, a
thin shell seen from inside, a first mask that missed a part) and it firms up as views agree.
A pixel's prior is the weight-averaged belief of its voxels. Weight that reaches the scene's
backdrop (no voxel) is background, but it only counts where it is most of the pixel's weight (a
ray through empty space); where voxels carry most of it (at least MASK_COVERAGE, the rule of a
view's 2D masks) the average is over the voxels alone, so that a soft field, whose rays leak part
of their weight to the backdrop everywhere, does not read as background on the object itself.
"""

from __future__ import annotations

import numpy as np

from systems.inverse.ops import MASK_COVERAGE, ViewWeights, render_mask


def voxel_belief(votes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """float32 [N]: 1 where votes > 0, 0.5 where counts == 0, else 0.5 / (counts + 1) (module docstring)."""
    v, c = np.asarray(votes, np.float32).reshape(-1), np.asarray(counts, np.float32).reshape(-1)
    return np.where(v > 0, 1.0, np.where(c > 0, 0.5 / (c + 1.0), 0.5)).astype(np.float32)


def rendered_prior(view: ViewWeights, votes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """float32 [H, W] in [0, 1] (module docstring). votes, counts: [Z, Y, X] (or flat) of one channel."""
    ones = np.ones_like(np.asarray(votes, np.float32).reshape(1, -1))
    believed, on_voxels = render_mask(view, np.stack([voxel_belief(votes, counts), ones[0]]))   # [H, W] each
    total = view.pixel_weight.reshape(view.H, view.W)
    mostly_voxels = on_voxels >= MASK_COVERAGE * total
    prior = believed / np.maximum(np.where(mostly_voxels, on_voxels, total), np.float32(1e-12))
    return np.clip(np.where(total > 0, prior, 0.0), 0.0, 1.0).astype(np.float32)
