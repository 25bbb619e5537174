"""Mask inverse rendering (SA3D): a view's sparse pixel->primitive matrix, rendered masks, votes, averaging.

The mask state V holds one value per primitive of the frozen scene (systems/inverse/representation.py;
the voxels of the field's grid today). For the voxel field, every kept ray sample i of a view has
a compositing weight w_i and a normalised grid coordinate x_i, and the rendered mask of V is

    M(r) = sum_i w_i * V(x_i)        (V trilinear, grid_sample align_corners=True, border padding)

which is linear in V: M = A @ V with A a sparse [H*W, Z*Y*X] matrix that never changes for a view.
`build_view_weights` coalesces the eight trilinear corner contributions of every sample into A
once (`view_weights_from_rows` takes rows already coalesced, from any representation); afterwards
a view costs two sparse products, whatever the primitives are. Since the projection loss

    L = - sum_r S(r) M(r) + lambda * sum_r (1 - S(r)) M(r)        (S: the binary SAM mask)

is linear in V too, a view's vote -dL/dV = A^T (S - lambda (1 - S)) has a closed form, and the
view-averaged update of the reference (V *= count; V += vote; count += changed; V /= count) only
touches the primitives the view sees. `naive_vote` / `naive_render` are the autograd reference paths.

Array types: the lifting runs on the CPU in numpy and scipy (votes, masks, renders, the matrix);
only the voxel field's sample coalescing (`build_view_weights`, from the torch renderer) and the
autograd reference paths take torch tensors.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse

MASK_COVERAGE = 0.5     # a view's 2D mask: pixels whose weight lies on the 3D mask by more than this share
ROW_BLOCKS = 2          # the matrix products run on this many row blocks, the update on this many
                        # voxel ranges, in threads (scipy's and numpy's loops release the GIL). Fixed,
                        # not the core count: A^T S sums the blocks' partial sums in block order, so
                        # results are identical on every machine.


@dataclass(frozen=True, eq=False)
class ViewWeights:
    """The sparse pixel->primitive matrix of one view, restricted to the primitives the view touches.

    `A` is a scipy CSR matrix [H*W, U] float32 with int32 indices (U = len(primitives)):
    A[r, u] = the weight of pixel r on primitive `primitives[u]` (for voxels: the sum over the
    samples of ray r of w_i * the trilinear weight of that voxel at x_i); `col_sums` = A^T 1;
    `pixel_weight` = A 1 + the weight that reaches a constant backdrop (the pixel's modelled weight:
    what a 2D mask asks the majority of). No transposed copy is kept: A^T S runs on the CSC transposes
    of `blocks` (row blocks of A sharing its arrays), as fast as a prebuilt CSR transpose.
    (scipy's CSR products run ~3x faster than torch's on the CPU.)
    """
    H: int
    W: int
    mask_shape: tuple[int, ...]       # an object's mask state (MaskLayout.shape): Z, Y, X for voxels
    primitives: np.ndarray            # [U] int64 flat ids into mask_shape (voxels: (z * Y + y) * X + x), ascending
    A: sparse.csr_matrix              # [H*W, U] float32
    col_sums: np.ndarray              # [U] float32
    pixel_weight: np.ndarray          # [H*W] float32
    blocks: tuple                     # ROW_BLOCKS (first row, CSR rows of A, their CSC transpose): A's arrays

    @property
    def nnz(self) -> int:
        return int(self.A.nnz)

    def nbytes(self) -> int:
        """Memory held by the matrix, the primitive list, the column sums and the pixel weights."""
        mats = self.A.data.nbytes + self.A.indices.nbytes + self.A.indptr.nbytes
        return int(mats + self.primitives.nbytes + self.col_sums.nbytes + self.pixel_weight.nbytes)


def trilinear_corners(coords: torch.Tensor, grid_shape: tuple[int, int, int]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8 voxels and trilinear weights of normalised coords [S, 3] (x, y, z), as grid_sample.

    align_corners=True, border padding (coords clamped to the box). Returns voxel ids [S, 8] int64
    (flat, (z * Y + y) * X + x) and weights [S, 8] float32 summing to 1 per row.
    """
    Z, Y, X = grid_shape
    size = torch.tensor([X, Y, Z], dtype=coords.dtype, device=coords.device)        # [3]
    pos = ((coords.clamp(-1.0, 1.0) + 1.0) * 0.5 * (size - 1))                     # [S, 3]
    low = torch.minimum(pos.floor(), size - 2).clamp(min=0)                         # [S, 3]
    frac = pos - low                                                                # [S, 3]
    low = low.long()
    high = torch.minimum(low + 1, size.long() - 1)     # == low on an axis of size 1 (frac is 0)
    n = coords.shape[0]
    corner = torch.stack([low, high], dim=1)                                        # [S, 2, 3] (d, axis)
    w = torch.stack([1 - frac, frac], dim=1)                                        # [S, 2, 3]
    # corner order (dz, dy, dx) = 000, 001, 010, ...: broadcast over [S, dz, dy, dx]
    ids = (corner[:, :, None, None, 2] * Y + corner[:, None, :, None, 1]) * X + corner[:, None, None, :, 0]
    weights = w[:, None, None, :, 0] * w[:, None, :, None, 1] * w[:, :, None, None, 2]
    return ids.reshape(n, 8), weights.reshape(n, 8).float()


def build_view_weights(ray_ids: torch.Tensor, coords: torch.Tensor, weights: torch.Tensor,
                       H: int, W: int, grid_shape: tuple[int, int, int], *,
                       backdrop: np.ndarray | None = None, min_entry: float = 0.0,
                       chunk_rays: int = 16384) -> ViewWeights:
    """Coalesce a view's kept samples into its sparse matrix (once per view and field).

    Reads ray_ids [S] int64 (row-major pixel index), coords [S, 3] normalised grid coords,
    weights [S] compositing weights, and optionally backdrop [H*W]: the weight of each pixel that
    reaches a constant background colour (no voxel; part of the pixel's modelled weight). Corner
    entries of one (pixel, voxel) pair are summed; summed entries <= `min_entry` are dropped. Work
    is split by ray ranges so that memory stays bounded.
    """
    Z, Y, X = grid_shape
    ray_ids, coords, weights = ray_ids.long().cpu(), coords.float().cpu(), weights.float().cpu()
    order = torch.argsort(ray_ids, stable=True)
    ray_ids, coords, weights = ray_ids[order], coords[order], weights[order]
    corners, tri = trilinear_corners(coords, grid_shape)                            # [S, 8] each
    touched = torch.zeros(Z * Y * X, dtype=torch.bool)
    touched[corners.reshape(-1)] = True
    voxels = touched.nonzero().squeeze(1)                                           # [U]
    local = torch.full((Z * Y * X,), -1, dtype=torch.int32)
    local[voxels] = torch.arange(voxels.numel(), dtype=torch.int32)
    bounds = torch.searchsorted(ray_ids, torch.arange(0, H * W + chunk_rays, chunk_rays)).tolist()
    blocks = []
    for first_ray, start, stop in zip(range(0, H * W, chunk_rays), bounds[:-1], bounds[1:]):
        n_rows = min(chunk_rays, H * W - first_ray)
        rows = (ray_ids[start:stop] - first_ray).repeat_interleave(8).numpy()       # [s * 8]
        cols = local[corners[start:stop].reshape(-1)].numpy()                       # [s * 8]
        vals = (weights[start:stop, None] * tri[start:stop]).reshape(-1).numpy()    # [s * 8]
        block = sparse.coo_matrix((vals, (rows, cols)), shape=(n_rows, voxels.numel())).tocsr()
        if min_entry > 0:
            block.data[block.data <= min_entry] = 0
        block.eliminate_zeros()
        blocks.append(block)
    A = sparse.vstack(blocks, format="csr").astype(np.float32)
    A.sort_indices()
    return _view_weights(A, voxels.numpy(), H, W, grid_shape, backdrop)


def view_weights_from_rows(indptr: np.ndarray, primitive_ids: np.ndarray, values: np.ndarray, H: int, W: int,
                           mask_shape: tuple[int, ...], *, backdrop: np.ndarray | None = None) -> ViewWeights:
    """A view's matrix from its rows already coalesced (engine/field/frozen_march.py's footprint, or
    any representation's): indptr [H*W + 1], flat primitive ids [E] into mask_shape, ascending within
    each row, values [E]; backdrop as in build_view_weights. The columns are the primitives that
    occur, renumbered in ascending order (so rows stay sorted)."""
    seen = np.zeros(math.prod(mask_shape), dtype=bool)
    seen[primitive_ids] = True
    primitives = np.flatnonzero(seen)                                               # [U]
    local = np.cumsum(seen, dtype=np.int32) - 1                                     # [N] column of each primitive
    A = sparse.csr_matrix((values.astype(np.float32, copy=False), local[primitive_ids], indptr.astype(np.int32)),
                          shape=(H * W, primitives.size))
    A.has_sorted_indices = True
    return _view_weights(A, primitives.astype(np.int64), H, W, mask_shape, backdrop)


def _view_weights(A: sparse.csr_matrix, primitives: np.ndarray, H: int, W: int, mask_shape, backdrop) -> ViewWeights:
    """ViewWeights of CSR A [H*W, U] over `primitives`: column sums, pixel weights (+ backdrop), row blocks."""
    col_sums = np.asarray(A.sum(axis=0), dtype=np.float32).reshape(-1)              # [U]
    pixel_weight = np.asarray(A.sum(axis=1), dtype=np.float32).reshape(-1)          # [H*W]
    if backdrop is not None:
        pixel_weight += np.asarray(backdrop, dtype=np.float32).reshape(-1)
    return ViewWeights(H, W, tuple(mask_shape), primitives, A, col_sums, pixel_weight, row_blocks(A, ROW_BLOCKS))


def compressed_view(kind, shape: tuple[int, int], data: np.ndarray, indices: np.ndarray,
                    indptr: np.ndarray) -> sparse.spmatrix:
    """A scipy CSR or CSC matrix (`kind`) over these arrays as they are: no checks, no copies.
    scipy's constructor (`.T` included) copies an array that is a view of one over twice its size
    (scipy._lib._util._prune_array): a row block of A, an array of a memory-mapped cache file."""
    matrix = kind(shape, dtype=data.dtype)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr
    return matrix


def row_blocks(A: sparse.csr_matrix, n: int) -> tuple:
    """Split CSR A [R, U] into n consecutive row blocks of about equal numbers of entries, without
    copies: ((first row, CSR rows [r, U], their transpose as CSC [U, r]), ...) sharing A's arrays."""
    bounds = np.searchsorted(A.indptr, np.linspace(0, A.nnz, n + 1)).clip(0, A.shape[0])
    bounds[0], bounds[-1] = 0, A.shape[0]
    out = []
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        a, b = int(A.indptr[r0]), int(A.indptr[r1])
        arrays = (A.data[a:b], A.indices[a:b], A.indptr[r0:r1 + 1] - a)
        rows = int(r1 - r0)
        out.append((int(r0), compressed_view(sparse.csr_matrix, (rows, A.shape[1]), *arrays),
                    compressed_view(sparse.csc_matrix, (A.shape[1], rows), *arrays)))
    return tuple(out)


@cache
def _pool() -> ThreadPoolExecutor:
    """The worker threads of the blocked products (created once)."""
    return ThreadPoolExecutor(max_workers=ROW_BLOCKS, thread_name_prefix="sa3d-spmv")


def blocked_matvec(view: ViewWeights, x: np.ndarray) -> np.ndarray:
    """A @ x for x [U] (or [U, K]) float32 -> [H*W] (or [H*W, K]); each row block in its own thread."""
    parts = list(_pool().map(lambda rb: rb[1] @ x, view.blocks))
    return np.concatenate(parts, axis=0)


def blocked_rmatvec(view: ViewWeights, s: np.ndarray) -> np.ndarray:
    """A^T s for s [H*W] float32 -> [U] float32: per-block A_b^T s_b (the CSC views), summed in block order."""
    parts = list(_pool().map(lambda rb: rb[2] @ s[rb[0]:rb[0] + rb[1].shape[0]], view.blocks))
    total = parts[0].astype(np.float32, copy=True)
    for part in parts[1:]:
        total += part
    return total


def render_mask(view: ViewWeights, votes: np.ndarray) -> np.ndarray:
    """Soft masks M = A @ V of every channel: votes [K, N] (or [K, *mask_shape]) -> [K, H, W] float32."""
    return _render_primitives(view, _on_primitives(view, votes))


def render_coverage(view: ViewWeights, votes: np.ndarray) -> np.ndarray:
    """The share of each pixel's modelled weight that the final 3D masks V > 0 cover:
    A @ [V > 0] / pixel_weight -> [K, H, W] float32 in [0, 1] (0 where the pixel has no weight)."""
    covered = _render_primitives(view, _on_primitives(view, votes) > 0)             # [K, H, W]
    total = view.pixel_weight.reshape(1, view.H, view.W)
    return np.where(total > 0, covered / np.maximum(total, np.float32(1e-12)), np.float32(0.0))


def _on_primitives(view: ViewWeights, votes: np.ndarray) -> np.ndarray:
    """votes [K, N] (or [K, *mask_shape]) -> [K, U]: the values on the primitives the view touches
    (a gather of U of the N values: the rest of the grid is never read)."""
    return np.take(np.asarray(votes).reshape(votes.shape[0], -1), view.primitives, axis=1)


def _render_primitives(view: ViewWeights, local: np.ndarray) -> np.ndarray:
    """A @ local for local [K, U] (any real or bool dtype) -> [K, H, W] float32."""
    local = local.astype(np.float32, copy=False)
    if local.shape[0] == 1:                                  # one channel: CSR mat-vec, no transposes
        rendered = blocked_matvec(view, local[0])[None]                             # [1, H*W]
    else:
        rendered = np.ascontiguousarray(blocked_matvec(view, np.ascontiguousarray(local.T)).T)  # [K, H*W]
    return rendered.reshape(-1, view.H, view.W)


def coverage_mask(view: ViewWeights, votes: np.ndarray) -> np.ndarray:
    """bool [K, H, W]: pixels whose modelled weight the final 3D masks (V > 0) cover by more than
    half (render_coverage > MASK_COVERAGE): the 2D masks of a segmentation (every view, exports,
    replays).

    Thresholding the rendered *soft* mask at M > 0 instead (the reference's 2D output) marks every
    pixel whose ray grazes a positive voxel: on a trained field, whose density is soft at
    silhouettes, that is a one-pixel halo around the object (bench/bench_sa3d.py reports both).
    Asking for a majority of the pixel keeps the silhouette where the field's own opacity puts it:
    a grazing ray in front of the backdrop spends most of its weight there. The share is of the
    weight the matrix holds (samples under the weight cutoff are left out), so a soft field, whose
    weight is spread over many faint samples, still gives whole masks.
    """
    return render_coverage(view, votes) > MASK_COVERAGE


def instance_ids(view: ViewWeights, votes: np.ndarray) -> np.ndarray:
    """uint8 [H, W] instance ids of channels votes [K, ...]: 1 + the channel covering the largest share
    of the pixel where that share is over MASK_COVERAGE (at most one can be), else 0."""
    if votes.shape[0] == 0:
        return np.zeros((view.H, view.W), np.uint8)
    coverage = render_coverage(view, votes)                                         # [K, H, W]
    index = coverage.argmax(axis=0)                                                 # [H, W]
    best = np.take_along_axis(coverage, index[None], axis=0)[0]                     # [H, W]
    return np.where(best > MASK_COVERAGE, index + 1, 0).astype(np.uint8)


def projection_loss(rendered: torch.Tensor, sam_mask: torch.Tensor, lam: float) -> torch.Tensor:
    """L = -sum S M + lambda sum (1 - S) M for rendered [H, W] and binary sam_mask [H, W] (the
    autograd reference's loss: torch)."""
    s = sam_mask.float()
    return -(s * rendered).sum() + lam * ((1.0 - s) * rendered).sum()


def view_votes(view: ViewWeights, sam_mask: np.ndarray, channel: int, channels: int, lam: float,
               *, exclusive: bool = True) -> np.ndarray:
    """-dL/dV on the primitives the view touches, for every channel: [K, U] float32.

    Channel `channel` gets A^T (S - lambda (1 - S)) = (1 + lambda) A^T S - lambda A^T 1. With
    `exclusive`, every other channel j gets -A^T S: the reference's multi-object term
    sum_r S_k(r) M_j(r), which pushes the other objects down where this object's SAM mask is.
    """
    s = np.asarray(sam_mask, dtype=np.float32).reshape(-1)                          # [H*W]
    inside = blocked_rmatvec(view, s)         # [U] A^T S; A_b.T are CSC views of A (no copies)
    own = inside * np.float32(1.0 + lam)
    own -= np.float32(lam) * view.col_sums
    votes = np.empty((channels, inside.size), dtype=np.float32)                    # [K, U]
    votes[:] = -inside if exclusive and channels > 1 else 0.0
    votes[channel] = own
    return votes


def accumulate_votes(votes: np.ndarray, counts: np.ndarray, view: ViewWeights, vote: np.ndarray) -> int:
    """The reference's view-averaged step, in place, on the primitives this view touched.

    votes, counts [K, N] (or [K, *mask_shape]) float32 C-contiguous; vote [K, U]. For every
    primitive whose vote is non-zero ("changed"): V = (V * count + vote) / (count + 1); count += 1.
    Returns how many (channel, primitive) entries changed. The primitives are split into
    ROW_BLOCKS ranges updated in threads (each by one thread: the result does not depend on the split).
    """
    if not (votes.flags.c_contiguous and counts.flags.c_contiguous):
        raise ValueError("accumulate_votes updates in place: votes and counts must be contiguous")
    flat_v = votes.reshape(votes.shape[0], -1)                                      # views, no copies
    flat_c = counts.reshape(counts.shape[0], -1)
    ids = view.primitives                                                           # [U]
    bounds = np.linspace(0, ids.size, ROW_BLOCKS + 1).astype(np.int64)
    jobs = [(k, a, b) for k in range(vote.shape[0]) for a, b in zip(bounds[:-1], bounds[1:])]
    return sum(_pool().map(lambda j: _average_into(flat_v[j[0]], flat_c[j[0]], ids[j[1]:j[2]],
                                                   vote[j[0], j[1]:j[2]]), jobs))


def _average_into(row_v: np.ndarray, row_c: np.ndarray, ids: np.ndarray, vote: np.ndarray) -> int:
    """One channel's averaged step on primitives `ids` of its rows row_v, row_c [N] (in place)."""
    hit = vote != 0                                                                 # [n]
    c, v = row_c.take(ids), row_v.take(ids)                                         # [n] gathers
    total = v * c
    total += vote
    c_new = c + hit                                                                 # [n] float32
    np.divide(total, c_new, out=v, where=hit)                                       # untouched: V kept
    row_v[ids] = v
    row_c[ids] = c_new
    return int(np.count_nonzero(hit))


def binarise_rendered(rendered: np.ndarray) -> np.ndarray:
    """The reference's binary rendered mask: M > 0 and M > mean(M). [H, W] -> bool [H, W], as one
    comparison M > max(mean(M), 0)."""
    M = np.asarray(rendered, dtype=np.float32)
    return M > max(float(M.mean()), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one shape; 0 when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a) + np.count_nonzero(b) - inter
    return inter / union if union else 0.0


def gate_iou(rendered: np.ndarray, sam_mask: np.ndarray) -> float:
    """IoU between a SAM mask [H, W] and the binarised rendered mask [H, W] (the view gate)."""
    return mask_iou(binarise_rendered(rendered), sam_mask)


# ---- the autograd reference path (tests and benchmark) -----------------------------------------
def naive_render(votes: torch.Tensor, ray_ids: torch.Tensor, coords: torch.Tensor,
                 weights: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """M of one channel by grid_sample of votes [Z, Y, X] at every sample; differentiable. -> [H, W]."""
    grid = votes[None, None]                                                        # [1,1,Z,Y,X]
    pts = coords.float().reshape(1, 1, 1, -1, 3)
    values = F.grid_sample(grid, pts, mode="bilinear", padding_mode="border",
                           align_corners=True).reshape(-1)                          # [S]
    rendered = torch.zeros(H * W, dtype=values.dtype).index_add(0, ray_ids.long(), weights * values)
    return rendered.reshape(H, W)


def naive_vote(votes: torch.Tensor, ray_ids: torch.Tensor, coords: torch.Tensor,
               weights: torch.Tensor, sam_mask: torch.Tensor, lam: float) -> torch.Tensor:
    """-dL/dV of one channel by autograd: re-render through grid_sample and backpropagate.

    votes [Z, Y, X] (not modified) -> [Z, Y, X].
    """
    H, W = sam_mask.shape
    grid = votes.detach().clone().requires_grad_(True)
    loss = projection_loss(naive_render(grid, ray_ids, coords, weights, H, W), sam_mask, lam)
    loss.backward()
    return -grid.grad
