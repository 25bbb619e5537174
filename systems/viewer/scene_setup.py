"""What the viewer opens: the scene, its trained field (loaded, or trained once and cached with a
progress line) and the 2D segmenter."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.errors import UserFacingError

GENERATION_LINE = "generating the built-in scene ({size}x{size} px, 60 views; once, about 15 s at 128 px) ..."


class ViewerArgumentError(UserFacingError):
    """A `view` option that cannot be used."""


def load_viewer_inputs(args):
    """(scene, field, segmenter, model file) from the `view` options: the field checkpoint, or for a
    splat scene its GaussianScene and .ply (systems/inverse/splats.py); raises the loaders' user
    errors."""
    from engine.device import resolve_device
    from engine.field.cache import default_field
    from engine.field.checkpoint import load_field
    from engine.field.progress import training_bar
    from engine.scenes import load_scene
    from engine.splats.scene import is_splat_scene, load_splat_scene
    from systems.inverse.splats import open_splat_model
    from systems.sam.factory import make_segmenter

    if args.device not in ("auto", "cpu", "cuda"):
        raise ViewerArgumentError(f"--device must be auto, cpu or cuda, not {args.device!r}")
    device = resolve_device(args.device)
    _announce_builtin_generation(args.scene, args.downscale)
    if is_splat_scene(args.scene):
        splats = load_splat_scene(args.scene, downscale=args.downscale)
        scene, (field, _), field_path = splats.scene, open_splat_model(splats, args.field), splats.ply
    elif args.field:
        scene = load_scene(args.scene, args.downscale)
        field, field_path = load_field(args.field, scene_hash=scene.content_hash(), device=device), Path(args.field)
    else:
        scene = load_scene(args.scene, args.downscale)
        with training_bar(f"training the field of {scene.name} (once, then cached)") as progress:
            field, field_path = default_field(scene, device=device, seconds=args.train_seconds,
                                              progress=progress)
    gt_masks = args.gt_masks
    if args.segmenter == "gt" and gt_masks is None and scene.kind == "builtin":
        from engine.scenes.builtin import builtin_truth

        gt_masks = str(builtin_truth(scene.H).instance_dir())          # the built-in objects' ids
    segmenter = make_segmenter(args.segmenter, checkpoint=args.sam_checkpoint, gt_masks=gt_masks, device=device,
                               model_type=getattr(args, "sam_model", None))
    return scene, field, segmenter, field_path


def _announce_builtin_generation(name: str, downscale: int | None) -> None:
    """Say so before the built-in scene is generated (a silent wait otherwise)."""
    from engine.scenes import BUILTIN_SIZE
    from engine.scenes.builtin import cache_dir

    size = str(name).removeprefix("builtin-").removeprefix("builtin")
    if not str(name).startswith("builtin") or (size and not size.isdigit()):
        return
    pixels = int(size or BUILTIN_SIZE) // (downscale or 1)
    if not (cache_dir(pixels) / "transforms.json").is_file():
        print(GENERATION_LINE.format(size=pixels), file=sys.stderr, flush=True)
