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
model of --encoder (default hq_vit_tiny, what a CPU user runs) encodes the training views in the
background (the viewer's encoder worker), beside the same frames with no encoder, then with the
camera still (the frame loop waiting for input as the window does when idle): per phase the views
encoded per minute and the cores the viewer and the encoder thread used. Merged into
bench/results/viewer.json as frame_ms_p50_while_encoding and frame_ms_p99_while_encoding (moving)
and while_encoding (every phase).

--click: instead, the frames around a click on a view whose weights were never built (no disk
cache), with the fallback segmenter: a click on the snapped training view, picking its candidate
(a propagation over CLICK_VIEWS views), a click on a free camera (rendered at the prompt size),
each until its answer arrives; the click's work inside the frame (the viewer before its background
worker; BackgroundWork.inline) and in the worker, in one run. Merged into bench/results/viewer.json
as "click".
Usage: python bench/bench_viewer.py [--field trained|truth|FILE.pt] [--frames N]
                                    [--while-encoding [--encoder MODEL] [--seconds S] | --click]
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
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="--while-encoding: seconds of frames to time per phase")
    parser.add_argument("--encoder", default="hq_vit_tiny", help="--while-encoding: the SAM-family model "
                        "encoding (random weights; default the one a CPU user runs)")
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


def thread_cpu_seconds(native_id: int | None) -> float:
    """CPU seconds (user + system) a thread of this process has used; 0 without one (or off Linux)."""
    if native_id is None:
        return 0.0
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime


def timed_frames(app, seconds: float, *, move: bool, busy=lambda: True, encoder_thread: int | None = None
                 ) -> tuple[list[float], float, float, float, int]:
    """Milliseconds of each frame for `seconds` or until busy() fails, orbiting the camera (move)
    or leaving it still; a still frame loop waits as the window does when the viewer is idle
    (systems/viewer/plugin.py: viewer_idle, IDLE_WAIT_S). Returns (frame ms, wall seconds, CPU
    seconds of the viewer (the process but the encoder thread: frame loop and GL), CPU seconds of
    the encoder thread, frames that waited)."""
    from components.resources import SceneData
    from systems.camera import ops
    from systems.camera.system import ViewerCamera, set_pose
    from systems.viewer.plugin import IDLE_WAIT_S, viewer_idle

    cam = app.resource(ViewerCamera)
    target = ops.orbit_target(cam.T_world_camera, np.asarray(app.resource(SceneData).scene.bbox).mean(0))
    frames, start, cpu, encoder = [], time.perf_counter(), time.process_time(), thread_cpu_seconds(encoder_thread)
    waited = 0
    while time.perf_counter() - start < seconds and busy():
        t0 = time.perf_counter()
        if move:
            set_pose(app, ops.orbit(cam.T_world_camera, target, 4.0, 0.0, cam.up, 0.004))
        elif viewer_idle(app):
            time.sleep(IDLE_WAIT_S)                  # Window.poll waits (for input) this long
            waited += 1
        app.step()
        frames.append((time.perf_counter() - t0) * 1000.0)
    encoder = thread_cpu_seconds(encoder_thread) - encoder
    return frames, time.perf_counter() - start, time.process_time() - cpu - encoder, encoder, waited


def bench_while_encoding(args, H: int, W: int) -> int:
    """Frame times with no encoder, then while the viewer's worker encodes the training views with a
    random-weight model of --encoder: camera moving, then still; the views it encoded per minute in
    each phase, and the cores the viewer and the encoder used (a still viewer must leave them to it)."""
    import esper

    from components.encoding import Encoding
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.sam.models import build_sam
    from systems.sam.sam import SamSegmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import stop_workers

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = load_field(args.field, scene, truth)
    torch.set_num_threads(1)                                                # as `main.py view` does
    torch.manual_seed(0)
    rows = {}
    for label, segmenter, phases in (
            ("no_encoder", make_segmenter("fallback"), (("moving", True),)),
            ("encoding", SamSegmenter(build_sam(args.encoder), model_type=args.encoder), (("moving", True),
                                                                                            ("still", False)))):
        app = build_viewer(scene, field, segmenter, H=H, W=W, gl=True, ui=False)
        with offscreen_presenter(H, W) as presenter:
            app.insert_resource(presenter)
            for _ in range(5):
                app.step()                                                      # the worker starts, GL warms up
            encoding = app.try_resource(Encoding)
            busy = (lambda: True) if encoding is None else (lambda worker=encoding.worker: worker.queued > 0)
            for phase, move in phases:
                before = len(encoding.arrived) if encoding else 0
                frames, wall, viewer_cpu, encoder_cpu, waited = timed_frames(
                    app, args.seconds, move=move, busy=busy,
                    encoder_thread=encoding.worker.native_id if encoding else None)
                encoded = (len(encoding.arrived) - before) if encoding else 0
                rows[f"{label}_{phase}"] = {
                    "frames": len(frames), "seconds": round(wall, 1),
                    "p50_ms": round(float(np.percentile(frames, 50)), 1),
                    "p99_ms": round(float(np.percentile(frames, 99)), 1), "max_ms": round(float(np.max(frames)), 1),
                    "viewer_cpu_cores": round(viewer_cpu / wall, 2), "encoder_cpu_cores": round(encoder_cpu / wall, 2),
                    "idle_frames": waited, "views_encoded": encoded,
                    "views_per_minute": round(60.0 * encoded / wall, 1)}
            app.remove_resource(GLPresenter)
        stop_workers(app)
        with app.active():
            esper.clear_database()
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / "viewer.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    moving = rows["encoding_moving"]
    results.update({"frame_ms_p50_while_encoding": moving["p50_ms"], "frame_ms_p99_while_encoding": moving["p99_ms"],
                    "while_encoding": {**rows, "field": args.field, "size": f"{W}x{H}",
                                       "encoder": f"random-weight {args.encoder} in the viewer's worker thread "
                                                  "(1 torch thread, nice 10)",
                                       "load_average_before": round(os.getloadavg()[0], 2)}})
    out.write_text(json.dumps(results, indent=2) + "\n")
    for label, row in rows.items():
        print(f"{label:<18} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    print(f"wrote {out} (load {os.getloadavg()[0]:.2f})")
    return 0



CLICK_VIEWS = 4          # --click: views the picked candidate is propagated over


def bench_click(args, H: int, W: int) -> int:
    """Frames around clicks on new views, the click's work in the frame and in the worker (see above)."""
    import esper

    from components.resources import SegmentationSettings, ViewCache
    from components.work import BackgroundWork
    from engine.field.frozen_march import warm_up_in_background
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import stop_workers

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = load_field(args.field, scene, truth)
    torch.set_num_threads(1)                                                # as `main.py view` does
    warm_up_in_background().join()              # a user looks before clicking: the marcher is ready for both
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
