"""The random walk's symmetric solver gives the walk of a general sparse solve (the masks unchanged)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from systems.sam.walker import colour_features, edge_differences, edge_weights, grain, laplacian, random_walk


def general_walk(L, seeds, prior, gamma):
    """The same system solved by spsolve's general (pivoting, COLAMD) path: the reference."""
    x = np.where(seeds == 1, 1.0, 0.0)
    free = seeds < 0
    A = L[free][:, free] + sp.diags(gamma[free])
    rhs = -(L[free][:, ~free] @ x[~free]) + gamma[free] * prior[free]
    x[free] = spsolve(A.tocsc(), rhs)
    return np.clip(x, 0.0, 1.0)


def test_the_walk_with_a_prior_matches_a_general_sparse_solve():
    rng = np.random.default_rng(3)
    h, w = 48, 64
    image = np.full((h, w, 3), (90, 120, 60), np.uint8)
    image[12:36, 16:44] = (200, 80, 70)                                   # a red object on green
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    features = colour_features(image, 0.35)
    dh, dv = edge_differences(features)
    L = laplacian(*edge_weights([(dh, dv, grain(dh, dv, 1.0, 0.003))]))
    prior = np.zeros((h, w), np.float32)
    prior[10:38, 14:50] = 1.0                                             # overshoots the object's right side
    seeds = -np.ones((h, w), np.int8)
    seeds[:3], seeds[20:28, 26:34] = 0, 1
    gamma = np.abs(2.0 * prior - 1.0).ravel() / 40.0
    fast = random_walk(L, seeds.ravel(), prior.ravel(), gamma)
    reference = general_walk(L, seeds.ravel(), prior.ravel(), gamma)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    assert np.array_equal(fast > 0.5, reference > 0.5)
    walk = fast.reshape(h, w)                                             # a real walk, not all one side:
    assert (walk[14:34, 18:42] > 0.5).all() and (walk[40:, :10] < 0.5).all()
