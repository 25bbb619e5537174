"""`main.py segment SCENE (--view V (--point X,Y[,L] ... | --box ... | --mask PNG) | --prompts FILE.json) --out OUT`.

Runs the App headless through the same segmentation systems as the viewer: for each object, prompt
its view, lift it, propagate over the training views (or --views; one view per frame), stopping
early after --stop-after rejected views in a row. The objects share the views' weights (built
once, and kept on disk for the next run on the same field). Writes OUT as a whole (a temporary
sibling folder moved into place at the end): mask_grid.npz with every object, masks/<view name>.png
for every view (one object; masks/<object name>/ for several) and summary.json. An object whose
every view was rejected still gets its summary and its prompted view's mask, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options (no heavy imports: `--help` stays fast). Segmentation defaults come
    from SegmentationSettings, their only home."""
    from components.resources import SegmentationSettings
    from systems.sam.factory import add_sam_model_argument, add_segmenter_argument

    defaults = SegmentationSettings()

    parser.add_argument("scene", nargs="?", default="builtin",
                        help="'builtin', a scene folder, or a splat scene ('builtin-gs', a 3DGS .ply or output folder)")
    parser.add_argument("--downscale", type=int, default=None, help="image downscale factor of the scene")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--field", default=None, help="field.pt (or its folder) from `main.py train`")
    parser.add_argument("--view", default=None, help="the prompted view: a name or an index")
    parser.add_argument("--point", action="append", default=[], metavar="X,Y[,LABEL]",
                        help="a click in pixels (label 1 object, 0 background); repeatable")
    parser.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box prompt in pixels")
    parser.add_argument("--mask", default=None, metavar="PNG", help="a ready mask of the view (> 0 = object)")
    parser.add_argument("--prompts", default=None, metavar="FILE.json",
                        help='several objects: [{"name": ..., "view": ..., "points": [[x, y], ...] | "box": '
                             '[x0, y0, x1, y1] | "mask": "PNG"}, ...] (instead of --view and its prompts)')
    parser.add_argument("--views", default=None, metavar="N|NAMES",
                        help="propagate over N evenly spaced training views, or over these views (comma-separated)")
    parser.add_argument("--stop-after", type=int, default=defaults.stop_after, metavar="K",
                        help="stop an object's propagation after K views rejected in a row (0: never; "
                             "default %(default)s)")
    add_segmenter_argument(parser)
    parser.add_argument("--gt-masks", default=None, help="folder of <view name>.png masks (gt segmenter)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint file")
    add_sam_model_argument(parser)
    parser.add_argument("--num-prompts", type=int, default=defaults.num_prompts,
                        help="self-prompts per view (default %(default)s)")
    parser.add_argument("--iou-gate", type=float, default=defaults.iou_gate,
                        help="reject views whose IoU is below (default %(default)s)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--name", default=None, help="object name (default 'object 1')")


def run(args) -> int:
    """Segment every object, write the outputs; user errors raise UserFacingError subclasses."""
    from tqdm import tqdm

    from components.resources import SegmentationSettings, ViewCache
    from engine.app import App
    from engine.device import resolve_device
    from engine.errors import UserFacingError
    from engine.io import atomic_dir, check_output_dir
    from engine.memory import check_view_weights
    from engine.scenes import load_scene
    from engine.schedule import Schedule
    from engine.splats.scene import is_splat_scene, load_splat_scene
    from systems.inverse.splats import open_splat_model
    from systems.sam import PromptError, make_segmenter
    from systems.segmentation import cli
    from systems.segmentation.headless import queued_views, segment_object
    from systems.segmentation.outputs import write_segment_outputs
    from systems.segmentation.plugin import segmentation_plugin
    from systems.segmentation.setup import insert_segmentation

    if args.prompts and (args.view or args.point or args.box or args.mask or args.name):
        raise PromptError("--prompts FILE names every object's view and prompts: drop --view, --point, "
                          "--box, --mask and --name")
    if not args.prompts and not (args.point or args.box or args.mask):
        raise PromptError("no prompt: give --point X,Y (repeatable), --box X0,Y0,X1,Y1 or --mask PNG "
                          "(or --prompts FILE.json)")
    if args.num_prompts < 1 or not 0.0 <= args.iou_gate <= 1.0 or args.stop_after < 0:
        raise UserFacingError("--num-prompts must be >= 1, --iou-gate within [0, 1] and --stop-after >= 0")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    device = resolve_device(args.device)
    splats = load_splat_scene(args.scene, downscale=args.downscale) if is_splat_scene(args.scene) else None
    scene = splats.scene if splats else load_scene(args.scene, args.downscale)
    check_view_weights(len(scene), scene.H, scene.W)       # masks are written for every view
    objects = (cli.read_prompts_file(args.prompts, scene, args.gt_masks) if args.prompts
               else [cli.object_from_flags(args, scene)])
    views = cli.parse_views(args.views, scene)
    check_output_dir(args.out, marker="summary.json")
    segmenters = []
    for obj in objects:
        gt = cli.gt_mask_folder(scene, obj.view, obj.points, obj.gt_masks) if args.segmenter == "gt" else None
        if not segmenters or args.segmenter == "gt":
            segmenters.append(make_segmenter(args.segmenter, checkpoint=args.sam_checkpoint, gt_masks=gt,
                                             model_type=args.sam_model, device=device))
        else:
            segmenters.append(segmenters[0])
    if segmenters[0].notice:
        print(segmenters[0].notice, file=sys.stderr)
    field, field_hash = (open_splat_model(splats, args.field) if splats
                         else cli.load_or_default_field(scene, args.field, device))
    seconds["load"] = time.perf_counter() - start

    settings = SegmentationSettings(num_prompts=args.num_prompts, iou_gate=args.iou_gate, views=views,
                                    stop_after=args.stop_after)
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, segmenters[0], settings, device=device, field_hash=field_hash)
    totals = [len(queued_views(scene, settings, obj.view)) for obj in objects]
    with atomic_dir(args.out, marker="summary.json") as tmp:
        results = []
        with tqdm(total=sum(totals), desc=f"segment {scene.name}", unit="view") as bar:
            for obj, segmenter in zip(objects, segmenters):
                results.append(segment_object(app, obj, segmenter, bar, seconds,
                                                  multiple=len(objects) > 1))
        masks_start = time.perf_counter()
        write_segment_outputs(app, tmp, objects, results, seconds, masks_start, start,
                              segmenter=segmenters[0], settings=settings)
    failed = [r for r in results if r.failed]
    cache = app.resource(ViewCache)
    print(f"{'; '.join(r.message for r in results)}; wrote {args.out} (mask_grid.npz, masks, summary.json; "
          f"view weights: {cache.built} built, {cache.loaded} read from the cache)")
    if failed:
        raise cli.PropagationError(f"{failed[0].message} (the prompted view's mask and the rejected views "
                                   f"are in {args.out}/summary.json)")
    return 0
