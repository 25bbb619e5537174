"""Field benchmark: train the built-in scene (3 min), LLFF fern at 504x378 (10 min) and the real 360
capture gold-cape at 456x456 (10 min) on this machine.

Writes bench/results/field.json and prints a table (held-out PSNR, seconds, iterations, peak RSS,
resolution, field kind). `--memory` instead measures the peak memory of training steps on a 160^3 grid.
Usage: python bench/bench_field.py [--only builtin|fern|gold-cape] [--builtin-minutes 3]
                                   [--fern-minutes 10] [--cape-minutes 10]
                                   [--resolution N (default: fern 160, else 128, as `train`)]
       python bench/bench_field.py --memory [--resolution 160]
       python bench/bench_field.py --only gold-cape --iterations 500 [--set distortion=0.01 ...]
       python bench/bench_field.py --steps 8 [--only gold-cape]
`--iterations N` trains a fixed number of iterations instead of a time budget (variants compared at
the same N whatever the machine's load; iterations per second reported apart) and, for a scene with
ground-truth masks (gold-cape), splits the PSNR of the held-out and of four training views into the
object and the rest, and into the pixels that 0-1 and 2 or more training views see (how much of
a held-out view the training views cover at all); `--set NAME=VALUE` overrides a TrainConfig
field (e.g. init_alpha=0.001).
The field kind is chosen as `train` chooses it: fern in NDC space (forward-facing), the built-in
scene in its box (constant backdrop), gold-cape in its box plus a contracted background grid (a
capture that walks around an object). Each case runs in a fresh subprocess so that its peak RSS is
its own. `--steps N` instead times N training steps of each path side by side (the torch renderer,
then the compiled training march, alternating, on one field at its final stage's grid) and reports
the median seconds per step and their ratio: a speed comparison that the machine's load affects
alike on both sides.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: a spinning pool starves shared cores

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FERN = ROOT.parent / "shared" / "data" / "llff" / "fern"
GOLD_CAPE = ROOT.parent / "shared" / "data" / "real" / "gold-cape"
RESULTS = ROOT / "bench" / "results" / "field.json"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(scene_name: str, downscale: int | None, minutes: float, resolution: int,
             iterations: int | None = None, overrides: dict | None = None) -> dict:
    """Train one scene in this process (for `minutes`, or `iterations` when given, with TrainConfig
    `overrides`) and return its figures."""
    sys.path.insert(0, str(ROOT))
    from engine.field.train import TrainConfig, train_field
    from engine.scenes import load_scene

    scene = load_scene(scene_name, downscale)
    config = dataclasses.replace(TrainConfig(resolution=resolution, max_iterations=iterations), **(overrides or {}))
    started = time.perf_counter()
    result = train_field(scene, max_seconds=None if iterations else minutes * 60.0, config=config)
    split = _masked_psnr(result.field, scene) if (Path(scene.source) / "masks").is_dir() else {}
    return {"scene": scene.name, "image_size": [scene.H, scene.W],
            "budget_minutes": None if iterations else minutes, "budget_iterations": iterations,
            "overrides": overrides or {}, **split,
            "iterations_per_second": round(result.iterations / result.seconds, 3),
            "test_psnr": result.test_psnr, "train_seconds": round(result.seconds, 1),
            "total_seconds": round(time.perf_counter() - started, 1), "iterations": result.iterations,
            "resolution": list(result.field.resolution), "space": result.field.space,
            "kind": result.field.kind, "bbox": scene.bbox.tolist(), "bbox_source": scene.bbox_source,
            "background_resolution": result.field.outside.resolution if result.field.outside else None,
            "peak_rss_mb": round(_peak_rss_mb()), "load_1min": round(os.getloadavg()[0], 2),
            "occupied": round(float(result.field.occupancy.float().mean()), 3)}


def _masked_psnr(field, scene) -> dict:
    """PSNR of the held-out views and of the first four training views: all pixels, those of the
    ground-truth mask (masks/<view>.png) and the rest; and, pooled over those views' pixels, the
    share and PSNR of the pixels whose point (at the render's depth) 0-1 and 2 or more of the other
    training views see (region.views_seeing_pixels)."""
    import numpy as np
    from PIL import Image

    from engine.field.render import render_view
    from engine.scenes.region import views_seeing_pixels

    figures = {}
    for label, ids in (("held_out", scene.test_ids), ("training", scene.train_ids[:4])):
        scores, errors, seen = [], [], []
        for i in ids:
            view = render_view(field, scene.K[i], scene.T_world_camera[i], scene.H, scene.W)
            error = ((view.rgb.numpy() - scene.images[i] / 255.0) ** 2).mean(-1)     # [H, W]
            mask = np.asarray(Image.open(Path(scene.source) / "masks" / f"{scene.view_names[i]}.png")) > 127
            scores.append([-10 * np.log10(error[part].mean()) for part in (slice(None), mask, ~mask)])
            others = [j for j in scene.train_ids if j != i]
            errors.append(error)
            seen.append(views_seeing_pixels(scene.K[i], scene.T_world_camera[i], view.depth.numpy(),
                                            scene.K[others], scene.T_world_camera[others], scene.near))
        figures[f"{label}_psnr_all_object_rest"] = [round(float(v), 2) for v in np.mean(scores, 0)]
        errors, seen = np.stack(errors), np.stack(seen)
        figures[f"{label}_share_psnr_seen_by_0_1_and_2plus_training_views"] = [
            [round(100 * float(part.mean()), 1), round(float(-10 * np.log10(errors[part].mean())), 2)]
            for part in (seen <= 1, seen >= 2) if part.any()]
    return figures


def run_steps(scene_name: str, downscale: int | None, resolution: int, steps: int) -> dict:
    """Median seconds per training step of the torch and the compiled path, alternating on one
    field of `scene_name` at its final stage's grid (untrained: every voxel occupied)."""
    sys.path.insert(0, str(ROOT))
    import statistics

    import torch

    from engine.field import train
    from engine.scenes import load_scene

    scene = load_scene(scene_name, downscale)
    config = train.TrainConfig(resolution=resolution, max_iterations=1)
    torch.manual_seed(0)
    rays = train._training_rays(scene, "cpu")
    field, final = train.make_field(scene, config)
    field.upsample(final)
    if field.outside is not None:
        field.outside.upsample(config.background_resolution)
    run = train._Run(field=field)
    train._begin_stage(run, scene, config)
    paths = {"torch": dataclasses.replace(config, compiled=False), "compiled": config}
    seconds = {name: [] for name in paths}
    for _ in range(steps + 1):                               # the first round warms both up
        for name, path in paths.items():
            started = time.perf_counter()
            train._step(run, path, rays)
            seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values[1:]) for name, values in seconds.items()}
    return {"scene": scene.name, "resolution": list(field.resolution), "steps": steps,
            "torch_s_per_step": round(median["torch"], 3), "compiled_s_per_step": round(median["compiled"], 3),
            "speedup": round(median["torch"] / median["compiled"], 2), "load_1min": round(os.getloadavg()[0], 2)}


def run_memory(resolution: int) -> dict:
    """Peak RSS of building a ~resolution^3 field of fern's box and running 5 training steps."""
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.nn.functional as F

    from engine.field.grid import VoxelField, resolution_for
    from engine.field.render import render_rays
    from engine.field.train import _adam, _training_rays
    from engine.scenes import load_scene

    scene = load_scene(str(FERN), 8)
    rays_o, rays_d, target = _training_rays(scene, "cpu")
    field = VoxelField(scene.bbox, resolution_for(scene.bbox, resolution), near=scene.near, far=scene.far)
    optimizer = _adam(field, 0.1)
    for _ in range(5):
        idx = torch.randint(0, rays_o.shape[0], (4096,))
        out = render_rays(field, rays_o[idx], rays_d[idx], jitter=True)
        loss = F.mse_loss(out.rgb, target[idx]) + field.total_variation(1e-3, 1e-4)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"case": "memory", "resolution": list(field.resolution), "voxels": field.density.numel(),
            "peak_rss_mb": round(_peak_rss_mb())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("builtin", "fern", "gold-cape"))
    parser.add_argument("--builtin-minutes", type=float, default=3.0)
    parser.add_argument("--fern-minutes", type=float, default=10.0)
    parser.add_argument("--cape-minutes", type=float, default=10.0)
    parser.add_argument("--resolution", type=int, default=None, help="grid size (about N^3 voxels)")
    parser.add_argument("--memory", action="store_true", help="peak memory of a 160^3 grid")
    parser.add_argument("--iterations", type=int, default=None, help="fixed iteration budget instead of minutes")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a TrainConfig field (a number), e.g. --set init_alpha=0.001")
    parser.add_argument("--steps", type=int, default=None,
                        help="time N training steps of the torch and the compiled path side by side")
    parser.add_argument("--case", help=argparse.SUPPRESS)   # internal: run one case, print JSON
    args = parser.parse_args()
    if args.case == "memory":
        print(json.dumps(run_memory(args.resolution or 160)))
        return 0
    if args.case:
        name, downscale, minutes = args.case.split(":")
        resolution = args.resolution or (160 if name == str(FERN) else 128)
        if args.steps:
            print(json.dumps(run_steps(name, int(downscale) or None, resolution, args.steps)))
            return 0
        overrides = {k: int(v) if v.lstrip("-").isdigit() else float(v) for k, v in (i.split("=", 1) for i in args.set)}
        print(json.dumps(run_case(name, int(downscale) or None, float(minutes), resolution, args.iterations,
                                  overrides)))
        return 0
    cases = ["memory"] if args.memory else [
        c for c in (f"builtin:0:{args.builtin_minutes}", f"{FERN}:8:{args.fern_minutes}",
                    f"{GOLD_CAPE}:0:{args.cape_minutes}")
        if args.only is None or args.only in c]
    rows = []
    for case in cases:
        flag = ["--case", case] + (["--resolution", str(args.resolution)] if args.resolution else []) + \
            (["--iterations", str(args.iterations)] if args.iterations else []) + \
            (["--steps", str(args.steps)] if args.steps else []) + \
            [a for item in args.set for a in ("--set", item)]
        done = subprocess.run([sys.executable, __file__, *flag], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for row in rows:
        key = row.get("scene", row.get("case")) + ("@steps" if args.steps else "")
        previous[f"{key}@{args.iterations}it" + "".join(f",{k}={v}" for k, v in row.get("overrides", {}).items())
                 if args.iterations else key] = row
    sys.path.insert(0, str(ROOT))
    from engine.io import atomic_write

    atomic_write(RESULTS, json.dumps(previous, indent=2) + "\n")
    keys = ("test_psnr", "train_seconds", "iterations", "peak_rss_mb", "resolution", "occupied", "kind") + \
        (("iterations_per_second", "held_out_psnr_all_object_rest",
          "held_out_share_psnr_seen_by_0_1_and_2plus_training_views") if args.iterations else ())
    if args.steps:
        keys = ("resolution", "torch_s_per_step", "compiled_s_per_step", "speedup", "load_1min")
    widths = [max(16, len(k) + 2) for k in keys]
    print(f"{'case':<10}" + "".join(f"{k:>{w}}" for k, w in zip(keys, widths)))
    for row in rows:
        cells = [f"{row[k]:.2f}" if isinstance(row.get(k), float) else str(row.get(k, "-")) for k in keys]
        print(f"{row.get('scene', row.get('case')):<10}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
