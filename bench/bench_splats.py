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
The SA3D part runs the project's lifting ops (systems/inverse/ops.py: the closed-form vote, the
view-averaged update, the IoU gate, the 2D mask rule; systems/self_prompt/ops.py; the gt
segmenter's region rule) over builtin-gs's training views with one mask value per Gaussian, one
object at a time from the view that shows it largest, and scores the 8 held-out views' masks
(mIoU) and the Gaussians' labels against their known instance ids (opacity > 0.1). Until the
representation seam lets `segment` take a splat scene, this loop stands in for it.
Usage: python bench/bench_splats.py [--views 4] [--skip-torch] [--gl-seconds 8] [--only weights|gl|sa3d]
       [--size 128] [--screenshot docs/splats.png]
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
        renderer.draw(K, T, h, w, stride=stride)
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


def splat_view_weights(cloud, scene, i: int):
    """(ViewWeights over the cloud's Gaussians, depth [H, W]) of view i, as the lifting takes them."""
    import torch

    from engine.splats.raster import render_splats
    from systems.inverse.ops import view_weights_from_rows

    r = render_splats(cloud, scene.K[i], scene.T_world_camera[i], scene.H, scene.W, background=scene.background)
    A = r.weights
    backdrop = (1.0 - r.opacity).clamp(min=0.0).reshape(-1)
    return (view_weights_from_rows(A.indptr, A.indices, A.data, scene.H, scene.W, (1, 1, len(cloud)),
                                   backdrop=backdrop), torch.as_tensor(r.depth))


def bench_sa3d(size: int) -> tuple[dict, np.ndarray]:
    """Held-out mIoU and per-Gaussian accuracy of builtin-gs segmented with gt masks (see the docstring),
    and the object each Gaussian was given [N] (0 none)."""
    import torch

    from engine.splats.scene import load_splat_scene
    from systems.inverse.ops import (
        IOU_GATE,
        LAMBDA_PROMPTED,
        LAMBDA_SELF,
        accumulate_votes,
        coverage_mask,
        gate_iou,
        mask_iou,
        render_mask,
        view_votes,
    )
    from systems.sam.gt import select_gt_region
    from systems.sam.protocol import Prompt
    from systems.self_prompt.ops import select_self_prompts

    splats = load_splat_scene(f"builtin-gs-{size}")
    scene, cloud, truth_ids = splats.scene, splats.cloud, splats.instance_ids
    from engine.scenes.builtin import builtin_truth
    truth = builtin_truth(size)
    started = time.perf_counter()
    views = {i: splat_view_weights(cloud, scene, i) for i in range(len(scene))}
    weights_s = time.perf_counter() - started
    objects, labels, best = {}, np.zeros(len(cloud), np.int64), np.zeros(len(cloud), np.float32)
    for k, name in enumerate(truth.object_names, start=1):
        t0 = time.perf_counter()
        votes, counts = torch.zeros(1, 1, 1, len(cloud)), torch.zeros(1, 1, 1, len(cloud))
        first = max(scene.train_ids, key=lambda i: int((truth.instance_masks[i] == k).sum()))
        accumulate_votes(votes, counts, views[first][0], view_votes(views[first][0], torch.from_numpy(
            truth.instance_masks[first] == k), 0, 1, LAMBDA_PROMPTED))
        accepted = 1
        for i in scene.train_ids:
            if i == first:
                continue
            view, depth = views[i]
            rendered = render_mask(view, votes)[0]
            points = select_self_prompts(rendered, depth).numpy().astype(np.float32)
            if len(points) == 0:
                continue
            prompt = Prompt(points, np.ones(len(points), np.int64), None, None)
            mask = torch.from_numpy(select_gt_region(truth.instance_masks[i].astype(np.int64), prompt))
            if gate_iou(rendered, mask) < IOU_GATE:
                continue
            accumulate_votes(votes, counts, view, view_votes(view, mask, 0, 1, LAMBDA_SELF))
            accepted += 1
        ious = [mask_iou(coverage_mask(views[i][0], votes)[0], truth.instance_masks[i] == k) for i in scene.test_ids]
        v = votes.reshape(-1).numpy()
        take = (v > 0) & (v > best)
        labels[take], best[take] = k, v[take]
        objects[name] = {"miou": round(100 * float(np.mean(ious)), 1), "views_accepted": accepted,
                         "seconds": round(time.perf_counter() - t0, 2)}
    solid = cloud.opacity.numpy() > 0.1
    return {"scene": f"builtin-gs-{size}", "gaussians": len(cloud), "segmenter": "gt (emulated, see docstring)",
            "objects": objects, "mean_miou": round(float(np.mean([o["miou"] for o in objects.values()])), 1),
            "gaussian_accuracy": round(100 * float((labels == truth_ids)[solid].mean()), 2),
            "weights_seconds_all_views": round(weights_s, 1), "load_1min": round(os.getloadavg()[0], 2)}, labels


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
    parser.add_argument("--only", choices=["weights", "gl", "sa3d"])
    parser.add_argument("--size", type=int, default=128, help="builtin-gs image size of the SA3D part")
    parser.add_argument("--screenshot", help="write the SA3D part's result as a PNG (docs/splats.png)")
    args = parser.parse_args()
    import torch

    from engine.splats.builtin_gs import builtin_splats

    torch.set_num_threads(2)
    K, poses = cameras(args.views)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    builtin = builtin_splats(128, BENCH_SPACING).cloud
    if args.only in (None, "sa3d"):
        sa3d, labels = bench_sa3d(args.size)
        results.setdefault("sa3d", {})[sa3d["scene"]] = sa3d
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
    print(f"SA3D on {r['scene']} ({r['gaussians']} Gaussians), {r['segmenter']}, load {r['load_1min']}")
    print("| " + " | ".join(r["objects"]) + " | mean held-out mIoU | per-Gaussian accuracy (opacity > 0.1) |")
    print("|" + "---|" * (len(r["objects"]) + 2))
    print("| " + " | ".join(str(o["miou"]) for o in r["objects"].values())
          + f" | {r['mean_miou']} | {r['gaussian_accuracy']}% |")


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
