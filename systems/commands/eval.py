"""`main.py eval --pred OUT/masks --gt DIR [--views test|train|all] [--json PATH]`: mIoU and mAcc.

Per view: IoU = TP / (TP + FP + FN), accuracy = (TP + TN) / all pixels; means over the views.
The split comes from OUT/summary.json beside the masks folder; GT files are matched by view name
(<name>.png/.npy/...); any value > 0 is foreground in both.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, help="folder of predicted <view name>.png masks (segment's OUT/masks)")
    parser.add_argument("--gt", required=True, help="folder of ground-truth masks named like the views")
    parser.add_argument("--views", choices=("test", "train", "all"), default="test",
                        help="which views to score (split from OUT/summary.json)")
    parser.add_argument("--json", default=None, help="write the scores to this JSON file")


def run(args) -> int:
    """Score, print a table and `mIoU <value>`; raise EvalError for missing folders or files."""
    import json
    from pathlib import Path

    from engine.io import atomic_write
    from systems.segmentation.metrics import EvalError, evaluate_folders, split_views

    pred, gt = Path(args.pred), Path(args.gt)
    for folder, flag in ((pred, "--pred"), (gt, "--gt")):
        if not folder.is_dir():
            raise EvalError(f"{flag} {folder} is not a folder of masks")
    names = split_views(pred, args.views)
    result = evaluate_folders(pred, gt, names)
    width = max(len(n) for n in result["views"]) if result["views"] else 4
    print(f"{'view':<{width}}  {'IoU %':>7}  {'Acc %':>7}")
    for view, score in result["views"].items():
        print(f"{view:<{width}}  {100 * score['iou']:7.2f}  {100 * score['acc']:7.2f}")
    print(f"mIoU {100 * result['mIoU']:.2f}")
    print(f"mAcc {100 * result['mAcc']:.2f}")
    if args.json:
        atomic_write(args.json, json.dumps({"pred": str(pred), "gt": str(gt), "views": args.views, **result},
                                           indent=1))
    return 0
