"""`main.py view`: the interactive viewer (a window when DISPLAY is set), else a headless demo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEMO_OUT = Path("outputs/view_demo")


def add_arguments(parser) -> None:
    parser.add_argument("scene", nargs="?", default="builtin", help="'builtin' or a scene folder")
    parser.add_argument("--field", help="a trained field checkpoint (default: train once and cache)")
    parser.add_argument("--size", default="1280x720", help="window size WxH (default 1280x720)")
    parser.add_argument("--screenshot", help="write a PNG of the first full-resolution frame, then quit")
    parser.add_argument("--frames", type=int, help="quit after N frames")
    parser.add_argument("--script", help="JSON input script (see systems/viewer/script.py)")
    parser.add_argument("--segmenter", default="auto", help="auto | sam | fallback | gt (default auto)")
    parser.add_argument("--gt-masks", help="folder of <view name>.png masks for --segmenter gt")
    parser.add_argument("--sam-checkpoint", help="SAM checkpoint file")
    parser.add_argument("--propagation-views", type=int,
                        help="propagate over N evenly spaced training views (default: all)")
    parser.add_argument("--train-seconds", type=float, default=60.0, help="training time when no field is cached")
    parser.add_argument("--downscale", type=int, help="divide the scene's images by N")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (field training and rendering)")
    parser.add_argument("--out", default=str(DEMO_OUT), help="headless demo output folder")
    parser.add_argument("--headless", action="store_true", help="run the headless demo even with a display")


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (H, W); raises ViewerArgumentError."""
    from systems.viewer.scene_setup import ViewerArgumentError

    try:
        W, H = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ViewerArgumentError(f"--size must look like 1280x720, not {text!r}") from None
    if not (16 <= W <= 8192 and 16 <= H <= 8192):
        raise ViewerArgumentError(f"--size {text} is out of range: use 16..8192 pixels per side")
    return H, W


def run(args) -> int:
    from systems.viewer.plugin import build_viewer
    from systems.viewer.scene_setup import load_viewer_inputs
    from systems.viewer.script import load_script

    import torch

    torch.set_num_threads(1)      # the renderer (llvmpipe) needs the other core; see PERF-FACTS.md
    H, W = parse_size(args.size)
    headless = args.headless or not os.environ.get("DISPLAY")
    scene, field, segmenter = load_viewer_inputs(args)
    if headless and not args.script and not args.screenshot and not args.frames:
        from systems.viewer.demo import run_demo

        out = run_demo(scene, field, H=H, W=W, out=Path(args.out))
        print(f"headless demo (no DISPLAY): wrote {out}")
        return 0
    settings = None
    if args.propagation_views:
        from components.resources import SegmentationSettings

        ids = list(scene.train_ids)
        step = max(1, len(ids) // max(1, args.propagation_views))
        settings = SegmentationSettings(views=tuple(ids[::step][:args.propagation_views]))
    script = load_script(args.script) if args.script else []
    if args.screenshot:
        script += [{"wait": "still"}, {"screenshot": args.screenshot}, {"after": 2, "quit": True}]
    app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=not headless,
                       script=script or None, fixed_dt=1 / 30 if args.script else None, settings=settings)
    from systems.viewer.run import run_headless, run_windowed

    if headless:
        frames = run_headless(app, max_frames=args.frames)
    else:
        frames = run_windowed(app, title=f"SA3D - {scene.name}", max_frames=args.frames)
    print(f"viewer: {frames} frames", file=sys.stderr)
    if args.screenshot:
        print(json.dumps({"screenshot": args.screenshot}))
    return 0
