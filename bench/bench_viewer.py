"""Viewer speed on a headless EGL context: FPS while moving (adaptive internal resolution, then
forced to full resolution) and while still, and the time from stopping to the full-resolution
frame, at 1280x720 on a 128^3 field with the mask overlay.

--field trained (default): the built-in scene's default field, the one `main.py view` shows
(engine/field/cache.py default_field: the default recipe for a fixed iteration count at about
128^3 voxels; deterministic; ~5 min on 2 cores the first time, then cached). --field FILE.pt: a saved field of
the built-in scene. --field truth: the scene's ground
truth as a voxel field (clear empty space; deterministic, no training).
Writes bench/results/viewer[-truth].json and prints a table.

--while-encoding: instead, the frame times (p50 / p99 ms) of the moving viewer while a random-weight
SAM ViT-B encodes the training views in the background (the viewer's encoder worker), beside the
same frames with no encoder; merged into bench/results/viewer.json as frame_ms_p50_while_encoding
and frame_ms_p99_while_encoding (with the field they were measured on).
Usage: python bench/bench_viewer.py [--field trained|truth|FILE.pt] [--frames N] [--while-encoding]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60, help="moving frames to time")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--field", default="trained", help="trained | truth | a field checkpoint of the built-in scene")
    parser.add_argument("--out", help="results file (default bench/results/viewer[-truth].json)")
    parser.add_argument("--while-encoding", action="store_true",
                        help="frame times while a random ViT-B encodes in the background (see above)")
    parser.add_argument("--seconds", type=float, default=60.0, help="--while-encoding: seconds of frames to time")
    args = parser.parse_args()
    W, H = (int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()[0]                                        # 1-minute load of other work
    if args.while_encoding:
        return bench_while_encoding(args, H, W)

    import esper

    from components.resources import MaskGrid
    from engine.platform.gl import headless_context
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.camera import ops
    from systems.camera.system import ViewerCamera
    from systems.render.gl_present import GLPresenter
    from systems.render.progressive import Phase
    from systems.sam.factory import make_segmenter
    from systems.segmentation.objects import create_object
    from systems.viewer.plugin import build_viewer

    truth, scene = builtin_truth(128), builtin_scene(128)
    field = load_field(args.field, scene, truth)                            # trained on both cores once
    torch.set_num_threads(1)                                                # the renderer needs a core
    app = build_viewer(scene, field, make_segmenter("fallback"), H=H, W=W, gl=True, ui=False)
    ctx = headless_context()
    app.insert_resource(GLPresenter(ctx=ctx, target=ctx.simple_framebuffer((W, H), components=4)))
    with app.active():
        for k in (1, 2):                                                    # two objects, overlay on
            create_object(app)
            app.resource(MaskGrid).votes[k - 1] = truth.voxel_truth(k, scene.bbox, field.resolution) * 2.0 - 1
            app.mark_changed(MaskGrid)
    cam = app.resource(ViewerCamera)
    target = ops.orbit_target(cam.T_world_camera, np.asarray(scene.bbox).mean(0))
    app.step()
    presenter = app.resource(GLPresenter)

    start = time.perf_counter()
    for _ in range(args.frames):
        cam.set_pose(ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        app.step()
    moving_fps = args.frames / (time.perf_counter() - start)
    low_scale_moving = presenter.state.low_scale

    start, refine_frames = time.perf_counter(), 0
    while presenter.state.phase is not Phase.DONE:
        app.step()
        refine_frames += 1
    to_full = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.frames):
        app.step()
    still_fps = args.frames / (time.perf_counter() - start)
    full_frame = presenter.state.seconds_per_row * H if presenter.state.seconds_per_row else float("nan")
    presenter.config = dataclasses.replace(presenter.config, low_scale=1, max_low_scale=1)  # moving at full res
    presenter.state.low_scale, start, full_frames = 1, time.perf_counter(), 0
    while full_frames < args.frames and time.perf_counter() - start < 3.0:
        cam.set_pose(ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        app.step()
        full_frames += 1
    full_res_moving_fps = full_frames / (time.perf_counter() - start)

    results = {"size": f"{W}x{H}", "field": f"{args.field} " + "x".join(map(str, field.resolution)),
               "occupancy": round(float(field.occupancy.float().mean()), 3), "overlay_objects": 2,
               "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
               "renderer": ctx.info["GL_RENDERER"], "moving_fps": round(moving_fps, 1),
               "refining_fps": round(refine_frames / to_full, 1), "still_fps": round(still_fps, 1),
               "seconds_to_full_resolution": round(to_full, 3),
               "full_resolution_moving_fps": round(full_res_moving_fps, 1),
               "full_frame_ray_march_seconds": round(full_frame, 3), "low_scale_moving": low_scale_moving}
    out = Path(args.out) if args.out else \
        ROOT / "bench" / "results" / ("viewer.json" if args.field == "trained" else "viewer-truth.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:<30} {value}")
    with app.active():
        esper.clear_database()
    return 0


def load_field(name: str, scene, truth):
    """The field named by --field (see the module docstring)."""
    if name == "truth":
        from engine.field.fixtures import exact_builtin_field

        return exact_builtin_field(scene, truth, 128)
    if name == "trained":
        from engine.field.cache import default_field

        return default_field(scene)[0]
    from engine.field.checkpoint import load_field as load_checkpoint

    return load_checkpoint(name, scene_hash=scene.content_hash())


def moving_frames(app, seconds: float, busy=lambda: True) -> list[float]:
    """Milliseconds of each frame while orbiting the camera, for `seconds` or until busy() fails."""
    from components.resources import SceneData
    from systems.camera import ops
    from systems.camera.system import ViewerCamera

    cam = app.resource(ViewerCamera)
    target = ops.orbit_target(cam.T_world_camera, np.asarray(app.resource(SceneData).scene.bbox).mean(0))
    frames, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds and busy():
        t0 = time.perf_counter()
        cam.set_pose(ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        app.step()
        frames.append((time.perf_counter() - t0) * 1000.0)
    return frames


def bench_while_encoding(args, H: int, W: int) -> int:
    """Frame times with no encoder, then while the viewer's worker encodes with a random ViT-B."""
    import esper

    from components.encoding import Encoding
    from engine.platform.gl import headless_context
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter
    from systems.sam.factory import make_segmenter
    from systems.sam.models import build_sam
    from systems.sam.sam import SamSegmenter
    from systems.sam.system import stop_encoding
    from systems.viewer.plugin import build_viewer

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = load_field(args.field, scene, truth)
    torch.set_num_threads(1)                                                # as `main.py view` does
    ctx = headless_context()
    rows = {}
    for label, segmenter in (("no_encoder", make_segmenter("fallback")),
                             ("while_encoding", SamSegmenter(build_sam("vit_b"), model_type="vit_b"))):
        app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=False)
        app.insert_resource(GLPresenter(ctx=ctx, target=ctx.simple_framebuffer((W, H), components=4)))
        for _ in range(5):
            app.step()                                                      # the worker starts, GL warms up
        encoding = app.try_resource(Encoding)
        busy = (lambda: True) if encoding is None else (lambda worker=encoding.worker: worker.queued > 0)
        frames = moving_frames(app, args.seconds, busy)
        rows[label] = {"frames": len(frames), "p50_ms": round(float(np.percentile(frames, 50)), 1),
                       "p99_ms": round(float(np.percentile(frames, 99)), 1),
                       "max_ms": round(float(np.max(frames)), 1),
                       "views_encoded": len(encoding.arrived) if encoding else 0,
                       "encoder_s_per_view": round(encoding.seconds / max(1, len(encoding.arrived)), 1)
                       if encoding else 0.0}
        stop_encoding(app)
        with app.active():
            esper.clear_database()
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / "viewer.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update({"frame_ms_p50_while_encoding": rows["while_encoding"]["p50_ms"],
                    "frame_ms_p99_while_encoding": rows["while_encoding"]["p99_ms"],
                    "while_encoding": {**rows, "field": args.field, "size": f"{W}x{H}",
                                       "encoder": "random-weight SAM ViT-B in the viewer's worker thread",
                                       "load_average_before": round(os.getloadavg()[0], 2)}})
    out.write_text(json.dumps(results, indent=2) + "\n")
    for label, row in rows.items():
        print(f"{label:<16} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    print(f"wrote {out} (load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
