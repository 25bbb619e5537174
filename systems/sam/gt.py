"""The "gt" segmenter: answers prompts from ground-truth mask files instead of a model.

Files live in one folder, named like the views: `<view_name>.png|jpg|jpeg|npy`. Any value > 0 is
foreground; an instance-id file (several positive values) is read as "the object under the click".
Used for evaluation (label propagation from GT masks) and for deterministic tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from engine.io import DAMAGED_ARRAY_FILE
from systems.sam.errors import PromptError, SegmenterError
from systems.sam.protocol import Prompt, SegmentResult, check_image, check_prompt

MASK_SUFFIXES = (".png", ".npy", ".jpg", ".jpeg")


def load_label_image(path: Path, H: int, W: int) -> np.ndarray:
    """Read a mask file as integer labels [H, W] int64 (0 = background), resized (nearest) to H x W.

    RGB masks are read as one id per colour. Raises SegmenterError if the file cannot be read.
    """
    try:
        if path.suffix == ".npy":
            raw = np.load(path, allow_pickle=False)
        else:
            from PIL import Image
            with Image.open(path) as im:
                raw = np.asarray(im)
    except DAMAGED_ARRAY_FILE as exc:
        raise SegmenterError(f"ground-truth mask {path} cannot be read ({exc}): "
                             "replace it with a PNG or .npy mask") from None
    raw = np.asarray(raw)
    if raw.ndim == 3:   # [h, w, C] colour-coded ids -> one integer per colour
        raw = raw[..., :3].astype(np.int64)
        raw = (raw[..., 0] << 16) | (raw[..., 1] << 8) | raw[..., 2] if raw.shape[2] == 3 else raw[..., 0]
    if raw.ndim != 2:
        raise SegmenterError(f"ground-truth mask {path} has shape {raw.shape}: expected an [H, W] mask")
    labels = raw.astype(np.int64)                                     # [h, w]
    if labels.shape != (H, W):
        rows = (np.arange(H) * labels.shape[0] // H)[:, None]   # nearest-neighbour resize
        cols = (np.arange(W) * labels.shape[1] // W)[None, :]
        labels = labels[rows, cols]
    return labels


def _at(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, col) indices of (x, y) pixel points [P, 2]."""
    return pts[:, 1].astype(np.int64), pts[:, 0].astype(np.int64)


def select_gt_region(labels: np.ndarray, prompt: Prompt) -> np.ndarray:
    """Pick the ground-truth region a prompt asks for; returns bool [H, W].

    Foreground = labels > 0, or, when several ids exist, the ids under the positive points (else
    the id most present in the box / the mask prior). Connected components are then chosen by the
    positive points, else those mostly inside the box, else those mostly covered by the prior (at
    least the best one); components under negative points are removed.
    """
    ids = np.unique(labels[labels > 0])
    fg = labels > 0                                                   # [H, W]
    region = np.zeros_like(fg)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        region[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
    prior = prompt.mask > 0.5 if prompt.mask is not None else None    # [H, W]
    pos = prompt.positive
    if len(ids) > 1:
        if len(pos):
            chosen = labels[_at(pos)]
        else:
            pool = labels[region if prompt.box is not None else prior]
            pool = pool[pool > 0]
            chosen = np.bincount(pool).argmax()[None] if pool.size else np.zeros(0, np.int64)
        fg = np.isin(labels, chosen[chosen > 0])
    comp, n = ndimage.label(fg)                                       # [H, W] int32
    sizes = np.bincount(comp.ravel(), minlength=n + 1).astype(np.float64)
    if len(pos):
        keep = np.unique(comp[_at(pos)])
    else:
        inside = np.bincount(comp[region if prompt.box is not None else prior], minlength=n + 1)
        share = inside / np.maximum(sizes, 1)
        share[0] = 0
        keep = np.flatnonzero(share > 0.5)
        if not len(keep) and share.max() > 0:
            keep = np.array([share.argmax()])
    if len(prompt.negative):
        keep = np.setdiff1d(keep, comp[_at(prompt.negative)])
    return np.isin(comp, keep[keep > 0])


class GtSegmenter:
    """Segmenter backed by ground-truth masks in `mask_dir` (see the module docstring)."""

    name = "gt"
    rendered_box = False     # the ground truth needs no hint
    rendered_prior = False

    def __init__(self, mask_dir: str | Path, notice: str | None = None):
        self.mask_dir = Path(mask_dir).expanduser()
        if not self.mask_dir.is_dir():
            raise SegmenterError(f"ground-truth mask folder {self.mask_dir} does not exist: "
                                 "pass --gt-masks DIR with one <view name>.png per view")
        self.notice = notice
        self._labels: np.ndarray | None = None   # [H, W] int64 of the current view

    def find_file(self, view_name: str) -> Path:
        """Path of the mask file of a view; raises SegmenterError naming the expected file."""
        for suffix in MASK_SUFFIXES:
            path = self.mask_dir / f"{view_name}{suffix}"
            if path.is_file():
                return path
        raise SegmenterError(f"no ground-truth mask {self.mask_dir / (view_name + '.png')} "
                             f"(also tried .npy/.jpg): add it or use another segmenter")

    def set_view(self, image: np.ndarray, *, view_name: str | None = None,
                 depth: np.ndarray | None = None) -> None:
        """Load the GT labels of `view_name` at the image's size; raises SegmenterError if absent."""
        image, _ = check_image(image, depth)
        if view_name is None:
            raise SegmenterError("the gt segmenter needs the view name to find its mask file")
        self._labels = load_label_image(self.find_file(view_name), *image.shape[:2])

    def predict(self, *, points=None, labels=None, box=None, mask=None, multimask: bool = False) -> SegmentResult:
        """Return the GT region the prompt selects (see select_gt_region), 3 copies with multimask."""
        if self._labels is None:
            raise PromptError("no view set: call set_view(image, view_name=...) before predict")
        prompt = check_prompt(*self._labels.shape, points, labels, box, mask)
        region = select_gt_region(self._labels, prompt)               # [H, W] bool
        count = 3 if multimask else 1
        score = np.float32(1.0 if region.any() else 0.0)
        return SegmentResult(np.repeat(region[None], count, axis=0), np.full(count, score, np.float32))
