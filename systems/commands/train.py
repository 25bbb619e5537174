"""`main.py train SCENE --out DIR`: train the radiance field of a scene; writes DIR/field.pt and DIR/train.json."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options (no heavy imports here: `--help` stays fast)."""
    parser.add_argument("scene", nargs="?", default="builtin", help="'builtin' or a scene folder")
    parser.add_argument("--out", required=True, help="folder for field.pt and train.json")
    parser.add_argument("--max-minutes", type=float, default=3.0, help="training time budget (minutes)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--downscale", type=int, default=None, help="image downscale factor of the scene")
    parser.add_argument("--resolution", type=int, default=None,
                        help="final grid size: about RESOLUTION**3 voxels, shaped like the scene box "
                             "(default 160 for forward-facing scenes, which train in NDC space, else 128)")


def run(args) -> int:
    """Read the scene, train within the budget, write DIR/field.pt and DIR/train.json atomically."""
    from engine.device import resolve_device
    from engine.errors import UserFacingError
    from engine.field.checkpoint import save_field
    from engine.field.progress import training_bar
    from engine.field.train import TrainConfig, train_field
    from engine.io import atomic_write
    from engine.scenes import load_scene

    if args.max_minutes <= 0 or (args.resolution is not None and args.resolution < 8):
        raise UserFacingError("--max-minutes must be > 0 and --resolution at least 8")
    device = resolve_device(args.device)
    scene = load_scene(args.scene, args.downscale)
    resolution = args.resolution or (160 if scene.forward_facing else 128)
    out = Path(args.out)
    max_seconds = args.max_minutes * 60.0
    started = time.perf_counter()
    with training_bar(f"train {scene.name}") as progress:
        result = train_field(scene, device=device, max_seconds=max_seconds,
                             config=TrainConfig(resolution=resolution), progress=progress)
    report = {
        "scene": scene.name, "source": scene.source, "scene_hash": scene.content_hash(),
        "test_psnr": result.test_psnr, "seconds": round(result.seconds, 2),
        "eval_seconds": round(result.eval_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2), "iterations": result.iterations,
        "resolution": list(result.field.resolution), "device": device,
        "downscale": args.downscale, "image_size": [scene.H, scene.W],
    }
    save_field(out / "field.pt", result.field, scene_hash=scene.content_hash(), meta=report)
    atomic_write(out / "train.json", json.dumps(report, indent=2) + "\n")
    psnr = "n/a" if result.test_psnr is None else f"{result.test_psnr:.2f} dB"
    print(f"wrote {out / 'field.pt'}: test PSNR {psnr}, {result.iterations} iterations, "
          f"{result.seconds:.0f} s, grid {'x'.join(map(str, result.field.resolution))}")
    return 0
