"""`main.py view`: the interactive viewer (a window when DISPLAY is set), else a headless demo."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

DEMO_OUT = Path("outputs/view_demo")


def add_arguments(parser) -> None:
    from systems.sam.factory import add_sam_model_argument, add_segmenter_argument

    parser.add_argument("scene", nargs="?", default="builtin",
                        help="'builtin', a scene folder, or a splat scene ('builtin-gs', a 3DGS .ply or output folder)")
    parser.add_argument("--field", help="a trained field checkpoint (default: train once and cache; none for a "
                        "splat scene)")
    parser.add_argument("--size", default="1280x720", help="window size WxH (default 1280x720)")
    parser.add_argument("--screenshot", help="write a PNG of the first full-resolution frame, then quit")
    parser.add_argument("--frames", type=int, help="quit after N frames")
    parser.add_argument("--script", help="JSON input script (see systems/viewer/script.py)")
    add_segmenter_argument(parser)
    parser.add_argument("--gt-masks", help="folder of <view name>.png masks for --segmenter gt "
                        "(default on the built-in scene: its ground-truth object ids)")
    parser.add_argument("--sam-checkpoint", help="SAM checkpoint file")
    add_sam_model_argument(parser)
    parser.add_argument("--propagation-views", type=int,
                        help="propagate over N evenly spaced training views (default: all)")
    parser.add_argument("--train-seconds", type=float, default=120.0,
                        help="training time when no field is cached (default 120; once, then cached)")
    parser.add_argument("--downscale", type=int, help="divide the scene's images by N")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (field training and rendering)")
    parser.add_argument("--out", default=str(DEMO_OUT), help="headless demo output folder")
    parser.add_argument("--headless", action="store_true", help="run the headless demo even with a display")
    parser.add_argument("--record", metavar="FILE", help="record the session (prompts, camera, grids) to a new FILE")
    parser.add_argument("--continue", dest="continue_from", metavar="FILE",
                        help="replay a recorded session, then keep recording into the same FILE")
    parser.add_argument("--force", action="store_true", help="--continue a recording of another scene or version")


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


def check_numbers(args) -> None:
    """Refuse counts and times that cannot run (ViewerArgumentError): a NaN training time would
    train forever, a count below 1 would show nothing."""
    from systems.viewer.scene_setup import ViewerArgumentError

    for flag, value in (("--frames", args.frames), ("--propagation-views", args.propagation_views)):
        if value is not None and value < 1:
            raise ViewerArgumentError(f"{flag} must be at least 1, not {value}")
    if not (math.isfinite(args.train_seconds) and args.train_seconds > 0):
        raise ViewerArgumentError(f"--train-seconds must be a positive number of seconds, not {args.train_seconds:g}")


def run(args) -> int:
    import torch

    from systems.record.recorder import Recorder, RecordingSettings, start_recording, stop_recording
    from systems.record.session import continue_recording
    from systems.viewer.plugin import build_viewer
    from systems.viewer.scene_setup import ViewerArgumentError, load_viewer_inputs
    from systems.viewer.script import load_script
    from systems.viewer.session import SessionFiles

    torch.set_num_threads(1)      # the renderer (llvmpipe) needs the other core; see PERF-FACTS.md
    H, W = parse_size(args.size)
    check_numbers(args)
    headless = args.headless or not os.environ.get("DISPLAY")
    if args.record and args.continue_from:
        raise ViewerArgumentError("--record and --continue both name a file to record into: give one")
    demo = headless and not (args.script or args.screenshot or args.frames or args.record or args.continue_from)
    if demo:
        from engine.io import check_output_dir
        from systems.viewer.demo import DEMO_MARKER

        check_output_dir(args.out, marker=DEMO_MARKER)      # before the scene and its field are made
    scene, field, segmenter, field_path = load_viewer_inputs(args)
    if demo:
        from systems.viewer.demo import run_demo

        run_demo(scene, field, segmenter, H=H, W=W, out=Path(args.out))
        return 0
    if getattr(segmenter, "notice", None):
        print(f"note: {segmenter.notice}", file=sys.stderr)
    settings = None
    if args.propagation_views:
        from components.resources import SegmentationSettings

        ids = list(scene.train_ids)
        step = max(1, len(ids) // max(1, args.propagation_views))
        settings = SegmentationSettings(views=tuple(ids[::step][:args.propagation_views]))
    script = load_script(args.script) if args.script else []
    if args.screenshot:
        script += [{"wait": "still"}, {"screenshot": args.screenshot}, {"after": 2, "quit": True}]
    files = SessionFiles(field_path=str(field_path), checkpoint=args.sam_checkpoint)
    app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=not headless, script=script or None,
                       fixed_dt=1 / 30 if args.script else None, settings=settings, recording=True, files=files)
    if args.record:
        start_recording(app, RecordingSettings(Path(args.record), field_path=files.field_path,
                                               checkpoint=files.checkpoint))
    elif args.continue_from:
        files.replay, notices = continue_recording(app, RecordingSettings(Path(args.continue_from), force=args.force))
        for line in notices:
            print(f"note: {line}", file=sys.stderr)
    from systems.viewer.run import run_headless, run_windowed

    try:
        if headless:
            frames = run_headless(app, max_frames=args.frames)
        else:
            frames = run_windowed(app, title=f"SA3D - {scene.name}", max_frames=args.frames)
    finally:
        recording = app.try_resource(Recorder)
        stop_recording(app)
    print(f"viewer: {frames} frames", file=sys.stderr)
    if recording is not None:
        print(f"recorded the session in {recording.settings.path}", file=sys.stderr)
    if files.replay is not None and files.replay.problems:
        for problem in files.replay.problems:
            print(f"mismatch: {problem}", file=sys.stderr)
    if args.screenshot:
        print(json.dumps({"screenshot": args.screenshot}))
    return 0
