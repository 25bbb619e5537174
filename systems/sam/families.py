"""The segmenter families: the one registry the CLI, the panel, the recorder and the replayer read.

A family is a kind of 2D segmenter: its name (the `--segmenter` choice, and the `name` its
segmenters carry), a line of help, how to recognise a checkpoint file of its own, how to build a
segmenter from the command's options, and what a recording keeps so that a replay builds the same
one again (its `source`: the weights file or the mask folder, fed back into one option). Another
family (another segmenter model) is one entry in FAMILIES and its backend module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from systems.sam.protocol import Segmenter


@dataclass(frozen=True)
class SegmenterOptions:
    """What the commands give to build a segmenter (each family reads the fields it needs)."""
    checkpoint: str | None = None    # a weights file (--sam-checkpoint)
    model_type: str | None = None    # --sam-model; None or "auto": from the file
    gt_masks: str | None = None      # a folder of <view name>.png masks (--gt-masks)
    device: str = "cpu"
    cache_dir: Path | None = None    # the project's cache ($SA3D_CACHE or ~/.cache/sa3d)


@dataclass(frozen=True)
class SegmenterFamily:
    name: str                                        # --segmenter choice and Segmenter.name
    help: str                                        # one line for --help and the panel
    build: Callable[[SegmenterOptions], Segmenter]   # raises SegmenterError with a one-line fix
    source_option: str | None = None                 # the SegmenterOptions field a recorded source feeds
    recognises: Callable[[Path], bool] = lambda path: False   # a checkpoint file of this family
    source_attribute: str | None = None              # the segmenter's attribute recorded as its source

    def describe(self, segmenter: Segmenter) -> str:
        """'<name>' plus the model it runs, if it has one: what the panel and summaries print."""
        model = getattr(segmenter, "model_type", None)
        return self.name + (f" {model}" if model else "")

    def recording_source(self, segmenter: Segmenter, checkpoint: str | None) -> str | None:
        """What a recording keeps to build this segmenter again: the weights file named on the
        command line, else the segmenter's own source (a mask folder), else None."""
        own = getattr(segmenter, self.source_attribute, None) if self.source_attribute else None
        source = checkpoint or own
        return None if source is None else str(source)

    def rebuild(self, source: str | None, options: SegmenterOptions) -> Segmenter:
        """The segmenter a replay uses: `options`, with the recorded `source` where they name none."""
        if self.source_option and source is not None and getattr(options, self.source_option) is None:
            options = replace(options, **{self.source_option: source})
        return self.build(options)


def _build_sam(options: SegmenterOptions) -> Segmenter:
    from systems.sam.factory import build_sam
    return build_sam(options, fall_back=False)


def _build_fallback(options: SegmenterOptions) -> Segmenter:
    from systems.sam.fallback import FallbackSegmenter
    return FallbackSegmenter()


def _build_gt(options: SegmenterOptions) -> Segmenter:
    from systems.sam.errors import SegmenterError
    from systems.sam.gt import GtSegmenter
    if options.gt_masks is None:
        raise SegmenterError("the gt segmenter needs --gt-masks DIR (one <view name>.png per view)")
    return GtSegmenter(options.gt_masks)


def _is_sam_checkpoint(path: Path) -> bool:
    from systems.sam.checkpoints import model_type_from_name
    return model_type_from_name(path) is not None


FAMILIES: dict[str, SegmenterFamily] = {f.name: f for f in (
    SegmenterFamily("sam", "Segment Anything (SAM, HQ-SAM, MobileSAM): needs a checkpoint", _build_sam,
                    source_option="checkpoint", recognises=_is_sam_checkpoint),
    SegmenterFamily("fallback", "a random walker on colour and rendered depth: no weights", _build_fallback),
    SegmenterFamily("gt", "ground-truth masks from a folder (evaluates the 3D part alone)", _build_gt,
                    source_option="gt_masks", source_attribute="mask_dir"),
)}
AUTO = "auto"                                        # a SAM-family checkpoint when one is found, else the fallback


def choices() -> tuple[str, ...]:
    """What --segmenter accepts: "auto" and every family."""
    return (AUTO, *FAMILIES)


def family_of(segmenter: Segmenter) -> SegmenterFamily:
    """The family a segmenter belongs to (by its `name`)."""
    return FAMILIES[segmenter.name]


def family_of_checkpoint(path: str | Path) -> SegmenterFamily:
    """The family whose checkpoints a file's name marks; SAM's (which also reads a file by its
    weights' keys) when none does."""
    return next((f for f in FAMILIES.values() if f.recognises(Path(path))), FAMILIES["sam"])
