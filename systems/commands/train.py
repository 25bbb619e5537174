"""`main.py train SCENE --out DIR`: train the radiance field of a scene; writes DIR/field.pt and DIR/train.json.

DIR is written as a unit (engine/io.atomic_dir): an existing output folder keeps its old field.pt
and train.json until the new ones are complete.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

KIND_REASONS = {"ndc": "forward-facing capture", "box": "known constant background",
                "unbounded": "capture around an object: box plus contracted background"}


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
    parser.add_argument("--space", choices=("auto", "ndc", "box", "unbounded"), default="auto",
                        help="field kind: ndc (forward-facing), box (constant background), unbounded "
                             "(box plus a contracted background); auto picks one from the cameras")
    parser.add_argument("--bbox", default=None, metavar="X0,Y0,Z0,X1,Y1,Z1",
                        help="world box of the foreground grid (min and max corner), instead of the "
                             "scene's own estimate (train.json records the box and how it was chosen); write "
                             "--bbox=X0,... when X0 is negative")


def parse_bbox(text: str):
    """[2, 3] float32 from 'X0,Y0,Z0,X1,Y1,Z1'; UserFacingError unless six finite numbers, min < max."""
    import numpy as np

    from engine.errors import UserFacingError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(math.isfinite(v) for v in values) or \
            not all(lo < hi for lo, hi in zip(values[:3], values[3:])):
        raise UserFacingError(f"--bbox '{text}' is not six finite numbers X0,Y0,Z0,X1,Y1,Z1 with each "
                              "minimum below its maximum; e.g. --bbox -1,-1,-1,1,1,1")
    return np.asarray(values, np.float32).reshape(2, 3)


def run(args) -> int:
    """Read the scene, train within the budget, write DIR/field.pt and DIR/train.json as one folder."""
    from engine.device import resolve_device
    from engine.errors import UserFacingError
    from engine.field.checkpoint import save_field
    from engine.field.progress import training_bar
    from engine.field.train import TrainConfig, field_kind, train_field
    from engine.io import atomic_dir, check_output_dir
    from engine.memory import check_training
    from engine.scenes import load_scene
    from engine.scenes.checks import check_region

    if args.max_minutes <= 0 or (args.resolution is not None and args.resolution < 8):
        raise UserFacingError("--max-minutes must be > 0 and --resolution at least 8")
    if not math.isfinite(args.max_minutes):
        raise UserFacingError(f"--max-minutes {args.max_minutes} is not a finite number of minutes")
    bbox = parse_bbox(args.bbox) if args.bbox is not None else None
    check_output_dir(args.out, marker="train.json")
    device = resolve_device(args.device)
    scene = load_scene(args.scene, args.downscale)
    scene_hash = scene.content_hash()                   # the scene's identity, whatever box is trained
    if bbox is not None:
        scene = dataclasses.replace(scene, bbox=bbox, bbox_source="--bbox")
    check_region(scene.bbox, scene.near, scene.far, scene.source, nonempty=True)
    kind = field_kind(scene, args.space)
    resolution = args.resolution or (160 if kind == "ndc" else 128)
    check_training(resolution, len(scene.train_ids) * scene.H * scene.W, device)
    out = Path(args.out)
    with atomic_dir(out, marker="train.json") as tmp:   # refuses a file or a foreign folder up front
        print(f"field kind {kind} ({'--space' if args.space != 'auto' else 'auto: ' + KIND_REASONS[kind]}); "
              f"box {_box_text(scene.bbox)} ({scene.bbox_source})")
        started = time.perf_counter()
        with training_bar(f"train {scene.name}") as progress:
            result = train_field(scene, device=device, max_seconds=args.max_minutes * 60.0,
                                 config=TrainConfig(resolution=resolution, space=kind), progress=progress)
        report = {
            "scene": scene.name, "source": scene.source, "scene_hash": scene_hash,
            "test_psnr": result.test_psnr, "seconds": round(result.seconds, 2),
            "eval_seconds": round(result.eval_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2), "iterations": result.iterations,
            "resolution": list(result.field.resolution), "device": device,
            "downscale": args.downscale, "image_size": [scene.H, scene.W],
            "field_kind": kind, "field_kind_chosen_by": "--space" if args.space != "auto" else "auto",
            "bbox": [[round(float(v), 6) for v in row] for row in scene.bbox], "bbox_source": scene.bbox_source,
            "background_resolution": (result.field.outside.resolution if result.field.outside is not None
                                      else None),
        }
        save_field(tmp / "field.pt", result.field, scene_hash=scene_hash, meta=report)
        (tmp / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    psnr = "n/a" if result.test_psnr is None else f"{result.test_psnr:.2f} dB"
    print(f"wrote {out / 'field.pt'}: test PSNR {psnr}, {result.iterations} iterations, "
          f"{result.seconds:.0f} s, grid {'x'.join(map(str, result.field.resolution))}")
    return 0


def _box_text(bbox) -> str:
    return "[" + ", ".join("(" + ", ".join(f"{float(v):.3g}" for v in row) + ")" for row in bbox) + "]"
