"""`segment`'s frame loop for one object: prompt its view, propagate, stop after a run of rejections."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.camera import Camera
from components.messages import (
    BoxPrompted,
    MaskPrompted,
    NewObjectRequested,
    ObjectCreated,
    PromptAdded,
    PromptRejected,
    PropagationCancelled,
    PropagationFinished,
    PropagationProgressed,
    PropagationRequested,
    PropagationStarted,
)
from components.resources import SceneData, SegmentationSettings, SegmenterHandle
from systems.sam.errors import PromptError

READER = "segment"


@dataclass
class ObjectResult:
    """What one object's propagation did (summary.json, the final line)."""
    object_id: int
    channel: int
    accepted: list = field(default_factory=list)      # [(view, iou)]
    rejected: list = field(default_factory=list)      # [(view, iou)]
    not_tried: list = field(default_factory=list)     # views left when it stopped early
    message: str = ""
    stopped_early: bool = False
    start_check: object = None                        # components.segmentation.StartCheck, None if none

    @property
    def failed(self) -> bool:
        """Every view it tried was rejected (its outputs are the prompted view's mask)."""
        return not self.accepted and bool(self.rejected)


def queued_views(scene, settings: SegmentationSettings, prompted: int) -> list[int]:
    """The views a propagation from `prompted` visits (systems.segmentation.propagation's rule)."""
    views = settings.views if settings.views is not None else scene.train_ids
    return [int(v) for v in views if v != prompted]


def segment_object(app, obj, segmenter, bar, seconds: dict, *, multiple: bool) -> ObjectResult:
    """Create object `obj` (cli.ObjectPrompt), prompt its view with `segmenter`, propagate it to the
    end or until SegmentationSettings.stop_after views in a row were rejected (0: never); adds system
    seconds into `seconds` and advances `bar` per view. Raises PromptError when the prompted view fails."""
    handle = app.resource(SegmenterHandle)
    handle.segmenter, handle.current = segmenter, None
    scene = app.resource(SceneData).scene
    camera = Camera.of_view(scene, obj.view)
    app.send(NewObjectRequested(obj.name))
    for x, y, label in obj.points:
        app.send(PromptAdded(camera, x, y, label, obj.view))
    if obj.box is not None:
        app.send(BoxPrompted(camera, obj.box, obj.view))
    if obj.mask is not None:
        app.send(MaskPrompted(camera, obj.mask, obj.view))
    app.send(PropagationRequested())
    settings = app.resource(SegmentationSettings)
    queue = queued_views(scene, settings, obj.view)
    result, in_a_row = None, 0
    while result is None or not (result.message or result.stopped_early):
        app.step()
        for system, spent in app.system_seconds.items():
            key = system.rsplit(".", 1)[-1]
            seconds[key] = seconds.get(key, 0.0) + spent
        for created in app.messages.read(ObjectCreated, READER):
            result = ObjectResult(created.object_id, created.channel)
        rejected = app.messages.read(PromptRejected, READER)
        if rejected:
            raise PromptError(f"object '{obj.name}': {rejected[0].reason}" if multiple else rejected[0].reason)
        for message in app.messages.read(PropagationProgressed, READER):
            (result.accepted if message.accepted else result.rejected).append((message.view, message.iou))
            in_a_row = 0 if message.accepted else in_a_row + 1
            bar.update(1)
            bar.set_postfix(accepted=len(result.accepted), refresh=False)
        for done in app.messages.read(PropagationFinished, READER):
            result.message, result.start_check = done.message, done.start_check
        if result is not None and not queue and app.messages.read(PropagationStarted, READER):
            result.message = "no view to propagate over (--views holds only the prompted view)"
        if not result.message and settings.stop_after and in_a_row >= settings.stop_after:
            app.send(PropagationCancelled(result.object_id))
            app.step()
            tried = {v for v, _ in result.accepted + result.rejected}
            result.not_tried = [v for v in queue if v not in tried]
            result.stopped_early = True
            result.message = stop_message(result, in_a_row, segmenter, settings.iou_gate)
            bar.total -= len(result.not_tried)
            bar.refresh()
    if multiple:
        result.message = f"'{obj.name}': {result.message}"
    return result


def stop_message(result: ObjectResult, in_a_row: int, segmenter, gate: float) -> str:
    """One line: the early stop, why the views were rejected (naming the segmenter) and what to try."""
    ious = [iou for _, iou in result.rejected[-in_a_row:] if iou >= 0]
    why = (f"the {segmenter.name} segmenter's masks disagreed with the rendered mask (best IoU {max(ious):.2f} "
           f"< gate {gate:g})" if ious else "the rendered mask gave no self-prompt")
    return (f"stopped after {in_a_row} views rejected in a row ({len(result.accepted)} accepted, "
            f"{len(result.rejected)} rejected, {len(result.not_tried)} not tried): {why}; "
            f"try more prompts, a lower --iou-gate, or --stop-after 0 to try every view")
