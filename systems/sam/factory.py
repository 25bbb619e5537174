"""make_segmenter: build a 2D segmenter of a family by name ("auto" = SAM when a checkpoint is found)."""

from __future__ import annotations

import os
from pathlib import Path

from systems.sam.checkpoints import model_type_from_name
from systems.sam.errors import SegmenterError
from systems.sam.families import AUTO, FAMILIES, SegmenterOptions, choices, family_of_checkpoint
from systems.sam.protocol import Segmenter


def sa3d_cache_dir() -> Path:
    """The project's cache folder: $SA3D_CACHE or ~/.cache/sa3d."""
    return Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d").expanduser()


def make_segmenter(kind: str = AUTO, *, checkpoint: str | None = None, model_type: str | None = None,
                   gt_masks: str | None = None, device: str = "cpu", cache_dir=None) -> Segmenter:
    """Build a segmenter of family `kind` (systems/sam/families.py: "sam", "fallback", "gt") or "auto".

    "auto" = the family that recognises a named checkpoint's file name; else SAM if a checkpoint
    is found (checkpoint=, $SA3D_SAM_CHECKPOINT, or an official file in <cache>/sam/: model_type's,
    or with model_type None / "auto" the lightest found on a CPU and the largest on CUDA), else the
    fallback with a one-line `notice`. The model type comes from model_type, else the checkpoint's
    file name, else its weights. cache_dir defaults to $SA3D_CACHE or ~/.cache/sa3d (SAM
    checkpoints in <cache>/sam/, embeddings in <cache>/sam/embeddings/). Raises SegmenterError for
    an unknown kind, a missing gt folder or a missing/wrong checkpoint that was asked for explicitly.
    """
    options = SegmenterOptions(checkpoint=checkpoint, model_type=model_type, gt_masks=gt_masks, device=device,
                               cache_dir=Path(cache_dir).expanduser() if cache_dir is not None else None)
    if kind == AUTO:
        if checkpoint is not None and family_of_checkpoint(checkpoint).name != "sam":
            return family_of_checkpoint(checkpoint).build(options)
        return build_sam(options, fall_back=True)
    if kind not in FAMILIES:
        raise SegmenterError(f"unknown segmenter '{kind}': choose one of {', '.join(choices())}")
    return FAMILIES[kind].build(options)


def build_sam(options: SegmenterOptions, *, fall_back: bool) -> Segmenter:
    """A SAM-family segmenter from `options`; where no checkpoint is found or its package is
    missing, the fallback with a notice (fall_back) or SegmenterError."""
    from systems.sam.checkpoints import find_sam_checkpoint, missing_checkpoint_line
    from systems.sam.fallback import FallbackSegmenter

    cache = options.cache_dir or sa3d_cache_dir()
    model_type = None if options.model_type in (None, "auto") else options.model_type
    path = find_sam_checkpoint(options.checkpoint, model_type, cache / "sam", device=options.device)
    if path is None:
        if not fall_back:
            raise SegmenterError(missing_checkpoint_line(model_type, cache / "sam"))
        return FallbackSegmenter(notice="using the fallback segmenter: "
                                        f"{missing_checkpoint_line(model_type, cache / 'sam')}")
    missing = missing_model_package(model_type or model_type_from_name(path))
    if missing:
        if not fall_back:
            raise SegmenterError(f"the {missing} package is missing: pip install {missing.replace('_', '-')}")
        return FallbackSegmenter(notice=f"{missing} is not installed: using the fallback segmenter")
    from systems.sam.sam import SamSegmenter
    return SamSegmenter.from_checkpoint(path, model_type=model_type, device=options.device,
                                        cache_dir=cache / "sam" / "embeddings")


def missing_model_package(model_type: str | None) -> str | None:
    """The Python package a model type needs that is not installed (segment_anything, and
    segment_anything_hq for HQ-SAM and MobileSAM's TinyViT), else None."""
    import importlib.util

    needs = ["segment_anything"]
    if model_type is None or model_type.startswith(("hq_", "mobile", "tiny_")):
        needs.append("segment_anything_hq")
    return next((name for name in needs if importlib.util.find_spec(name) is None), None)


def add_segmenter_argument(parser) -> None:
    """The --segmenter option of the commands that build a segmenter: the registry's families."""
    families = "; ".join(f"{f.name}: {f.help}" for f in FAMILIES.values())
    parser.add_argument("--segmenter", choices=choices(), default=AUTO,
                        help=f"{AUTO} (default): sam when a checkpoint is found, else fallback; {families}")


def add_sam_model_argument(parser) -> None:
    """The --sam-model option of the commands that build a SAM-family segmenter."""
    from systems.sam.checkpoints import CHECKPOINTS

    parser.add_argument("--sam-model", choices=("auto", *CHECKPOINTS), default="auto",
                        help="SAM-family model: auto (from the checkpoint's file name or weights; without "
                             "--sam-checkpoint the lightest official file found on a CPU, the largest on CUDA)")
