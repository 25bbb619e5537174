"""`main.py replay FILE`: replay a recorded segmentation session headless, through the same systems.

Writes OUT as a unit (engine/io.atomic_dir: an interrupted replay leaves the previous OUT whole):
OUT/mask_grid.npz (the segment command's layout) and OUT/masks/<view>.png (instance ids,
systems/record/outputs.py) and, with --video,
the recorded camera path with the mask overlay. Compares every recorded grid hash with the replay:
exit 0 when identical, 1 with one line per difference. File format: systems/record/fileformat.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT_MARKER = "mask_grid.npz"   # every replay output folder holds it


def add_arguments(parser) -> None:
    from systems.sam.families import FAMILIES

    parser.add_argument("file", help="the recording (.jsonl) written by `view --record FILE`")
    parser.add_argument("--scene", default=None, help="scene to replay on (default: the one recorded)")
    parser.add_argument("--downscale", type=int, default=None, help="downscale the scene's images")
    parser.add_argument("--field", default=None, help="field checkpoint (default: the file recorded; a splat "
                        "scene's is its .ply)")
    parser.add_argument("--out", default=None, help="output folder (default: FILE without .jsonl + '-replay')")
    parser.add_argument("--views", default="all",
                        help="views to write masks of: 'all', 'train', 'test' or names / indices, comma-separated")
    parser.add_argument("--video", default=None, help="also render the recorded camera path to PATH.mp4 / .gif")
    parser.add_argument("--video-size", type=int, default=256, help="longest side of a video frame in pixels")
    parser.add_argument("--fps", type=int, default=10, help="video frames per second")
    parser.add_argument("--segmenter", default=None, choices=tuple(FAMILIES),
                        help="2D segmenter (default: the one recorded)")
    parser.add_argument("--gt-masks", default=None, help="gt segmenter mask folder (default: the one recorded)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM weights (default: the file recorded)")
    parser.add_argument("--force", action="store_true",
                        help="replay a newer-version recording or one made on another scene anyway")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: the device the session was recorded on, where available")


def run(args) -> int:
    from engine.device import resolve_device
    from engine.field.checkpoint import load_field
    from engine.io import atomic_dir, check_output_dir
    from engine.scenes import load_scene
    from engine.splats.scene import is_splat_scene, load_splat_scene
    from systems.inverse.splats import open_splat_model
    from systems.record.determinism import differences, recorded_threads
    from systems.record.fileformat import RecordingError, check_header, file_hash
    from systems.record.outputs import VideoCapture, write_masks
    from systems.record.replayer import run_replay
    from systems.record.session import headless_replay_app, load_session
    from systems.segmentation.grid_file import save_mask_grid

    if not 16 <= args.video_size <= 4096 or args.fps < 1:
        raise RecordingError(f"--video-size must be within 16..4096 pixels and --fps >= 1 (got {args.video_size}, "
                             f"{args.fps})")
    recording, notices = load_session(args.file, force=args.force)
    header = recording.header
    name, field_path = args.scene or header["scene"]["name"], args.field or header["field"].get("path")
    splat_source = name if is_splat_scene(name) else field_path if field_path and is_splat_scene(field_path) else None
    splats = load_splat_scene(splat_source, downscale=args.downscale) if splat_source else None
    scene = splats.scene if splats else load_scene(name, downscale=args.downscale)
    check_header(recording, scene_hash=scene.content_hash(), force=args.force)
    out = Path(args.out) if args.out else recording.path.with_name(recording.path.stem + "-replay")
    check_output_dir(out, marker=OUT_MARKER)
    views = _views(scene, args.views)
    if field_path is None and splats is None:
        raise RecordingError(f"{recording.path} names no field file: give the field it was recorded "
                             f"with (--field PATH)")
    recorded_device = header.get("device", "cpu")
    device = "cpu" if args.device == "auto" and recorded_device == "cpu" else resolve_device(args.device)
    if device != recorded_device:
        notices.append(f"recorded on {recorded_device}, replaying on {device}: the devices round differently, "
                       f"so grids are checked by their voxels inside, not bit for bit")
    if splats is not None:                       # a splat scene: its Gaussians are the model
        (field, field_hash), field_path = open_splat_model(splats, None), str(splats.ply)
    else:
        field = load_field(field_path, scene_hash=scene.content_hash(), device=device)
        field_hash = file_hash(field_path)
    if header["field"].get("hash") not in ("none", field_hash):
        notices.append(f"{field_path} is not the field recorded (sha256 {field_hash[:12]}, recorded "
                       f"{header['field']['hash'][:12]}): the grids will differ")
    segmenter = _segmenter(args, header, device)
    capture = VideoCapture(args.video_size) if args.video else None
    notices += differences(header.get("determinism"))
    for line in notices:
        print(f"note: {line}", file=sys.stderr)
    app, replay = headless_replay_app(recording, scene, field, segmenter, device=device,
                                      field_hash=field_hash, capture=capture)
    with recorded_threads(header.get("determinism")):
        run_replay(app, replay)
    with atomic_dir(out, marker=OUT_MARKER) as tmp:
        save_mask_grid(app, tmp / OUT_MARKER)
        masks = write_masks(app, tmp / "masks", views)
    written = [str(out / "mask_grid.npz"), f"{len(masks)} masks in {out / 'masks'}"]
    if capture is not None:
        written.append(str(capture.write(args.video, fps=args.fps)))
    print(f"replayed {len(recording.events)} events of {recording.path} in {app.frame} frames "
          f"({replay.seconds:.1f} s); wrote {', '.join(written)}")
    for problem in replay.problems:
        print(f"mismatch: {problem}", file=sys.stderr)
    if replay.problems:
        return 1
    print(f"identical: {replay.checks} recorded grid checks match bit for bit" if replay.exact else
          f"consistent: {replay.checks} recorded grid checks match in their voxels inside")
    return 0


def _segmenter(args, header: dict, device: str):
    """The segmenter the session was recorded with (its family rebuilds it from the recorded
    source), unless the options name another; "auto" for a family this version does not know."""
    from systems.sam.factory import make_segmenter
    from systems.sam.families import AUTO, FAMILIES, SegmenterOptions

    recorded = header["segmenter"]
    kind = args.segmenter or recorded.get("name")
    source = recorded.get("source") if kind == recorded.get("name") else None
    if kind not in FAMILIES:
        return make_segmenter(AUTO, checkpoint=args.sam_checkpoint or source, device=device)
    options = SegmenterOptions(checkpoint=args.sam_checkpoint, gt_masks=args.gt_masks, device=device)
    return FAMILIES[kind].rebuild(source, options)


def _views(scene, chosen: str) -> list[int]:
    """Scene view indices named by --views; raises SceneError for a view not in the scene."""
    if chosen in ("all", "train", "test"):
        return list(range(len(scene))) if chosen == "all" else list(getattr(scene, f"{chosen}_ids"))
    return [scene.view_index(name.strip()) for name in chosen.split(",") if name.strip()]
