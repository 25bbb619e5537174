"""The one interface every 2D segmenter backend implements, and the prompt checks they share.

Conventions (as segment-anything's predictor): points are (x, y) = (column, row) pixels, labels
1 = foreground and 0 = background, a box is (x0, y0, x1, y1) in pixels, a mask prior is a soft
[H, W] float map (> 0.5 reads as "inside"); propagation passes one to a segmenter with
`rendered_prior`: each pixel's share of weight on the 3D mask (inverse.ops.render_coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from systems.sam.errors import PromptError


@dataclass(frozen=True)
class SegmentResult:
    masks: np.ndarray    # [C, H, W] bool, C = 1 without multimask, else up to 3 distinct candidates
    scores: np.ndarray   # [C] float32, higher is better


@dataclass(frozen=True)
class Prompt:
    """A checked prompt: every array present has the documented shape and lies inside the image."""
    points: np.ndarray         # [P, 2] float32 (x, y) pixels, P may be 0
    labels: np.ndarray         # [P] int64 in {0, 1}
    box: np.ndarray | None     # [4] float32 x0, y0, x1, y1 with x0 <= x1, y0 <= y1
    mask: np.ndarray | None    # [H, W] float32 soft prior

    @property
    def positive(self) -> np.ndarray:
        return self.points[self.labels == 1]   # [P+, 2]

    @property
    def negative(self) -> np.ndarray:
        return self.points[self.labels == 0]   # [P-, 2]


class Segmenter(Protocol):
    name: str            # "sam" | "fallback" | "gt"
    notice: str | None   # a line to show users (e.g. "no SAM checkpoint: using the fallback segmenter")
    rendered_box: bool   # self-prompted views also pass a box around the rendered mask (self_prompt.ops.prompt_box)
    rendered_prior: bool  # self-prompted views also pass mask= what the 3D mask knows of the view
                          # (sam.prior.rendered_prior: 1 covered, 0 not the object, 0.5 no opinion)

    def set_view(self, image: np.ndarray, *, view_name: str | None = None,
                 depth: np.ndarray | None = None) -> None: ...   # image [H,W,3] uint8; depth [H,W]

    def predict(self, *, points: np.ndarray | None = None,   # [P, 2] float pixels (x, y)
                labels: np.ndarray | None = None,            # [P] int, 1 = foreground, 0 = background
                box: np.ndarray | None = None,               # [4] x0, y0, x1, y1
                mask: np.ndarray | None = None,              # [H, W] float soft mask prior
                multimask: bool = False) -> SegmentResult: ...


def check_image(image: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image [H, W, 3] uint8 and an optional depth [H, W]; return them contiguous.

    Raises PromptError when the shapes or the dtype are wrong.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PromptError(f"segmenter image must be [H, W, 3] uint8, got {image.shape} {image.dtype}")
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != image.shape[:2]:
            raise PromptError(f"depth {depth.shape} does not match the image {image.shape[:2]}")
    return np.ascontiguousarray(image), depth


def check_prompt(H: int, W: int, points, labels, box, mask) -> Prompt:
    """Validate a prompt for an image of H x W pixels; labels default to all-foreground.

    Raises PromptError (one line) for bad shapes, labels other than 0/1, a point or box outside
    the image, or a prompt without any positive point, box or mask prior.
    """
    raw = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64)
    if raw.ndim == 1 and raw.shape == (2,):
        raw = raw[None]
    if raw.ndim != 2 or raw.shape[1] != 2:
        raise PromptError(f"points must be [P, 2] (x, y) pixels, got shape {raw.shape}")
    pts = raw.astype(np.float32)
    lab = np.ones(len(pts), np.int64) if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    if len(lab) != len(pts):
        raise PromptError(f"{len(pts)} points but {len(lab)} labels: give one label (1 or 0) per point")
    if not np.isin(lab, (0, 1)).all():
        raise PromptError("point labels must be 1 (foreground) or 0 (background)")
    inside = np.isfinite(pts).all(1) & (pts[:, 0] >= 0) & (pts[:, 0] < W) & (pts[:, 1] >= 0) & (pts[:, 1] < H)
    if not inside.all():
        raise PromptError(f"prompt point {pts[~inside][0].tolist()} lies outside the {W}x{H} (W x H) image")
    bx = None
    if box is not None:
        bx = np.asarray(box, np.float32).reshape(-1)
        if bx.shape != (4,) or not np.isfinite(bx).all() or bx[0] > bx[2] or bx[1] > bx[3] \
                or bx[2] < 0 or bx[3] < 0 or bx[0] > W or bx[1] > H:
            raise PromptError(f"box must be x0, y0, x1, y1 inside the {W}x{H} image, got {np.ravel(box).tolist()}")
        bx = np.clip(bx, 0, [W, H, W, H]).astype(np.float32)
    prior = None
    if mask is not None:
        prior = np.asarray(mask, np.float32)
        if prior.shape != (H, W) or not np.isfinite(prior).all():
            raise PromptError(f"mask prior must be a finite [H, W] = [{H}, {W}] map, got {prior.shape}")
    if not (lab == 1).any() and bx is None and prior is None:
        raise PromptError("empty prompt: give at least one foreground point (label 1), a box or a mask prior")
    return Prompt(pts, lab, bx, prior)
