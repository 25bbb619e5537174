"""Segmentation messages: requests (…Requested / …Added / …Picked) and facts (everything else).

All are frozen dataclasses of plain values (ints, floats, strings, tuples, numpy arrays, Camera),
so the recorder can write them and a replay can send them again. Objects are named by their
stable `object_id` (SegObject.id), never by an esper entity. `object_id=None` in a request means
"the active object" (ActiveObject resource).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.camera import Camera
from components.segmentation import StartCheck


# ---- requests: prompts on a view -------------------------------------------------------------
@dataclass(frozen=True)
class PromptAdded:
    """A click (x, y) pixels on `camera`; label 1 = foreground, 0 = background.

    `view` is the scene view index when the camera is a scene view (segmenters like "gt" need the
    view name), else None (a free viewer camera: the view is rendered at that camera). A click
    on another camera than the object's current prompts starts a new prompted view.
    """
    camera: Camera
    x: float
    y: float
    label: int = 1
    view: int | None = None
    object_id: int | None = None


@dataclass(frozen=True)
class BoxPrompted:
    """A box (x0, y0, x1, y1) pixels on `camera` (replaces the box of the current prompts)."""
    camera: Camera
    box: tuple[float, float, float, float]
    view: int | None = None
    object_id: int | None = None


@dataclass(frozen=True)
class MaskPrompted:
    """A ready 2D mask [H, W] bool on `camera`: lifted as is (no segmenter call)."""
    camera: Camera
    mask: np.ndarray
    view: int | None = None
    object_id: int | None = None


@dataclass(frozen=True)
class CandidatePicked:
    """The user picks SAM candidate `index` (0..2) of the prompted view."""
    index: int
    object_id: int | None = None


@dataclass(frozen=True)
class UndoRequested:
    """Remove the last prompt (point, box or mask) of an object and redo its prompted view."""
    object_id: int | None = None


@dataclass(frozen=True)
class ClearRequested:
    """Drop an object's prompts and empty its mask channel (the object stays)."""
    object_id: int | None = None


# ---- requests: objects and propagation ---------------------------------------------------------
@dataclass(frozen=True)
class NewObjectRequested:
    """Create an object (it becomes the active one); name/color default to "object N" / a palette."""
    name: str | None = None
    color: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class ObjectSelected:
    """Make `object_id` the active object (prompts without object_id go to it)."""
    object_id: int


@dataclass(frozen=True)
class DeleteObjectRequested:
    object_id: int | None = None


@dataclass(frozen=True)
class RenameObjectRequested:
    object_id: int
    name: str


@dataclass(frozen=True)
class RecolorObjectRequested:
    """Show `object_id` in overlay colour `color` (r, g, b, each 0-255)."""
    object_id: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class PropagationRequested:
    """Propagate an object's mask over the views in SegmentationSettings.views (one pass)."""
    object_id: int | None = None


@dataclass(frozen=True)
class PropagationCancelled:
    object_id: int | None = None


@dataclass(frozen=True)
class ViewEncoded:
    """The segmenter's embedding of a view arrived from the background encoder: prompts on that
    view may be answered from now on. Recorded as an input (its arrival time is not computed by the
    systems), so a replay answers at the same point of the session."""
    view: int | str       # the ViewCache key (systems.segmentation.views.view_key)


@dataclass(frozen=True)
class WorkDone:
    """A job of the viewer's background worker finished (a view's weights, the segmenter's answer to
    a prompt, an export): the systems waiting on it use its result from now on. Recorded as an input, as
    ViewEncoded is, so a replay uses each result at the same point of the session."""
    key: tuple            # ("weights", ViewCache key) | ("answer", object id, prompt digest)
                          # | ("view", object id, prompt digest) | ("export", request number, out)


# ---- facts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectCreated:
    object_id: int
    name: str
    color: tuple[int, int, int]
    channel: int


@dataclass(frozen=True)
class ObjectDeleted:
    object_id: int
    channel: int          # the channel it had; later channels moved down by one


@dataclass(frozen=True)
class ObjectRenamed:
    object_id: int
    name: str


@dataclass(frozen=True)
class ObjectRecolored:
    object_id: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class CandidatesReady:
    """The segmenter answered the prompts of the prompted view: `scores` of the candidates."""
    object_id: int
    scores: tuple[float, ...]
    picked: int


@dataclass(frozen=True)
class PromptRejected:
    """A prompt could not be used (outside the image, segmenter error): `reason` is one line."""
    object_id: int | None
    reason: str


@dataclass(frozen=True)
class MaskUpdated:
    """The mask grid channel of an object changed (lift, propagation step, clear)."""
    object_id: int
    channel: int


@dataclass(frozen=True)
class PropagationStarted:
    object_id: int
    total: int            # views queued


@dataclass(frozen=True)
class PropagationProgressed:
    object_id: int
    done: int
    total: int
    view: int             # scene view index just processed
    accepted: bool
    iou: float            # IoU(SAM mask, binarised rendered mask); -1 when the view had no prompt


@dataclass(frozen=True)
class PropagationFinished:
    object_id: int
    accepted: int
    rejected: int
    message: str          # one line: a summary, or why every view was rejected
    start_check: StartCheck | None = None   # the pass against its start (None: no start to compare)
