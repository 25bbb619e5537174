"""`main.py export GRID --field FIELD --format FORMAT --out PATH`: write a segmented object.

The formats are systems/export/registry.py's table; details and file layouts in
systems/export/export.py, formats.py, views.py.
"""

from __future__ import annotations

from pathlib import Path

from components.resources import SegmentationSettings
from systems.export.registry import FORMATS

POINT_BYTES = 64   # a sampled surface point: position, colour, face index and the sampling temporaries


def add_arguments(parser) -> None:
    parser.add_argument("grid", help="mask grid written by `segment` (OUT/mask_grid.npz)")
    parser.add_argument("--field", default=None,
                        help="the field.pt (or its folder) the object was segmented with (default for the "
                             "built-in scene: its cached field, as in `segment`)")
    parser.add_argument("--format", required=True, choices=list(FORMATS),
                        help="what to write: " + "; ".join(f"{f.name}: {f.help}" for f in FORMATS.values()))
    parser.add_argument("--out", required=True,
                        help="output file (npz, ply, obj, mesh-ply) or folder of PNGs (masks, renders)")
    parser.add_argument("--object", default=None,
                        help="object name in the grid (default: the only one; npz: all of them)")
    parser.add_argument("--up", choices=("y", "z"), default=None,
                        help="meshes and points: the file axis that holds the scene's up (default: y for obj, "
                             "the OBJ convention Blender imports upright; z for ply and mesh-ply)")
    parser.add_argument("--smooth", type=int, default=10, metavar="N",
                        help="Taubin smoothing iterations of the mesh, 0 = none (default 10)")
    parser.add_argument("--alpha-iso", type=float, default=SegmentationSettings.weight_cutoff,
                        help="mesh surface: where alpha over one ray-marching step reaches this (default "
                             f"{SegmentationSettings.weight_cutoff:g}: the least the views count)")
    parser.add_argument("--speck-voxels", type=int, default=64, metavar="N",
                        help="solid masks: connected pieces of fewer voxels are dropped (default 64)")
    parser.add_argument("--points", type=int, default=100_000, help="points of the ply point cloud")
    parser.add_argument("--scene", default="builtin",
                        help="the scene the object was segmented in; its views carve the solid mask and are "
                             "rendered (default builtin)")
    parser.add_argument("--downscale", type=int, default=None, help="downscale the scene's images")
    parser.add_argument("--path", default=None,
                        help="camera path JSON to render instead of the scene's views (systems/export/views.py)")
    parser.add_argument("--video", default=None, help="also write the frames as PATH.mp4 or PATH.gif")
    parser.add_argument("--fps", type=int, default=12, help="video frames per second")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--min-vote", type=float, default=0.0,
                        help="splat scenes: keep the Gaussians whose vote exceeds this (default 0; higher drops "
                             "the ambiguous ones at the boundary)")


def run(args) -> int:
    """Load the grid, scene and field, check they belong together, export; user errors raise."""
    from dataclasses import replace

    from engine.device import resolve_device
    from engine.io import check_output_dir
    from engine.memory import require
    from engine.scenes import load_scene
    from engine.splats.scene import is_splat_scene, load_splat_scene
    from systems.export import views
    from systems.export.export import FOLDER_MARKER, ExportError, ExportOptions, export_object
    from systems.export.scene_views import export_scene
    from systems.export.solid import CarveSettings
    from systems.export.splats import export_splat_object
    from systems.segmentation.cli import load_or_default_field
    from systems.segmentation.grid_file import load_mask_grid

    kind = FORMATS[args.format]
    if kind.folder:
        check_output_dir(args.out, marker=FOLDER_MARKER)
    elif Path(args.out).is_dir():
        raise ExportError(f"--out {args.out} is a folder; format {args.format} writes one file: give a file path")
    if args.points < 1 or args.smooth < 0 or args.fps < 1 or args.speck_voxels < 1 or not 0 < args.alpha_iso < 1:
        raise ExportError("--points, --speck-voxels and --fps must be >= 1, --smooth >= 0 and --alpha-iso "
                          "within (0, 1)")
    require(args.points * POINT_BYTES, f"--points {args.points}", "use fewer --points")
    grid = load_mask_grid(args.grid)
    if is_splat_scene(args.scene):
        splats = load_splat_scene(args.scene, downscale=args.downscale)
        cameras = (views.load_camera_path(args.path) if args.path else views.scene_cameras(splats.scene)
                   ) if kind.renders else None
        written = export_splat_object(grid, splats, args.format, args.out, object_name=args.object,
                                      min_vote=args.min_vote, cameras=cameras)
        print(f"exported {args.format} to {_listing(written, args.out)}")
        return 0
    if "voxels" not in kind.scenes:
        raise ExportError(f"format {args.format} writes Gaussians: give the splat scene the object was segmented "
                          "in with --scene (builtin-gs, a 3DGS .ply or output folder)")
    scene = load_scene(args.scene, downscale=args.downscale)
    if scene.content_hash() != grid.scene_hash:
        raise ExportError(f"{args.grid} was segmented in another scene than '{scene.name}' (hash "
                          f"{grid.scene_hash}, this one {scene.content_hash()}): give it with --scene "
                          f"(and --downscale)")
    device = resolve_device(args.device)
    field, field_hash = load_or_default_field(scene, args.field, device)
    cameras = None
    if kind.renders:
        cameras = views.load_camera_path(args.path) if args.path else views.scene_cameras(scene)
    options = ExportOptions(format=args.format, object=args.object, smooth=args.smooth, up=args.up,
                            alpha_iso=args.alpha_iso, points=args.points,
                            carve=replace(CarveSettings(), speck_voxels=args.speck_voxels),
                            video=Path(args.video) if args.video else None, fps=args.fps)
    context = export_scene(scene, field, device=device, field_hash=field_hash, cameras=cameras)
    written = export_object(grid, field, args.out, options, context, field_hash=field_hash)
    print(f"exported {args.format} to {_listing(written, args.out)}")
    return 0


def _listing(written: list[Path], out: str) -> str:
    """`out` for one file; else what the folder holds and the video beside it."""
    if len(written) == 1:
        return str(written[0])
    images = [p for p in written if p.suffix == ".png"]
    others = [str(p) for p in written if p.suffix != ".png"]
    return ", ".join([f"{len(images)} PNG files under {out}", *others])
