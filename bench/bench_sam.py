"""Benchmark the 2D segmenters: SAM encoder / decoder per call (tiny random-weight SAM, and the real
vit_b when its checkpoint is found), the cached-embedding speed-up, and the fallback's predict time
at 128x128 and 504x378 (one click, single mask and multimask). Writes bench/results/sam.json.

    .venv/bin/python bench/bench_sam.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.io import atomic_write
from systems.sam.checkpoints import find_sam_checkpoint
from systems.sam.factory import sa3d_cache_dir
from systems.sam.fallback import FallbackSegmenter


def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in seconds (CUDA synchronised when available)."""
    import torch
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def test_image(H: int, W: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A view with three coloured shapes on a textured ground: image [H,W,3] uint8, depth [H,W]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    image = (np.stack([0.6 + 0.1 * np.sin(20 * xx), 0.55 + 0.0 * yy, 0.5 + 0.1 * np.cos(15 * yy)], -1)
             * 255 + rng.normal(0, 3, (H, W, 3)))
    depth = 4.0 + yy
    for (cx, cy, r), colour, d in (((0.3, 0.4, 0.15), (200, 40, 30), 2.5),
                                   ((0.6, 0.5, 0.12), (40, 90, 210), 3.0),
                                   ((0.45, 0.2, 0.08), (60, 170, 60), 2.8)):
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2
        image[inside], depth[inside] = colour, d
    return np.clip(image, 0, 255).astype(np.uint8), depth.astype(np.float32)


def bench_sam(seg, H: int, W: int, repeats: int) -> dict:
    """Encoder (fresh image each call), cached set_view, decoder single / multimask times."""
    images = [test_image(H, W, seed)[0] for seed in range(repeats + 1)]
    counter = iter(range(1, repeats + 1))
    encoder = timed(lambda: seg.set_view(images[next(counter)]), repeats)
    seg.set_view(images[0])
    cached = timed(lambda: seg.set_view(images[0]), repeats)
    point = np.array([[W * 0.3, H * 0.4]])
    single = timed(lambda: seg.predict(points=point), repeats)
    multi = timed(lambda: seg.predict(points=point, multimask=True), repeats)
    return {"size": [H, W], "encoder_s": encoder, "cached_set_view_s": cached,
            "cache_speedup": encoder / max(cached, 1e-9), "decoder_single_s": single, "decoder_multi_s": multi}


def bench_fallback(H: int, W: int, repeats: int) -> dict:
    """Fallback set_view and one-click predict times at H x W."""
    image, depth = test_image(H, W)
    seg = FallbackSegmenter()
    set_view = timed(lambda: seg.set_view(image, depth=depth), repeats)
    point = np.array([[W * 0.3, H * 0.4]])
    return {"size": [H, W], "set_view_s": set_view,
            "predict_single_s": timed(lambda: seg.predict(points=point), repeats),
            "predict_multi_s": timed(lambda: seg.predict(points=point, multimask=True), repeats)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sam.json"))
    args = parser.parse_args()
    import torch

    from systems.sam.models import build_sam
    from systems.sam.sam import SamSegmenter
    results = {"machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                           "device": args.device}, "sam": {}, "fallback": {}}
    with tempfile.TemporaryDirectory() as cache:
        tiny = SamSegmenter(build_sam("tiny"), model_type="tiny", cache_dir=cache, device=args.device)
        results["sam"]["tiny"] = bench_sam(tiny, 378, 504, args.repeats)
        path = find_sam_checkpoint(None, "vit_b", sa3d_cache_dir() / "sam")
        if path is None:
            results["sam"]["vit_b"] = "skipped: no sam_vit_b_01ec64.pth in the checkpoint folder"
        else:
            vit_b = SamSegmenter.from_checkpoint(path, device=args.device, cache_dir=cache)
            results["sam"]["vit_b"] = bench_sam(vit_b, 378, 504, min(args.repeats, 2))
    for H, W in ((128, 128), (378, 504)):
        results["fallback"][f"{H}x{W}"] = bench_fallback(H, W, args.repeats)
    atomic_write(args.out, json.dumps(results, indent=2))
    print(f"{'backend':<22}{'size':>10}{'encode/set_view':>17}{'cached':>10}{'predict 1':>11}{'predict 3':>11}")
    for name, row in results["sam"].items():
        if isinstance(row, str):
            print(f"sam {name:<18} {row}")
            continue
        print(f"sam {name:<18}{'x'.join(map(str, row['size'])):>10}{row['encoder_s']:>16.4f}s"
              f"{row['cached_set_view_s']:>9.4f}s{row['decoder_single_s']:>10.4f}s{row['decoder_multi_s']:>10.4f}s")
    for name, row in results["fallback"].items():
        print(f"{'fallback':<22}{name:>10}{row['set_view_s']:>16.4f}s{'-':>10}"
              f"{row['predict_single_s']:>10.4f}s{row['predict_multi_s']:>10.4f}s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
