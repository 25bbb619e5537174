"""Benchmark the SAM family on this CPU with random weights of the real architectures (a random-weight
network costs exactly what the released one costs; its masks mean nothing):

1. per model, on 504x378 views: set_view (the image encoder, a new image each call), set_view of a
   cached view, predict (one click; single mask and multimask), click to first candidates
   (set_view + multimask predict), and the projected first / second object over a 25-view
   propagation: encoder runs x set_view + decoder calls x predict (the second object's views are
   cached);
2. for the models named by --propagate, the real propagation of two objects over 25 training views
   of the built-in scene through the segmentation systems (as `main.py segment` runs them), timed
   end to end and by stage. The masks come from the scene's ground truth, so the propagation does
   what it does with a good SAM (views accepted, lifted), while every set_view and predict runs the
   random model in full. The first click comes after the scene's background warm-up (loading or,
   after an install or an edit, compiling the view weights' compiled marcher), reported apart.

Every model's time is also given as a ratio to ViT-B's measured in the same run (the machine is
shared: ratios hold, seconds drift). Writes bench/results/sam.json (the load average beside it).

    python bench/bench_sam.py [--models all|M,M,...] [--propagate hq_vit_tiny,mobile_sam] [--repeats 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from engine.io import atomic_write  # noqa: E402
from systems.sam.checkpoints import CHECKPOINTS  # noqa: E402
from systems.sam.fallback import FallbackSegmenter  # noqa: E402

VIEWS = 25                    # the propagation the targets are about
H, W = 378, 504


def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
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


def random_segmenter(model: str, cache_dir, device: str = "cpu"):
    """A SamSegmenter of `model`'s real architecture with random weights."""
    import torch

    from systems.sam.models import build_sam
    from systems.sam.sam import SamSegmenter
    torch.manual_seed(0)
    return SamSegmenter(build_sam(model), model_type=model, cache_dir=cache_dir, device=device)


def bench_calls(seg, repeats: int, warm_up: bool) -> dict:
    """set_view (fresh image each call; with warm_up the first call, with the runtime's one-time
    costs, is left out), cached set_view, predict single / multimask, and the 25-view projections."""
    images = [test_image(H, W, seed)[0] for seed in range(repeats + 2)]
    if warm_up:
        seg.set_view(images[-1])
    counter = iter(range(repeats))
    set_view = timed(lambda: seg.set_view(images[next(counter)]), repeats)
    cached = timed(lambda: seg.set_view(images[0]), repeats)
    point = np.array([[W * 0.3, H * 0.4]])
    single = timed(lambda: seg.predict(points=point), max(repeats, 3))
    multi = timed(lambda: seg.predict(points=point, multimask=True), max(repeats, 3))
    return {"set_view_s": set_view, "cached_set_view_s": cached, "predict_single_s": single,
            "predict_multi_s": multi, "click_to_candidates_s": set_view + multi,
            "projected_first_object_s": VIEWS * set_view + multi + (VIEWS - 1) * single,
            "projected_second_object_s": VIEWS * cached + multi + (VIEWS - 1) * single}


class GroundTruthMasks:
    """A SAM segmenter run in full whose answers are replaced by the ground truth's (bench only):
    the cost is the model's, the propagation behaves as with a good model."""

    def __init__(self, sam, gt):
        self.sam, self.gt = sam, gt
        self.name, self.notice, self.rendered_box = "sam", None, False
        self.decoder_calls = 0

    def set_view(self, image, *, view_name=None, depth=None):
        self.sam.set_view(image, view_name=view_name, depth=depth)
        self.gt.set_view(image, view_name=view_name, depth=depth)

    def predict(self, **prompt):
        self.sam.predict(**prompt)
        self.decoder_calls += 1
        return self.gt.predict(**prompt)


def bench_propagation(model: str, device: str = "cpu") -> dict:
    """Two objects over VIEWS training views of the built-in scene (exact field), end to end. The
    first click comes once the scene's background warm-up (the compiled marcher) is done, as a
    user's does: that wait is reported apart (`warm_up_at_open_s`)."""
    from components.resources import SegmentationSettings
    from engine.app import App
    from engine.field.fixtures import exact_builtin_field
    from engine.field.frozen_march import warm_up_in_background
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from engine.schedule import Schedule
    from systems.sam.gt import GtSegmenter
    from systems.segmentation.cli import ObjectPrompt, parse_views
    from systems.segmentation.headless import segment_object
    from systems.segmentation.plugin import segmentation_plugin
    from systems.segmentation.setup import insert_segmentation

    scene, truth = builtin_scene(128), builtin_truth(128)
    field = exact_builtin_field(scene, truth, 128)
    views = parse_views(str(VIEWS), scene)
    prompted = views[0]
    results = {"scene": f"{scene.name} {scene.W}x{scene.H}", "views": len(views)}
    with tempfile.TemporaryDirectory() as cache:
        seg = GroundTruthMasks(random_segmenter(model, cache, device), GtSegmenter(truth.instance_dir()))
        app = App(segmentation_plugin(Schedule()))
        insert_segmentation(app, scene, field, seg, SegmentationSettings(views=views, stop_after=0),
                            device=device)
        start = time.perf_counter()                       # a user looks before clicking: the compiled
        warm_up_in_background().join()                    # marcher's warm-up at scene open finishes
        results["warm_up_at_open_s"] = time.perf_counter() - start   # (0 once a process has it)
        ids = truth.instance_masks[prompted]
        largest = sorted(range(1, int(ids.max()) + 1), key=lambda k: -(ids == k).sum())   # the two most visible
        for k, label in zip(largest, ("first", "second")):
            obj = ObjectPrompt(truth.object_names[k - 1], prompted, points=(centre_pixel(ids == k) + (1,),))
            runs, calls, seconds = seg.sam.encoder_runs, seg.decoder_calls, {}
            start = time.perf_counter()
            result = segment_object(app, obj, seg, _NoBar(), seconds, multiple=True)
            wall = time.perf_counter() - start
            sam_s = seconds.get("segment_prompted_view", 0.0) + seconds.get("segment_pending_views", 0.0)
            results[f"{label}_object"] = {
                "measured_s": wall, "click_to_candidates_s": seconds.get("segment_prompted_view", 0.0),
                "segmenter_s": sam_s, "rest_s": wall - sam_s, "encoder_runs": seg.sam.encoder_runs - runs,
                "decoder_calls": seg.decoder_calls - calls, "accepted": len(result.accepted),
                "rejected": len(result.rejected)}
    return results


def centre_pixel(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the mask's pixel nearest its centroid (inside it, unlike the centroid itself)."""
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


class _NoBar:
    total = 0

    def update(self, n):
        pass

    def set_postfix(self, **kw):
        pass

    def refresh(self):
        pass


def bench_fallback(repeats: int) -> dict:
    """Fallback set_view and one-click predict times at 504x378."""
    image, depth = test_image(H, W)
    seg = FallbackSegmenter()
    set_view = timed(lambda: seg.set_view(image, depth=depth), repeats)
    point = np.array([[W * 0.3, H * 0.4]])
    return {"set_view_s": set_view, "predict_single_s": timed(lambda: seg.predict(points=point), repeats),
            "predict_multi_s": timed(lambda: seg.predict(points=point, multimask=True), repeats)}


def with_ratios(rows: dict, keys: tuple[str, ...]) -> None:
    """Add '<key>_vs_vit_b' (this model's time / ViT-B's, same run) to every row."""
    base = rows.get("vit_b")
    for row in rows.values():
        for key in keys:
            if base and key in row and key in base and base[key] > 0:
                row[f"{key}_vs_vit_b"] = row[key] / base[key]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default="all", help="all, or model types separated by commas")
    parser.add_argument("--propagate", default="hq_vit_tiny,mobile_sam",
                        help="models whose real 25-view propagation is run (comma-separated; '' for none)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sam.json"))
    args = parser.parse_args()
    import torch

    models = list(CHECKPOINTS) if args.models == "all" else args.models.split(",")
    results = {"machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                           "device": args.device, "load_average_before": round(os.getloadavg()[0], 2)},
               "size": [H, W], "views": VIEWS, "models": {}, "propagation": {}}
    for model in models:
        with tempfile.TemporaryDirectory() as cache:
            seg = random_segmenter(model, cache, args.device)
            light = CHECKPOINTS[model].megabytes < 100            # the others' encoder runs take minutes
            row = bench_calls(seg, args.repeats if light else 1, warm_up=light)
        row["load_average"] = round(os.getloadavg()[0], 2)
        results["models"][model] = row
        print(f"{model:<12} set_view {row['set_view_s']:7.2f} s  predict {row['predict_single_s']:.3f} s  "
              f"(load {row['load_average']})", flush=True)
        atomic_write(args.out, json.dumps(results, indent=2))        # so far (the large models take minutes)
        del seg
        gc.collect()
    with_ratios(results["models"], ("set_view_s", "predict_single_s", "click_to_candidates_s",
                                    "projected_first_object_s", "projected_second_object_s"))
    for model in filter(None, args.propagate.split(",")):
        results["propagation"][model] = bench_propagation(model, args.device)
        results["propagation"][model]["load_average"] = round(os.getloadavg()[0], 2)
        print(f"{model:<12} propagation {json.dumps(results['propagation'][model])}", flush=True)
        atomic_write(args.out, json.dumps(results, indent=2))
    base = results["propagation"].get("vit_b")
    for row in results["propagation"].values():
        for label in ("first_object", "second_object"):
            if base and base[label]["measured_s"] > 0:
                row[label]["measured_vs_vit_b"] = row[label]["measured_s"] / base[label]["measured_s"]
    results["fallback"] = bench_fallback(args.repeats)
    results["machine"]["load_average_after"] = round(os.getloadavg()[0], 2)
    atomic_write(args.out, json.dumps(results, indent=2))
    print_table(results)
    print(f"wrote {args.out}")
    return 0


def print_table(results: dict) -> None:
    """The README's table: seconds (and x ViT-B) per model."""
    print(f"{'model':<12}{'set_view':>16}{'predict':>9}{'click->cand.':>16}{'1st obj proj.':>17}"
          f"{'2nd obj proj.':>15}{'1st measured':>14}{'2nd measured':>14}")
    for model, row in results["models"].items():
        prop = results["propagation"].get(model)
        measured = (f"{prop['first_object']['measured_s']:>13.1f}s{prop['second_object']['measured_s']:>13.1f}s"
                    if prop else f"{'-':>14}{'-':>14}")
        print(f"{model:<12}{row['set_view_s']:>7.2f}s ({row.get('set_view_s_vs_vit_b', 1):.2f}x)"
              f"{row['predict_single_s']:>8.3f}s{row['click_to_candidates_s']:>15.2f}s"
              f"{row['projected_first_object_s']:>16.1f}s{row['projected_second_object_s']:>14.1f}s{measured}")


if __name__ == "__main__":
    raise SystemExit(main())
