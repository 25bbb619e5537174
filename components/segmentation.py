"""Per-object segmentation components (plain data). One entity per segmented object.

An object entity has SegObject + Prompts (+ Candidates once the segmenter answered, + Propagation
while/after propagating, + PendingView during one propagation step). Tags NeedsSegment /
NeedsLift mark work for the next systems of the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from components.camera import Camera


@dataclass(slots=True)
class SegObject:
    id: int                          # stable id (messages, recordings); never reused in a session
    name: str
    color: tuple[int, int, int]      # uint8 RGB for overlays
    channel: int                     # index into MaskGrid.votes


@dataclass(slots=True)
class Prompts:
    """The user's prompts on one view (the prompted view) of one object."""
    camera: Camera | None = None     # the view prompted; None before the first prompt
    view: int | None = None          # its scene view index, None for a free camera
    points: list[tuple[float, float]] = field(default_factory=list)   # (x, y) pixels
    labels: list[int] = field(default_factory=list)                   # 1 fg, 0 bg
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None   # [H, W] bool given mask (lifted as is)
    history: list[str] = field(default_factory=list)  # "point" | "box" | "mask", for undo

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None


@dataclass(slots=True)
class Candidates:
    """The segmenter's masks for the prompted view, and the one lifted."""
    masks: np.ndarray                # [C, H, W] bool
    scores: np.ndarray               # [C] float32
    picked: int                      # index of the mask lifted


@dataclass(frozen=True)
class StartCheck:
    """The pass against its own start (systems.inverse.start_check), on the views where the start is
    confident: the pixels there see surfaces the start's views voted on."""
    views: tuple[str, ...]          # names of the confident views
    ious: tuple[float, ...]         # IoU of the start's and the pass's masks on their confident pixels
    agreement: float                # mean of ious (1.0 when no view is confident)
    disagrees: bool                 # agreement below start_check.AGREEMENT
    restored: int                   # voxels of the start given back to the mask
    message: str                    # one line for the user

    def summary(self) -> dict:
        """The check as summary.json writes it."""
        return {"views": list(self.views), "ious": [round(v, 4) for v in self.ious],
                "agreement": round(self.agreement, 4), "disagrees": self.disagrees,
                "restored_voxels": self.restored, "message": self.message}


@dataclass(slots=True)
class Propagation:
    """One pass of an object's mask over the views; `queue` holds the views still to do."""
    queue: list[int]                                   # scene view indices, next first
    total: int
    accepted: list[tuple[int, float]] = field(default_factory=list)            # (view, IoU)
    rejected: list[tuple[int, float, str]] = field(default_factory=list)       # (view, IoU, why)
    finished: bool = False
    # the start check (systems/inverse/start_check.py) works in torch: the pass's start is handed over as tensors
    start: torch.Tensor | None = None                  # [Z, Y, X] the channel's votes when the pass began
    start_counts: torch.Tensor | None = None           # [Z, Y, X] its counts then (> 0: some view voted)
    propagated: torch.Tensor | None = None             # [Z, Y, X] the votes the pass reached, before the check
    start_check: StartCheck | None = None              # set when the pass finishes

    @property
    def done(self) -> int:
        return self.total - len(self.queue)


@dataclass(slots=True)
class PendingView:
    """One propagation step in flight (filled by self-prompting, then SAM, then the lift)."""
    view: int                        # scene view index
    rendered: np.ndarray             # [H, W] float32 soft mask M of the object's channel
    points: np.ndarray               # [P, 2] float32 (x, y) self-prompts, P may be 0
    prior: np.ndarray | None = None  # [H, W] float32 what the 3D mask knows of each pixel (1 covered, 0 not
                                     # the object, 0.5 never voted on: systems/sam/prior.py), for a
                                     # segmenter with `rendered_prior`
    sam_mask: np.ndarray | None = None  # [H, W] bool, set by the SAM step
    answered: bool = False           # the SAM step is done (sam_mask None: no prompt, or the segmenter refused)


class NeedsSegment:
    """Tag: the object's prompts changed; run the segmenter on the prompted view."""


class NeedsLift:
    """Tag: the picked candidate (or given mask) must be lifted into the object's channel."""
