"""Splat benchmark: a view's weights (colour, depth, opacity and the [H*W, N] (Gaussian, weight)
matrix) of ~200k Gaussians at 504x378 on this machine's CPU, and the GL splat viewer's frame rate.

Scenes: `builtin-gs` at spacing 0.0065 (~193k surface disks, the built-in scene's cameras at
504x378) and `fog`: 200k Gaussians of random size, shape and opacity filling the built-in box
(every pixel crosses many of them: a worst case for the compositing). Per scene, VIEWS views are
rendered by the compiled CPU path, timed by stage (wall and CPU seconds), and one view by the
torch tile path in the same run (the ratio). Writes bench/results/splats.json and prints a table.
The viewer part draws builtin-gs with the GL splat renderer in a headless EGL context (llvmpipe
here) at 1280x720: one still frame with every splat, then the camera moving along the orbit for
--gl-seconds, the internal resolution (upscaled to 1280x720) and the splat stride adapting to a
50 ms budget (systems/render/splat_detail.py).
The SA3D part runs `main.py segment builtin-gs-<size> --segmenter gt|fallback` once per object, one click
at the pixel deepest inside the object in the training view that shows it largest (as a user
would click), and scores the masks `segment` writes for the 8 held-out views (mIoU) and the
Gaussians' labels (mask_grid.npz: votes > 0, the largest vote where several objects claim one)
against their known instance ids (opacity > 0.1), with each object's wall time (the first object
builds every view's weights; the next ones read them from the view-weights cache).
The first-object part runs `segment` on the ~193k-Gaussian builtin-gs cloud as a bare .ply (36
orbit views at 504x378), one click, the fallback segmenter, 25 propagated views.
Usage: python bench/bench_splats.py [--views 4] [--skip-torch] [--gl-seconds 8] [--only weights|gl|sa3d|first]
       [--size 128] [--segmenter gt|fallback] [--screenshot docs/splats.png]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: a spinning pool starves shared cores

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "splats.json"
H, W = 378, 504
BENCH_SPACING = 0.0065
BUDGET_S = 0.050          # a moving frame's budget (the viewer's adaptive detail aims at it)


def cameras(n: int) -> tuple[np.ndarray, np.ndarray]:
    """K [3, 3] and n poses [n, 4, 4] of the built-in scene's cameras at 504x378."""
    from engine.scenes import builtin_render as br

    f = 0.5 * W / np.tan(np.radians(br.FOV_X_DEG) / 2)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], np.float32)
    poses = br.camera_poses().astype(np.float32)
    return K, poses[np.linspace(1, len(poses) - 1, n).astype(int)]


def fog_cloud(n: int = 200_000, seed: int = 0):
    """n Gaussians of random position in the built-in box, log-uniform size, random shape and opacity."""
    from engine.scenes import builtin_render as br
    from engine.splats.cloud import from_vertex, vertex_table

    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    return from_vertex(vertex_table(
        rng.uniform(br.BBOX[0], br.BBOX[1], (n, 3)).astype(np.float32),
        rng.normal(0, 0.4, (n, 16, 3)).astype(np.float32),
        (1 / (1 + np.exp(-rng.normal(-1.0, 2.0, n)))).astype(np.float32),
        np.exp(rng.uniform(-6.0, -3.5, (n, 3))).astype(np.float32),
        quats / np.linalg.norm(quats, axis=1, keepdims=True)), "fog")


def time_views(cloud, K, poses) -> dict:
    """Per-stage wall / CPU seconds of the compiled path over `poses` (after one warm-up view)."""
    from engine.splats.composite_cpu import composite_cpu
    from engine.splats.project import project
    from engine.splats.raster import bin_tiles, render_splats

    render_splats(cloud, K, poses[0], H, W)                       # compiles / loads numba's cache
    stages = {"project": [], "bin": [], "composite_and_matrix": [], "total": [], "cpu": [],
              "composite_alone": []}
    nnz, loads = [], []
    for T in poses:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        p = project(cloud, K, T, H, W)
        t1 = time.perf_counter()
        tiles = bin_tiles(p, H, W)
        t2 = time.perf_counter()
        _, _, A = composite_cpu(p, tiles, H, W, len(cloud))
        t3 = time.perf_counter()
        stages["cpu"].append(time.process_time() - cpu0)
        composite_cpu(p, tiles, H, W, len(cloud), with_weights=False)
        stages["composite_alone"].append(time.perf_counter() - t3)
        for name, seconds in zip(("project", "bin", "composite_and_matrix", "total"),
                                 (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            stages[name].append(seconds)
        nnz.append(A.nnz)
        loads.append(os.getloadavg()[0])
    out = {name: round(float(np.mean(v)), 3) for name, v in stages.items()}
    out.update(nnz_per_view=int(np.mean(nnz)), load_1min=round(float(np.mean(loads)), 2))
    return out


def time_torch_path(cloud, K, T) -> dict:
    """Wall seconds of one view by the compiled and the torch tile paths, side by side."""
    from engine.splats.raster import render_splats

    seconds = {}
    for method in ("cpu", "torch"):
        t0 = time.perf_counter()
        render_splats(cloud, K, T, H, W, method=method)
        seconds[method] = time.perf_counter() - t0
    return {"compiled_s": round(seconds["cpu"], 3), "torch_s": round(seconds["torch"], 3),
            "speedup": round(seconds["torch"] / seconds["cpu"], 2), "load_1min": round(os.getloadavg()[0], 2)}


def bench_gl(cloud, seconds: float) -> dict:
    """Frame times of the GL splat renderer at 1280x720: still (every splat) and moving (adaptive)."""
    import moderngl

    from engine.platform.gl import headless_context
    from engine.scenes import builtin_render as br
    from systems.render.gl_raymarch import GLRayMarcher
    from systems.render.gl_splats import GLSplatRenderer
    from systems.render.splat_detail import LEVELS, next_level

    ctx = headless_context()
    renderer = GLSplatRenderer(ctx)
    renderer.load_cloud(cloud)
    blitter = GLRayMarcher(ctx)                            # its blit program upscales low-res frames
    GH, GW = 720, 1280
    screen = ctx.framebuffer(color_attachments=[ctx.texture((GW, GH), 4)])
    poses = br.camera_poses().astype(np.float32)[:24]
    out = {"renderer": ctx.info["GL_RENDERER"], "size": [GH, GW], "gaussians": len(cloud)}

    def frame(T, scale, stride) -> float:
        h, w = int(GH * scale), int(GW * scale)
        f = 0.5 * w / np.tan(np.radians(br.FOV_X_DEG) / 2)
        K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float32)
        started = time.perf_counter()
        target = screen if scale == 1 else low[scale]
        target.use()
        target.clear(*br.BACKGROUND, 1.0)
        renderer.draw(K, T, h, w, stride=stride, points=stride > 1)     # as the viewer's previews
        if scale != 1:
            screen.use()
            blitter.blit(target.color_attachments[0], (0, 0, GW, GH))
        ctx.finish()
        return time.perf_counter() - started

    low = {scale: ctx.framebuffer(color_attachments=[ctx.texture((int(GW * scale), int(GH * scale)), 4)])
           for scale in {scale for scale, _ in LEVELS if scale < 1}}
    for target in low.values():
        target.color_attachments[0].filter = (moderngl.LINEAR, moderngl.LINEAR)
    frame(poses[0], 1, 1)
    out["still_full_ms"] = round(1000 * float(np.median([frame(poses[i], 1, 1) for i in (1, 2, 3)])), 1)
    level, times, levels, k = 0, [], [], 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        T = _between(poses[k % 24], poses[(k + 1) % 24], (k % 10) / 10)
        k += 1
        dt = frame(T, *LEVELS[level])
        if time.perf_counter() - started > seconds / 3:          # after the first third: settled
            times.append(dt)
            levels.append(level)
        level = next_level(level, dt, BUDGET_S)
    scale, stride = LEVELS[int(np.median(levels))]
    out["moving"] = {"fps": round(len(times) / max(sum(times), 1e-9), 1), "budget_ms": 1000 * BUDGET_S,
                     "frame_ms_p50": round(1000 * np.median(times), 1),
                     "frame_ms_p90": round(1000 * float(np.percentile(times, 90)), 1),
                     "scale_median": scale, "stride_median": stride, "frames": len(times)}
    out["load_1min"] = round(os.getloadavg()[0], 2)
    return out


def bench_sa3d(size: int, segmenter: str = "gt") -> tuple[dict, np.ndarray]:
    """Held-out mIoU and per-Gaussian accuracy of builtin-gs segmented by `segment` with `segmenter`
    (see the docstring), and the object each Gaussian was given [N] (0 none)."""
    import tempfile

    from scipy.ndimage import distance_transform_edt

    import main as cli
    from engine.splats.scene import load_splat_scene

    splats = load_splat_scene(f"builtin-gs-{size}")
    scene, truth_ids = splats.scene, splats.instance_ids
    from engine.scenes.builtin import builtin_truth
    truth = builtin_truth(size)
    objects, labels, best = {}, np.zeros(len(splats.cloud), np.int64), np.zeros(len(splats.cloud), np.float32)
    with tempfile.TemporaryDirectory(dir=ROOT.parent.parent / "scratch" if (ROOT.parent.parent / "scratch").is_dir()
                                     else None) as tmp:
        for k, name in enumerate(truth.object_names, start=1):
            view = max(scene.train_ids, key=lambda i: int((truth.instance_masks[i] == k).sum()))
            inside = distance_transform_edt(truth.instance_masks[view] == k)
            y, x = np.unravel_index(np.argmax(inside), inside.shape)
            out = Path(tmp) / name
            started, cpu = time.perf_counter(), os.times()
            code = cli.main(["segment", f"builtin-gs-{size}", "--view", scene.view_names[view], "--point",
                             f"{x},{y}", "--segmenter", segmenter, "--out", str(out)])
            after = os.times()
            seconds = time.perf_counter() - started
            from PIL import Image
            ious = []
            for i in scene.test_ids:
                pred = np.asarray(Image.open(out / "masks" / f"{scene.view_names[i]}.png")) > 0
                exact = truth.instance_masks[i] == k
                ious.append((pred & exact).sum() / max((pred | exact).sum(), 1))
            votes = np.load(out / "mask_grid.npz")["votes"][0]
            take = (votes > 0) & (votes > best)
            labels[take], best[take] = k, votes[take]
            objects[name] = {"miou": round(100 * float(np.mean(ious)), 1), "exit_code": code, "click": [int(x), int(y)],
                             "view": scene.view_names[view], "wall_s": round(seconds, 1),
                             "cpu_s": round(after.user + after.system - cpu.user - cpu.system, 1),
                             "load_1min": round(os.getloadavg()[0], 2)}
    solid = splats.cloud.opacity.numpy() > 0.1
    return {"scene": f"builtin-gs-{size}", "gaussians": len(splats.cloud), "segmenter": segmenter,
            "objects": objects, "mean_miou": round(float(np.mean([o["miou"] for o in objects.values()])), 1),
            "gaussian_accuracy": round(100 * float((labels == truth_ids)[solid].mean()), 2)}, labels


def bench_first_object(cloud) -> dict:
    """`main.py segment` on a 3DGS .ply of `cloud` alone (no cameras.json: 36 orbit views at 504x378,
    their photos rendered from the splats at load), one click, the fallback segmenter (no weights),
    propagation over 25 training views, masks for every view; wall and CPU seconds, and the
    command's own split (summary.json: load, the view weights, segmentation, outputs). A first
    object: the run gets an empty cache folder ($SA3D_CACHE), so no view weights of an earlier run
    of the same cloud are read."""
    import tempfile
    from unittest import mock

    import main as cli
    from engine.splats.plyio import write_splats

    with tempfile.TemporaryDirectory() as tmp:
        ply, out = Path(tmp) / "scene" / "point_cloud.ply", Path(tmp) / "out"
        write_splats(ply, cloud)
        with mock.patch.dict(os.environ, {"SA3D_CACHE": str(Path(tmp) / "cache")}):
            started, cpu = time.perf_counter(), os.times()
            code = cli.main(["segment", str(ply), "--view", "orbit_001", "--point", "252,200", "--segmenter",
                             "fallback", "--views", "25", "--out", str(out)])
            after, wall = os.times(), time.perf_counter() - started
        summary = json.loads((out / "summary.json").read_text()) if code == 0 else {}
    split = summary.get("seconds", {})
    return {"gaussians": len(cloud), "size": [H, W], "views": 25, "exit_code": code,
            "wall_s": round(wall, 1),
            "cpu_s": round(after.user + after.system - cpu.user - cpu.system, 1),
            "load_s": round(split.get("load", 0.0), 1),
            "view_weights_s": round(split.get("view_weights_total", 0.0), 1),
            "after_load_s": round(split.get("total", 0.0) - split.get("load", 0.0), 1),
            "accepted": len(summary.get("accepted", [])), "load_1min": round(os.getloadavg()[0], 2)}


def screenshot(path: str, size: int, labels: np.ndarray) -> None:
    """Three GL frames of builtin-gs at the size it was fitted to (size x 4/3 size): every Gaussian
    tinted by the object SA3D gave it, the sphere alone, the scene without it. (At a finer size the
    gaps between its disks, which are about a pixel at its own size, show.)"""
    from engine.media import write_png
    from engine.platform.gl import headless_context
    from engine.scenes import builtin_render as br
    from engine.splats.builtin_gs import builtin_splats
    from systems.render.gl_splats import GLSplatRenderer

    renderer = GLSplatRenderer(headless_context())
    renderer.load_cloud(builtin_splats(size).cloud)
    renderer.set_object_ids(labels.astype(np.uint8))
    colors = np.array([[255, 60, 60], [60, 120, 255], [60, 220, 90], [255, 210, 40], [200, 80, 255]], np.uint8)
    renderer.set_objects(colors, np.ones(len(colors), bool))
    H, W = size, 4 * size // 3
    f = 0.5 * W / np.tan(np.radians(br.FOV_X_DEG + 6) / 2)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], np.float32)
    T = br.camera_poses()[27].astype(np.float32)
    frames = [renderer.render_image(K, T, H, W, background=br.BACKGROUND, **options)
              for options in ({"overlay": True}, {"view_mode": 1, "selected": 1}, {"view_mode": 2, "selected": 1})]
    write_png(path, np.concatenate(frames, 1))


def _between(A: np.ndarray, B: np.ndarray, s: float) -> np.ndarray:
    """A pose a fraction s from A to B (positions interpolated, rotation of the nearer one)."""
    T = (A if s < 0.5 else B).copy()
    T[:3, 3] = (1 - s) * A[:3, 3] + s * B[:3, 3]
    return T


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--skip-torch", action="store_true", help="skip the torch path's side-by-side view")
    parser.add_argument("--gl-seconds", type=float, default=8.0)
    parser.add_argument("--only", choices=["weights", "gl", "sa3d", "first"])
    parser.add_argument("--size", type=int, default=128, help="builtin-gs image size of the SA3D part")
    parser.add_argument("--segmenter", default="gt", choices=("gt", "fallback"), help="the SA3D part's 2D segmenter")
    parser.add_argument("--screenshot", help="write the SA3D part's result as a PNG (docs/splats.png)")
    args = parser.parse_args()
    import torch

    from engine.splats.builtin_gs import builtin_splats

    torch.set_num_threads(2)
    K, poses = cameras(args.views)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    builtin = builtin_splats(128, BENCH_SPACING).cloud
    if args.only in (None, "sa3d"):
        sa3d, labels = bench_sa3d(args.size, args.segmenter)
        sa3d["command"] = f"python bench/bench_splats.py --only sa3d --size {args.size} --segmenter {args.segmenter}"
        results.setdefault("sa3d", {})[f"{sa3d['scene']} {args.segmenter}"] = sa3d
        print_sa3d(sa3d)
        if args.screenshot:
            screenshot(args.screenshot, args.size, labels)
    if args.only in (None, "weights"):
        weights = {}
        for name, cloud in (("builtin-gs", builtin), ("fog", fog_cloud())):
            row = {"gaussians": len(cloud), "size": [H, W], "views": args.views, **time_views(cloud, K, poses)}
            if not args.skip_torch:
                row["side_by_side"] = time_torch_path(cloud, K, poses[0])
            weights[name] = row
        results["view_weights"] = weights
        print_weights(weights, args.views)
    if args.only in (None, "first"):
        first = bench_first_object(builtin)
        results["first_object"] = {**first, "command": "python bench/bench_splats.py --only first"}
        print_first(results["first_object"])
    if args.only in (None, "gl"):
        results["viewer"] = bench_gl(builtin, args.gl_seconds)
        print_viewer(results["viewer"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_weights(weights: dict, views: int) -> None:
    print(f"view weights at {W}x{H}, compiled CPU path, mean over {views} views (target <= 2 s per view)")
    print("| scene | Gaussians | project | bin | composite + matrix (composite alone) | total wall | CPU | entries |"
          " load | torch path | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in weights.items():
        side = r.get("side_by_side", {})
        print(f"| {name} | {r['gaussians']} | {r['project']} | {r['bin']} | {r['composite_and_matrix']} "
              f"({r['composite_alone']}) | "
              f"{r['total']} s | {r['cpu']} s | {r['nnz_per_view']} | {r['load_1min']} | "
              f"{side.get('torch_s', '-')} s | {side.get('speedup', '-')}x |")


def print_sa3d(r: dict) -> None:
    print(f"`segment {r['scene']} --segmenter {r['segmenter']}` ({r['gaussians']} Gaussians), one click per object")
    print("| " + " | ".join(r["objects"]) + " | mean held-out mIoU | per-Gaussian accuracy (opacity > 0.1) |")
    print("|" + "---|" * (len(r["objects"]) + 2))
    print("| " + " | ".join(str(o["miou"]) for o in r["objects"].values())
          + f" | {r['mean_miou']} | {r['gaussian_accuracy']}% |")
    print("seconds per object (wall / CPU, load): " + ", ".join(
        f"{n} {o['wall_s']} / {o['cpu_s']} ({o['load_1min']})" for n, o in r["objects"].items()))
    print(f"command: {r['command']}")


def print_first(r: dict) -> None:
    print(f"first object, {r['gaussians']} Gaussians, {r['size'][1]}x{r['size'][0]}, {r['views']} views, fallback "
          f"(target <= 90 s; load {r['load_1min']})")
    print("| wall | CPU | of which: load (renders the 36 photos) | view weights | after the load | accepted views |")
    print("|---|---|---|---|---|---|")
    print(f"| {r['wall_s']} s | {r['cpu_s']} s | {r['load_s']} s | {r['view_weights_s']} s | {r['after_load_s']} s | "
          f"{r['accepted']} |")
    print(f"rerun on an idle machine: OMP_WAIT_POLICY=PASSIVE {r['command']}")


def print_viewer(v: dict) -> None:
    print(f"GL splats, {v['gaussians']} Gaussians at 1280x720 on {v['renderer']} (load {v['load_1min']}); "
          f"still frame, every splat: {v['still_full_ms']} ms")
    m = v["moving"]
    print("| moving | FPS | p50 ms | p90 ms | internal scale (median) | stride (median) |")
    print("|---|---|---|---|---|---|")
    print(f"| adaptive | {m['fps']} | {m['frame_ms_p50']} | {m['frame_ms_p90']} | {m['scale_median']} | "
          f"{m['stride_median']} |")


if __name__ == "__main__":
    sys.exit(main())
