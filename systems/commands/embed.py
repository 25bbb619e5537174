"""`main.py embed SCENE [--sam-checkpoint F] [--sam-model M] [--views N|NAMES]`: compute the SAM-family
embeddings of a scene's training views ahead, headless, into the embedding cache (the one `segment`
and `view` read: same images, same key), in the order a propagation needs them, so that a later
`segment` or `view` starts with every embedding ready.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options (no heavy imports: `--help` stays fast)."""
    from systems.sam.factory import add_sam_model_argument

    parser.add_argument("scene", nargs="?", default="builtin", help="'builtin' or a scene folder")
    parser.add_argument("--downscale", type=int, default=None, help="image downscale factor of the scene")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM-family checkpoint file")
    add_sam_model_argument(parser)
    parser.add_argument("--views", default=None, metavar="N|NAMES",
                        help="N evenly spaced training views, or these views (comma-separated); default: all")


def run(args) -> int:
    """Embed every view (cached ones are read back, not encoded again); user errors raise
    UserFacingError subclasses."""
    import time

    import numpy as np
    from tqdm import tqdm

    from components.resources import SegmentationSettings
    from engine.device import resolve_device
    from engine.scenes import load_scene
    from systems.sam import make_segmenter
    from systems.sam.system import scene_views_in_order
    from systems.segmentation.cli import parse_views

    device = resolve_device(args.device)
    scene = load_scene(args.scene, args.downscale)
    segmenter = make_segmenter("sam", checkpoint=args.sam_checkpoint, model_type=args.sam_model, device=device)
    views = scene_views_in_order(scene, SegmentationSettings(views=parse_views(args.views, scene)))
    start = time.perf_counter()
    with tqdm(total=len(views), desc=f"embed {scene.name} ({segmenter.model_type})", unit="view") as bar:
        for view in views:
            segmenter.embed(np.asarray(scene.images[view]))
            bar.update(1)
    print(f"{len(views)} views of {scene.name} embedded with {segmenter.model_type} in "
          f"{time.perf_counter() - start:.1f} s ({segmenter.encoder_runs} encoded, "
          f"{len(views) - segmenter.encoder_runs} already cached) into {segmenter.cache.folder}")
    return 0
