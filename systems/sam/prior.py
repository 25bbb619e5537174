"""The mask prior a propagated view hands to a segmenter with `rendered_prior` (the fallback): what
the 3D mask knows about each pixel of the view.

A pixel's modelled weight lies on voxels of three kinds: inside the 3D mask (V > 0), outside it
but voted on by some view (V <= 0, counts > 0: known not to be the object), and never voted on
(counts == 0: no view has said anything about them; the far side of an object walked around).
The prior is the share on the first kind plus half the share on the third: 1 where the 3D mask
covers the pixel, 0 where it knows the pixel is not the object (weight that reaches the scene's
background counts as known), 0.5 where it has no opinion, so that the segmenter lets the view's
own edges decide there instead of reading silence as background.
"""

from __future__ import annotations

import numpy as np

from systems.inverse.ops import ViewWeights, render_coverage


def rendered_prior(view: ViewWeights, votes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """float32 [H, W] in [0, 1] (module docstring). votes, counts: [Z, Y, X] (or flat) of one channel."""
    unknown = np.where(np.asarray(counts).reshape(-1) > 0, -1.0, 1.0).astype(np.float32)    # [N]
    share = render_coverage(view, np.stack([np.asarray(votes, np.float32).reshape(-1), unknown]))   # [2, H, W]
    return (share[0] + 0.5 * share[1]).astype(np.float32)
