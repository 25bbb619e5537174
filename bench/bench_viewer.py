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

--click: instead, the frames around a click on a view whose weights were never built (no disk
cache), with the fallback segmenter: a click on the snapped training view, picking its candidate
(a propagation over CLICK_VIEWS views), a click on a free camera (rendered at the prompt size),
each until its answer arrives; the click's work inside the frame (the viewer before its background
worker; BackgroundWork.inline) and in the worker, in one run. Merged into bench/results/viewer.json
as "click".
Usage: python bench/bench_viewer.py [--field trained|truth|FILE.pt] [--frames N] [--while-encoding | --click]
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
    parser.add_argument("--click", action="store_true", help="frames around a click on a new view (see above)")
    args = parser.parse_args()
    W, H = (int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()[0]                                        # 1-minute load of other work
    if args.while_encoding:
        return bench_while_encoding(args, H, W)
    if args.click:
        return bench_click(args, H, W)

    import esper

    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.viewer.plugin import build_viewer

    truth, scene = builtin_truth(128), builtin_scene(128)
    field = load_field(args.field, scene, truth)                            # trained on both cores once
    torch.set_num_threads(1)                                                # the renderer needs a core
    app = build_viewer(scene, field, make_segmenter("fallback"), H=H, W=W, gl=True, ui=False)
    with offscreen_presenter(H, W) as presenter:
        app.insert_resource(presenter)
        results = bench_moving(app, args, field, truth, scene, H, W, load_before)
        app.remove_resource(GLPresenter)
    out = Path(args.out) if args.out else \
        ROOT / "bench" / "results" / ("viewer.json" if args.field == "trained" else "viewer-truth.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:<30} {value}")
    with app.active():
        esper.clear_database()
    return 0


def bench_moving(app, args, field, truth, scene, H: int, W: int, load_before: float) -> dict:
    """FPS moving, refining, still and moving at full resolution (the module docstring)."""
    from components.resources import MaskGrid
    from systems.camera import ops
    from systems.camera.system import ViewerCamera, set_pose
    from systems.render.gl_present import GLPresenter
    from systems.render.progressive import Phase
    from systems.segmentation.objects import create_object

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
        set_pose(app, ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
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
        set_pose(app, ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        app.step()
        full_frames += 1
    full_res_moving_fps = full_frames / (time.perf_counter() - start)

    return {"size": f"{W}x{H}", "field": f"{args.field} " + "x".join(map(str, field.resolution)),
            "occupancy": round(float(field.occupancy.float().mean()), 3), "overlay_objects": 2,
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "renderer": presenter.ctx.info["GL_RENDERER"], "moving_fps": round(moving_fps, 1),
            "refining_fps": round(refine_frames / to_full, 1), "still_fps": round(still_fps, 1),
            "seconds_to_full_resolution": round(to_full, 3),
            "full_resolution_moving_fps": round(full_res_moving_fps, 1),
            "full_frame_ray_march_seconds": round(full_frame, 3), "low_scale_moving": low_scale_moving}


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
    from systems.camera.system import ViewerCamera, set_pose

    cam = app.resource(ViewerCamera)
    target = ops.orbit_target(cam.T_world_camera, np.asarray(app.resource(SceneData).scene.bbox).mean(0))
    frames, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds and busy():
        t0 = time.perf_counter()
        set_pose(app, ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        app.step()
        frames.append((time.perf_counter() - t0) * 1000.0)
    return frames


def bench_while_encoding(args, H: int, W: int) -> int:
    """Frame times with no encoder, then while the viewer's worker encodes with a random ViT-B."""
    import esper

    from components.encoding import Encoding
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.sam.models import build_sam
    from systems.sam.sam import SamSegmenter
    from systems.sam.system import stop_encoding
    from systems.viewer.plugin import build_viewer

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = load_field(args.field, scene, truth)
    torch.set_num_threads(1)                                                # as `main.py view` does
    rows = {}
    for label, segmenter in (("no_encoder", make_segmenter("fallback")),
                             ("while_encoding", SamSegmenter(build_sam("vit_b"), model_type="vit_b"))):
        app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=False)
        with offscreen_presenter(H, W) as presenter:
            app.insert_resource(presenter)
            for _ in range(5):
                app.step()                                                  # the worker starts, GL warms up
            encoding = app.try_resource(Encoding)
            busy = (lambda: True) if encoding is None else (lambda worker=encoding.worker: worker.queued > 0)
            frames = moving_frames(app, args.seconds, busy)
            app.remove_resource(GLPresenter)
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


CLICK_VIEWS = 4          # --click: views the picked candidate is propagated over


def bench_click(args, H: int, W: int) -> int:
    """Frames around clicks on new views, the click's work in the frame and in the worker (see above)."""
    import esper

    from components.resources import SegmentationSettings, ViewCache
    from components.work import BackgroundWork
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import stop_workers

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = load_field(args.field, scene, truth)
    torch.set_num_threads(1)                                                # as `main.py view` does
    train = list(scene.train_ids)
    settings = SegmentationSettings(views=tuple(train[::len(train) // CLICK_VIEWS][:CLICK_VIEWS]))
    rows, loads = {}, [round(os.getloadavg()[0], 2)]
    for label, inline in (("in_frame", True), ("worker", False)):
        app = build_viewer(scene, field, make_segmenter("fallback"), H=H, W=W, gl=True, ui=False, script=[],
                           settings=settings)
        app.resource(ViewCache).store = None                                # every view's weights are built
        app.resource(BackgroundWork).inline = inline
        with offscreen_presenter(H, W) as presenter:
            app.insert_resource(presenter)
            rows[label] = click_phases(app, scene, truth)
            stop_workers(app)
            app.remove_resource(GLPresenter)
        with app.active():
            esper.clear_database()
        loads.append(round(os.getloadavg()[0], 2))
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / "viewer.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["click"] = {**rows, "field": args.field, "size": f"{W}x{H}", "segmenter": "fallback",
                        "propagation_views": CLICK_VIEWS, "load_average": loads,
                        "command": f"python bench/bench_viewer.py --click --field {args.field} --size {W}x{H}"}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'':<10} {'phase':<22} {'frames':>7} {'max ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'answered s':>11} "
          f"{'segmentation max ms':>20}")
    for label, phases in rows.items():
        for phase, row in phases.items():
            print(f"{label:<10} {phase:<22} {row['frames']:>7} {row['max_ms']:>8} {row['p50_ms']:>8} "
                  f"{row['p99_ms']:>8} {row['seconds']:>11} {row['segmentation_systems_max_ms']:>20}")
    print(f"wrote {out} (load {' -> '.join(map(str, loads))})")
    return 0


def click_phases(app, scene, truth) -> dict:
    """Run the click phases (--click) on a viewer App; per phase its frame times until the answer."""
    from components.messages import CandidatesReady, PropagationFinished
    from systems.camera import ops
    from systems.camera.system import ViewerCamera, set_pose
    from systems.segmentation.plugin import SYSTEMS
    from systems.viewer.demo import object_click
    from systems.viewer.plugin import frame_still
    from systems.viewer.script import ScriptPlayer

    player, cam = app.resource(ScriptPlayer), app.resource(ViewerCamera)
    target = ops.orbit_target(cam.T_world_camera, np.asarray(scene.bbox).mean(0))
    segmentation = {f"{fn.__module__}.{fn.__qualname__}" for fn in SYSTEMS}

    def phase(steps: list, answer: type) -> dict:
        for _ in range(400):
            if frame_still(app):
                break
            app.step()                                                      # the view drawn at full resolution
        player.steps += steps
        player.countdown = 1
        frames, in_segmentation, start = [], [], time.perf_counter()
        while not app.messages.read(answer, "bench") and time.perf_counter() - start < 600:
            t0 = time.perf_counter()
            app.step()
            frames.append((time.perf_counter() - t0) * 1000.0)
            in_segmentation.append(1000.0 * sum(t for name, t in app.system_seconds.items() if name in segmentation))
        return {"frames": len(frames), "max_ms": round(max(frames), 1),
                "p50_ms": round(float(np.percentile(frames, 50)), 1),
                "p99_ms": round(float(np.percentile(frames, 99)), 1), "seconds": round(time.perf_counter() - start, 2),
                "segmentation_systems_max_ms": round(max(in_segmentation), 1)}

    app.step()
    rows = {"click_training_view": phase([{"click": list(object_click(cam, scene, truth.instance_masks[cam.view], 1))}],
                                         CandidatesReady),
            "pick_and_propagate": phase([{"key": "1"}], PropagationFinished)}
    for _ in range(10):
        set_pose(app, ops.orbit(cam.T_world_camera, target, 6.0, 2.0, cam.up, 0.004))   # off the training views
        app.step()
    rows["click_free_camera"] = phase([{"key": "N"}, {"click": [cam.W / 2, cam.H / 2]}], CandidatesReady)
    return rows


if __name__ == "__main__":
    sys.exit(main())
