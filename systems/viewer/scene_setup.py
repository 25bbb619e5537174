"""What the viewer opens: the scene, its trained field (loaded, or trained once and cached with a
progress line) and the 2D segmenter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.errors import UserFacingError


class ViewerArgumentError(UserFacingError):
    """A `view` option that cannot be used."""


def field_cache_path(scene, seconds: float) -> Path:
    """Where the field trained by the viewer for `scene` is cached ($SA3D_CACHE/fields/)."""
    root = Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d") / "fields"
    return root / f"viewer-{scene.name}-{seconds:g}s-{scene.content_hash()}.pt"


def cached_field(scene, *, seconds: float, device: str):
    """Load the cached field of `scene`, or train it for `seconds` (progress bar on stderr) and cache
    it at field_cache_path; returns (field, its checkpoint path)."""
    from engine.field.checkpoint import FieldCheckpointError, load_field, save_field
    from engine.field.train import train_field

    path = field_cache_path(scene, seconds)
    try:
        return load_field(path, scene_hash=scene.content_hash(), device=device), path
    except FieldCheckpointError:
        pass

    print(f"no trained field of {scene.name} cached: training one for {seconds:g} s on {device} (once)",
          file=sys.stderr)

    def progress(info: dict) -> None:
        done = min(info["elapsed"] / info["max_seconds"], 1.0)
        bar = "#" * int(done * 30)
        print(f"\rtraining the field [{bar:<30}] {done:4.0%} {info['elapsed']:4.0f}/{seconds:g} s  "
              f"psnr {info['psnr']:5.2f} dB", end="", file=sys.stderr, flush=True)

    result = train_field(scene, device=device, max_seconds=seconds, progress=progress)
    psnr = "n/a" if result.test_psnr is None else f"{result.test_psnr:.1f} dB"
    print(f"\nfield trained: {result.iterations} iterations, held-out PSNR {psnr}", file=sys.stderr)
    save_field(path, result.field, scene_hash=scene.content_hash(), meta={"test_psnr": result.test_psnr})
    print(f"cached the field in {path}", file=sys.stderr)
    return result.field, path


def load_viewer_inputs(args):
    """(scene, field, segmenter, field checkpoint path) from the `view` options; raises the loaders'
    user errors."""
    import torch

    from engine.field.checkpoint import load_field
    from engine.scenes import load_scene
    from systems.sam.factory import make_segmenter

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device not in ("cpu", "cuda"):
        raise ViewerArgumentError(f"--device must be auto, cpu or cuda, not {device!r}")
    scene = load_scene(args.scene, args.downscale)
    if args.field:
        field, field_path = load_field(args.field, scene_hash=scene.content_hash(), device=device), Path(args.field)
    else:
        field, field_path = cached_field(scene, seconds=args.train_seconds, device=device)
    gt_masks = args.gt_masks
    if args.segmenter == "gt" and gt_masks is None and scene.kind == "builtin":
        from engine.scenes.builtin import builtin_truth

        gt_masks = str(builtin_truth(scene.H).instance_dir())          # the built-in objects' ids
    segmenter = make_segmenter(args.segmenter, checkpoint=args.sam_checkpoint, gt_masks=gt_masks, device=device)
    return scene, field, segmenter, field_path
