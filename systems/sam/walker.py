"""Seeded random-walker segmentation on a colour + depth feature image (Grady 2006), in numpy/scipy.

The image is a 4-connected graph; an edge between neighbours i, j has weight
w_ij = exp(-|f_i - f_j|^2 / sigma2) (an absolute scale: smooth ramps of shading or depth stay
connected, unlike a scale taken from the image's own mean gradient). Seeds fix x = 1 (object) or x = 0
(background); the other pixels get the probability
that a random walk reaches an object seed first: the solution of L_uu x_u = -L_us x_s, plus an
optional unary prior term gamma * (x - p) for the soft mask prior (Grady's "random walks with priors").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from skimage.color import rgb2lab


def feature_image(image: np.ndarray, depth: np.ndarray | None, depth_weight: float,
                  lightness_weight: float) -> np.ndarray:
    """Lab colour / 100 (L scaled by lightness_weight, so shading counts less than hue) and min-max
    normalised depth * depth_weight: [H, W, 3 or 4] float32.

    Reads image [H, W, 3] uint8 and depth [H, W] (non-finite or <= 0 reads as "far").
    """
    lab = rgb2lab(image).astype(np.float32) / 100.0                   # [H, W, 3], about unit range
    lab[..., 0] *= lightness_weight
    if depth is None:
        return lab
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return lab
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    norm = np.where(valid, (np.where(valid, depth, hi) - lo) / max(hi - lo, 1e-6), 1.0)   # [H, W]
    return np.concatenate([lab, (norm * depth_weight)[..., None].astype(np.float32)], axis=-1)


def chromaticity(image: np.ndarray, dark: float = 10.0) -> np.ndarray:
    """rg chromaticity [H, W, 2] float32 of image [H, W, 3] uint8: (r, g) / (r + g + b), unchanged by
    shading (a colour scaled by any brightness keeps it); `dark` is added to every channel so that
    near-black pixels read as grey instead of noise."""
    rgb = image.astype(np.float32) + dark
    return rgb[..., :2] / rgb.sum(-1, keepdims=True)


def edge_differences(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared feature differences of horizontal [H, W-1] and vertical [H-1, W] neighbour pairs."""
    dh = ((features[:, 1:] - features[:, :-1]) ** 2).sum(-1)
    dv = ((features[1:] - features[:-1]) ** 2).sum(-1)
    return dh, dv


def edge_weights(dh: np.ndarray, dv: np.ndarray, sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """Random-walker weights exp(-d / sigma2) (+1e-6 keeps the graph connected) of the edge differences."""
    return np.exp(-dh / sigma2) + 1e-6, np.exp(-dv / sigma2) + 1e-6


def laplacian(wh: np.ndarray, wv: np.ndarray) -> sp.csr_matrix:
    """Graph Laplacian [H*W, H*W] of a 4-connected grid with edge weights wh [H, W-1], wv [H-1, W]."""
    H, W = wv.shape[0] + 1, wh.shape[1] + 1
    idx = np.arange(H * W).reshape(H, W)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    w = np.concatenate([wh.ravel(), wv.ravel()])
    A = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                      shape=(H * W, H * W)).tocsr()
    return (sp.diags(np.asarray(A.sum(1)).ravel()) - A).tocsr()


def random_walk(L: sp.csr_matrix, seeds: np.ndarray, prior: np.ndarray | None = None,
                gamma: float | np.ndarray = 0.0) -> np.ndarray:
    """Object probability of every node [N] float32.

    Reads the Laplacian L [N, N], seeds [N] int8 (1 object, 0 background, -1 unknown) and an
    optional prior [N] in [0, 1] pulled towards with weight gamma (a scalar or one per node [N]).
    Needs at least one object seed or a prior (else every pixel is background).
    """
    x = np.where(seeds == 1, 1.0, 0.0)                                # [N]
    free = seeds < 0
    if not free.any():
        return x.astype(np.float32)
    A = L[free][:, free]
    rhs = -(L[free][:, ~free] @ x[~free])
    if prior is not None and np.any(gamma > 0):
        pull = np.broadcast_to(np.asarray(gamma, np.float64), x.shape)[free]          # [F]
        A = A + sp.diags(pull, format="csr")
        rhs = rhs + pull * prior[free]
    x[free] = spsolve(A.tocsc(), rhs)
    return np.clip(x, 0.0, 1.0).astype(np.float32)
