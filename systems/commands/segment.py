"""`main.py segment SCENE --view V (--point X,Y[,L] ... | --box ... | --mask PNG) --out OUT`.

Runs the App headless through the same segmentation systems as the viewer: prompt one view, lift
it, propagate over the training views (one view per frame), then write OUT/mask_grid.npz,
OUT/masks/<view name>.png for every view (rendered from the 3D mask, M > 0) and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options (no heavy imports: `--help` stays fast)."""
    parser.add_argument("scene", nargs="?", default="builtin", help="'builtin' or a scene folder")
    parser.add_argument("--downscale", type=int, default=None, help="image downscale factor of the scene")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--field", default=None, help="field.pt (or its folder) from `main.py train`")
    parser.add_argument("--view", required=True, help="the prompted view: a name or an index")
    parser.add_argument("--point", action="append", default=[], metavar="X,Y[,LABEL]",
                        help="a click in pixels (label 1 object, 0 background); repeatable")
    parser.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box prompt in pixels")
    parser.add_argument("--mask", default=None, metavar="PNG", help="a ready mask of the view (> 0 = object)")
    parser.add_argument("--segmenter", choices=("auto", "sam", "fallback", "gt"), default="auto")
    parser.add_argument("--gt-masks", default=None, help="folder of <view name>.png masks (gt segmenter)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint file")
    parser.add_argument("--num-prompts", type=int, default=3, help="self-prompts per view")
    parser.add_argument("--iou-gate", type=float, default=0.5, help="reject views whose IoU is below")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--name", default=None, help="object name (default 'object 1')")


def run(args) -> int:
    """Segment, propagate, write the outputs; user errors raise UserFacingError subclasses."""
    from pathlib import Path

    from tqdm import tqdm

    from components.camera import Camera
    from components.messages import (
        BoxPrompted,
        MaskPrompted,
        NewObjectRequested,
        PromptAdded,
        PromptRejected,
        PropagationFinished,
        PropagationProgressed,
        PropagationRequested,
    )
    from components.resources import SegmentationSettings, ViewCache
    from engine.app import App
    from engine.device import resolve_device
    from engine.errors import UserFacingError
    from engine.scenes import load_scene
    from engine.schedule import Schedule
    from systems.sam import PromptError, make_segmenter
    from systems.segmentation import cli
    from systems.segmentation.outputs import save_mask_grid, write_view_masks
    from systems.segmentation.plugin import segmentation_plugin
    from systems.segmentation.setup import insert_segmentation

    if not (args.point or args.box or args.mask):
        raise PromptError("no prompt: give --point X,Y (repeatable), --box X0,Y0,X1,Y1 or --mask PNG")
    if args.num_prompts < 1 or not 0.0 <= args.iou_gate <= 1.0:
        raise UserFacingError("--num-prompts must be >= 1 and --iou-gate within [0, 1]")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    device = resolve_device(args.device)
    scene = load_scene(args.scene, args.downscale)
    view = scene.view_index(args.view)
    name = scene.view_names[view]
    points = [cli.parse_point(p, scene.H, scene.W, name) for p in args.point]
    box = cli.parse_box(args.box, scene.H, scene.W, name) if args.box else None
    mask = cli.read_mask_png(args.mask, scene.H, scene.W) if args.mask else None
    gt_masks = cli.gt_mask_folder(scene, view, points, args.gt_masks) if args.segmenter == "gt" else args.gt_masks
    segmenter = make_segmenter(args.segmenter, checkpoint=args.sam_checkpoint, gt_masks=gt_masks, device=device)
    if segmenter.notice:
        print(segmenter.notice, file=sys.stderr)
    field, field_hash = cli.load_or_default_field(scene, args.field, device)
    seconds["load"] = time.perf_counter() - start

    settings = SegmentationSettings(num_prompts=args.num_prompts, iou_gate=args.iou_gate)
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, segmenter, settings, device=device, field_hash=field_hash)
    camera = Camera.of_view(scene, view)
    app.send(NewObjectRequested(args.name))
    for x, y, label in points:
        app.send(PromptAdded(camera, x, y, label, view))
    if box is not None:
        app.send(BoxPrompted(camera, box, view))
    if mask is not None:
        app.send(MaskPrompted(camera, mask, view))
    app.send(PropagationRequested())
    finished, progress = None, []
    with tqdm(total=len(scene.train_ids), desc=f"segment {scene.name}", unit="view") as bar:
        while finished is None:
            app.step()
            for system, spent in app.system_seconds.items():
                key = system.rsplit(".", 1)[-1]
                seconds[key] = seconds.get(key, 0.0) + spent
            rejected = app.messages.read(PromptRejected, "segment")
            if rejected:
                raise PromptError(rejected[0].reason)
            for message in app.messages.read(PropagationProgressed, "segment"):
                bar.total = message.total
                bar.update(1)
                bar.set_postfix(accepted=sum(p.accepted for p in progress) + message.accepted, refresh=False)
                progress.append(message)
            done = app.messages.read(PropagationFinished, "segment")
            finished = done[0] if done else None
    if finished.accepted == 0 and finished.rejected > 0:
        raise cli.PropagationError(finished.message)

    out = Path(args.out)
    masks_start = time.perf_counter()
    save_mask_grid(app, out / "mask_grid.npz")
    with tqdm(total=len(scene), desc="masks", unit="view") as bar:
        write_view_masks(app, out / "masks", 0, range(len(scene)), progress=lambda: bar.update(1))
    seconds["write_outputs"] = time.perf_counter() - masks_start
    seconds["view_weights_total"] = app.resource(ViewCache).seconds
    seconds["total"] = time.perf_counter() - start
    _write_summary(out, scene, view, args, segmenter, settings, progress, finished, seconds)
    print(f"{finished.message}; wrote {out / 'mask_grid.npz'}, {out / 'masks'} ({len(scene)} views), "
          f"{out / 'summary.json'}")
    return 0


def _write_summary(out, scene, view, args, segmenter, settings, progress, finished, seconds) -> None:
    """OUT/summary.json: views used / rejected with IoU, seconds per stage, segmenter, settings, split."""
    import dataclasses
    import json

    from engine.io import atomic_write

    names = scene.view_names
    summary = {
        "scene": scene.name, "scene_hash": scene.content_hash(), "prompted_view": names[view],
        "prompts": {"points": args.point, "box": args.box, "mask": args.mask}, "object": args.name or "object 1",
        "segmenter": segmenter.name, "segmenter_notice": segmenter.notice,
        "settings": dataclasses.asdict(settings),
        "train_views": [names[i] for i in scene.train_ids], "test_views": [names[i] for i in scene.test_ids],
        "accepted": [{"view": names[p.view], "iou": round(p.iou, 4)} for p in progress if p.accepted],
        "rejected": [{"view": names[p.view], "iou": round(p.iou, 4)} for p in progress if not p.accepted],
        "message": finished.message,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=1))
