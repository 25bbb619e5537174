"""SA3D benchmark: the 3D part per view (fast sparse path vs autograd reference), seconds per object,
and segmentation quality on the built-in scene for every object (gt, fallback, single-view lifting).

    .venv/bin/python bench/bench_sa3d.py [--quick] [--field FIELD.pt] [--real-field F.pt [--real-scene DIR]]
                                         [--weights-only]

Each figure is measured on two fields: the trained one (the cached built-in field, or --field) and
an exact-geometry field (opaque exactly inside the objects), which measures SA3D apart from the
quality of the radiance field.

Writes bench/results/sa3d.json and prints tables. The per-view cost is measured at 504x378 on a
trained field (the built-in scene's cached field, its cameras resized to 504x378): the fast path and
two autograd baselines (re-rendering the view, as the reference does; or reusing its cached
samples) side by side in one run; SAM is excluded (the binarised rendered mask stands in for its
mask).

With --real-field (a field trained on --real-scene, by default ../shared/data/real/spinnerf-box), the
cost of a view's weights at 504x378 is measured there too: today's torch path and the compiled
marcher side by side on four training views (wall and CPU seconds, the 1-minute load average beside
them), with their agreement; --weights-only runs that part alone and keeps the JSON's other sections.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.camera import Camera  # noqa: E402
from components.messages import PromptAdded, PropagationFinished, PropagationRequested  # noqa: E402
from components.resources import MaskGrid, SegmentationSettings, ViewCache  # noqa: E402
from engine.app import App  # noqa: E402
from engine.field.cache import default_field  # noqa: E402
from engine.field.checkpoint import load_field  # noqa: E402
from engine.field.fixtures import exact_builtin_field  # noqa: E402
from engine.field.progress import training_bar  # noqa: E402
from engine.field.render import render_view  # noqa: E402
from engine.io import atomic_write  # noqa: E402
from engine.scenes import load_scene  # noqa: E402
from engine.scenes.builtin import builtin_scene, builtin_truth  # noqa: E402
from engine.schedule import Schedule  # noqa: E402
from systems.inverse import ops as inv  # noqa: E402
from systems.inverse.frozen import frozen_view_weights  # noqa: E402
from systems.sam import make_segmenter  # noqa: E402
from systems.segmentation.outputs import view_mask  # noqa: E402
from systems.segmentation.plugin import segmentation_plugin  # noqa: E402
from systems.segmentation.setup import insert_segmentation  # noqa: E402
from systems.self_prompt.ops import select_self_prompts  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "sa3d.json"


def per_view_cost(scene, field, views, H=378, W=504, cutoff=1e-2, min_entry=1e-3) -> dict:
    """Median ms per view of render mask + self-prompt + gate + vote + update, fast vs naive.

    Two naive baselines, both through autograd: "naive" re-renders the view with the frozen field
    (ray marching, density, compositing weights) and backpropagates the loss through grid_sample of
    the mask grid, as the reference does every view; "cached samples" skips the re-render and
    backpropagates over the view's kept samples, computed once. The fast path drops matrix entries
    <= min_entry, so fast and naive agree up to that pruning (reported as the fraction of voxels
    whose sign of V agrees).
    """
    built, fast_ms, naive_ms, cached_ms, nnz, mb, build_s, agree = [], [], [], [], [], [], [], []
    lin_fast, lin_cached = [], []   # the 3D linear algebra alone: render M + vote + update
    Z, Y, X = field.resolution
    for v in views:
        cam = Camera.of_view(scene, v).resized(H, W)
        start = time.perf_counter()
        rendered = render_view(field, cam.K, cam.T_world_camera, H, W, keep_weights=True, weight_cutoff=cutoff)
        s = rendered.samples
        vw = inv.build_view_weights(s.ray_ids, s.coords, s.weights, H, W, field.resolution, min_entry=min_entry)
        build_s.append(time.perf_counter() - start)
        built.append((vw, rendered.depth, s, cam))
        nnz.append(vw.nnz)
        mb.append(vw.nbytes() / 2**20)
    # a realistic mask state: the lift of the first view's "object" (pixels in front of the median depth)
    votes, counts = np.zeros((1, Z, Y, X), np.float32), np.zeros((1, Z, Y, X), np.float32)
    vw0, depth0, _, _ = built[0]
    inv.accumulate_votes(votes, counts, vw0, inv.view_votes(vw0, (depth0 < depth0.median()).numpy(), 0, 1, 5.0))
    fast_votes = []
    for vw, depth, _, _ in built[1:]:       # the fast path first: the baselines' large autograd
        for _ in range(3):                  # buffers leave the allocator in a state that slows it
            v_fast, c_fast = votes.copy(), counts.copy()
            t = time.perf_counter()
            M = inv.render_mask(vw, v_fast)[0]
            t_render = time.perf_counter()
            select_self_prompts(M, depth, 3)
            sam = inv.binarise_rendered(M)
            inv.gate_iou(M, sam)
            t_vote = time.perf_counter()
            inv.accumulate_votes(v_fast, c_fast, vw, inv.view_votes(vw, sam, 0, 1, 1.0))
            end = time.perf_counter()
            fast_ms.append(1000 * (end - t))
            lin_fast.append(1000 * (end - t_vote + t_render - t))
        fast_votes.append(v_fast[0])
    for (_, depth, s, cam), v_fast in zip(built[1:], fast_votes):
        t = time.perf_counter()
        again = render_view(field, cam.K, cam.T_world_camera, H, W, keep_weights=True, weight_cutoff=cutoff)
        naive_step(torch.from_numpy(votes[0]), torch.from_numpy(counts[0]), again.samples, again.depth, H, W)
        naive_ms.append(1000 * (time.perf_counter() - t))
        v_slow, seconds, linear = naive_step(torch.from_numpy(votes[0]), torch.from_numpy(counts[0]), s, depth, H, W)
        cached_ms.append(1000 * seconds)
        lin_cached.append(1000 * linear)
        agree.append(float(np.mean((v_slow.numpy() > 0) == (v_fast > 0))))
    fast, naive, cached = (statistics.median(x) for x in (fast_ms, naive_ms, cached_ms))
    return {"H": H, "W": W, "grid": [Z, Y, X], "weight_cutoff": cutoff, "min_entry": min_entry,
            "views": len(views), "fast_ms": round(fast, 2), "naive_ms": round(naive, 2),
            "speedup": round(naive / fast, 1), "cached_samples_naive_ms": round(cached, 2),
            "speedup_vs_cached_samples": round(cached / fast, 1),
            "voxel_sign_agreement": round(min(agree), 5),
            "render_vote_update_fast_ms": round(statistics.median(lin_fast), 2),
            "render_vote_update_cached_samples_ms": round(statistics.median(lin_cached), 2),
            "render_vote_update_speedup": round(statistics.median(lin_cached) / statistics.median(lin_fast), 1),
            "nnz_per_view": int(np.median(nnz)),
            "samples_per_view": int(np.median([b[2].weights.numel() for b in built])),
            "matrix_mb_per_view": round(float(np.median(mb)), 1),
            "weights_build_s_per_view": round(float(np.median(build_s)), 2)}


def naive_step(votes, counts, s, depth, H, W) -> tuple[torch.Tensor, float, float]:
    """One view through autograd over samples s: render M by grid_sample, self-prompt, gate, vote by
    backpropagation, averaged update. Returns (new votes [Z, Y, X], seconds, seconds of render +
    vote + update)."""
    t = time.perf_counter()
    with torch.no_grad():
        M = inv.naive_render(votes, s.ray_ids, s.coords, s.weights, H, W)
    t_render = time.perf_counter()
    select_self_prompts(M, depth, 3)
    sam = inv.binarise_rendered(M)
    inv.gate_iou(M, sam)
    t_vote = time.perf_counter()
    vote = inv.naive_vote(votes, s.ray_ids, s.coords, s.weights, torch.from_numpy(sam), 1.0)
    changed = vote != 0
    new = torch.where(changed, (votes * counts + vote) / (counts + changed.float()), votes)
    end = time.perf_counter()
    return new, end - t, end - t_vote + t_render - t


def click_for(truth, scene, k) -> tuple[int, float, float]:
    """(view, x, y): the object's most central pixel in the first training view where it is largest."""
    view = max(scene.train_ids[:8], key=lambda v: int((truth.instance_masks[v] == k).sum()))
    ys, xs = np.nonzero(truth.instance_masks[view] == k)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return view, xs[i] + 0.5, ys[i] + 0.5


def segment_object(scene, field, truth, k, segmenter, cache, propagate=True) -> dict:
    """Run the App for one object with one click; held-out mIoU and seconds.

    miou: the 2D masks segment writes (view_mask: the pixels the final 3D mask V > 0 covers by more
    than half); miou_reference_rule: the reference's 2D output, the rendered soft mask M > 0.
    """
    settings = SegmentationSettings(views=None if propagate else ())
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, segmenter, settings)
    app.insert_resource(cache)                         # weights shared by every object and mode
    view, x, y = click_for(truth, scene, k)
    app.send(PromptAdded(Camera.of_view(scene, view), x, y, 1, view))
    app.send(PropagationRequested())
    start, finished = time.perf_counter(), []
    while not finished and app.frame < 500:
        app.step()
        finished += app.messages.read(PropagationFinished, "bench")
    seconds = time.perf_counter() - start
    gts = {v: truth.instance_masks[v] == k for v in scene.test_ids}
    ious = [inv.mask_iou(view_mask(app, v, 0), gts[v]) for v in scene.test_ids]
    votes = app.resource(MaskGrid).votes[0:1]
    soft = [inv.mask_iou(inv.render_mask(cache.entries[v].weights, votes)[0] > 0, gts[v]) for v in scene.test_ids]
    assert app.resource(MaskGrid).votes.shape[0] == 1
    return {"object": truth.object_names[k - 1], "miou": round(100 * float(np.mean(ious)), 2),
            "miou_reference_rule": round(100 * float(np.mean(soft)), 2),
            "accepted": finished[0].accepted if finished else 0, "seconds": round(seconds, 2)}


def quality(scene, field, truth, label: str) -> tuple[dict, ViewCache]:
    """Every object, one click, three modes (gt, fallback, single-view lifting with gt)."""
    cache, result = ViewCache(), {}
    for mode in ("gt", "fallback", "single_view_gt"):
        rows = []
        for k in range(1, len(truth.object_names) + 1):
            kind = "fallback" if mode == "fallback" else "gt"
            seg = make_segmenter(kind, gt_masks=str(truth.mask_dir(truth.object_names[k - 1])))
            rows.append(segment_object(scene, field, truth, k, seg, cache, propagate=mode != "single_view_gt"))
            print(f"{label:>7} {mode:>15} {rows[-1]['object']:>9}: held-out mIoU {rows[-1]['miou']:6.2f} "
                  f"(M > 0: {rows[-1]['miou_reference_rule']:6.2f})  "
                  f"accepted {rows[-1]['accepted']:3d}  {rows[-1]['seconds']:6.2f} s")
        result[mode] = {"objects": rows, "mean_miou": round(float(np.mean([r["miou"] for r in rows])), 2),
                        "mean_miou_reference_rule": round(float(np.mean([r["miou_reference_rule"] for r in rows])), 2)}
    return result, cache


def weights_speed(scene, field, views, H=378, W=504) -> dict:
    """View weights at H x W on a trained field: today's torch path (empty blocks skipped, samples
    coalesced by ops.build_view_weights) against the compiled marcher, view by view in one run
    (interleaved, so both see the same load), wall and CPU seconds; their agreement (largest matrix
    entry difference on voxel ids, pixel weights, and the IoU between the masks each path renders
    of an object lifted by each); and one colour render (evaluation, export) both ways."""
    settings = SegmentationSettings()
    cams = [Camera.of_view(scene, v).resized(H, W) for v in views]
    t = time.perf_counter()
    frozen_view_weights(field, cams[0], weight_cutoff=settings.weight_cutoff, min_entry=settings.min_entry)
    first_call = time.perf_counter() - t          # numba's cached machine code loaded (compiled when absent)
    timing = {m: {"wall": [], "cpu": []} for m in ("torch", "compiled")}
    built = {m: [] for m in timing}
    load = [os.getloadavg()[0]]
    for cam in cams:
        for marcher in timing:
            t, c = time.perf_counter(), time.process_time()
            vw, rendered = frozen_view_weights(field, cam, weight_cutoff=settings.weight_cutoff,
                                               min_entry=settings.min_entry, color=False, marcher=marcher)
            timing[marcher]["wall"].append(time.perf_counter() - t)
            timing[marcher]["cpu"].append(time.process_time() - c)
            built[marcher].append((vw, rendered.depth))
        load.append(os.getloadavg()[0])
    med = {m: {k: statistics.median(v) for k, v in d.items()} for m, d in timing.items()}
    renders = {}
    for compiled in (False, True):
        t = time.perf_counter()
        render_view(field, cams[0].K, cams[0].T_world_camera, H, W, compiled=compiled)
        renders["compiled" if compiled else "torch"] = round(time.perf_counter() - t, 2)
    agreement = weights_agreement(built["torch"], built["compiled"], field.resolution)
    return {"H": H, "W": W, "grid": list(field.resolution), "views": len(views), "threads": torch.get_num_threads(),
            "first_call_s": round(first_call, 2),
            "torch_s": round(med["torch"]["wall"], 2), "compiled_s": round(med["compiled"]["wall"], 2),
            "speedup": round(med["torch"]["wall"] / med["compiled"]["wall"], 2),
            "torch_cpu_s": round(med["torch"]["cpu"], 2), "compiled_cpu_s": round(med["compiled"]["cpu"], 2),
            "speedup_cpu": round(med["torch"]["cpu"] / med["compiled"]["cpu"], 2),
            "nnz_per_view": int(np.median([vw.nnz for vw, _ in built["compiled"]])),
            "render_view_torch_s": renders["torch"], "render_view_compiled_s": renders["compiled"],
            "render_speedup": round(renders["torch"] / renders["compiled"], 2),
            **agreement, "load_1min": [round(x, 2) for x in load]}


def weights_agreement(old, new, grid) -> dict:
    """Largest |entry| and |pixel weight| difference between two paths' view weights [(ViewWeights,
    depth)], how many entries differ by more than 1e-3 (samples whose weight sits at the cutoff, kept
    by one path's rounding only), and the mask IoU (points) between them of an object lifted by each
    path from every view's rendered foreground (depth in front of its median)."""
    n = int(np.prod(grid))

    def on_voxels(vw):
        A = vw.A.tocoo()
        return sparse.csr_matrix((A.data, (A.row, vw.primitives[A.col])), shape=(A.shape[0], n))

    diffs = [abs(on_voxels(a) - on_voxels(b)) for (a, _), (b, _) in zip(old, new)]
    entry = max(float(d.max()) for d in diffs)
    over = sum(int((d.data > 1e-3).sum()) for d in diffs)
    pixel = max(float(np.abs(a.pixel_weight - b.pixel_weight).max()) for (a, _), (b, _) in zip(old, new))
    masks = [(depth < depth.median()).numpy() for _, depth in old]      # the same 2D masks for both paths
    lifted = []
    for path in (old, new):
        votes, counts = np.zeros((1, *grid), np.float32), np.zeros((1, *grid), np.float32)
        for (vw, _), mask in zip(path, masks):
            inv.accumulate_votes(votes, counts, vw, inv.view_votes(vw, mask, 0, 1, 1.0))
        lifted.append(votes)
    ious = [100 * inv.mask_iou(inv.coverage_mask(a, lifted[0])[0], inv.coverage_mask(b, lifted[1])[0])
            for (a, _), (b, _) in zip(old, new)]
    return {"max_entry_difference": round(entry, 5), "entries_over_1e-3": over,
            "entries": sum(vw.nnz for vw, _ in old), "max_pixel_weight_difference": round(pixel, 5),
            "mask_iou_points_min": round(min(ious), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 px scene, fewer views (smoke run)")
    parser.add_argument("--field", default=None, help="a trained field.pt of the built-in scene "
                        "(default: the one `segment` uses, trained once)")
    parser.add_argument("--real-field", default=None, help="a field.pt trained on --real-scene: view weights "
                        "at 504x378, today's torch path against the compiled marcher")
    parser.add_argument("--real-scene", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
                                                     / "spinnerf-box"), help="the scene of --real-field")
    parser.add_argument("--weights-only", action="store_true", help="only the view-weights comparison "
                        "(needs --real-field; the JSON's other sections are kept)")
    args = parser.parse_args()
    if args.real_field is not None:
        real = load_scene(args.real_scene)
        field = load_field(args.real_field, scene_hash=real.content_hash())
        speed = {"scene": real.name, **weights_speed(real, field, list(real.train_ids[:4]))}
        print(f"view weights at {speed['W']}x{speed['H']} on {real.name} ({speed['grid']} voxels, load "
              f"{speed['load_1min']}): today {speed['torch_s']} s, compiled {speed['compiled_s']} s: "
              f"x{speed['speedup']} (CPU {speed['torch_cpu_s']} / {speed['compiled_cpu_s']} s: "
              f"x{speed['speedup_cpu']}); render {speed['render_view_torch_s']} / "
              f"{speed['render_view_compiled_s']} s; entries differing by > 1e-3: {speed['entries_over_1e-3']} of "
              f"{speed['entries']} (largest {speed['max_entry_difference']}), "
              f"masks within {100 - speed['mask_iou_points_min']:.2f} IoU points")
    if args.weights_only:
        if args.real_field is None:
            parser.error("--weights-only needs --real-field")
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
        result["view_weights"] = speed
        atomic_write(OUT, json.dumps(result, indent=1))
        print(f"wrote {OUT}")
        return
    size, res = (64, 64) if args.quick else (128, 96)
    torch.manual_seed(0)
    t = time.perf_counter()
    scene = builtin_scene(size)
    if args.field is None:
        with training_bar("the built-in scene's default field (once)") as progress:
            trained, _ = default_field(scene, progress=progress)
    else:
        trained = load_field(args.field, scene_hash=scene.content_hash())
    truth = builtin_truth(size)
    exact = exact_builtin_field(scene, truth, res)
    print(f"trained field {trained.resolution}, exact field {exact.resolution} ready in "
          f"{time.perf_counter() - t:.1f} s")
    fields = {"trained": trained, "exact": exact}
    views = list(scene.train_ids[: 4 if args.quick else 6])
    result = {"scene": scene.name, "threads": torch.get_num_threads(), "fields": {}}
    if args.real_field is not None:
        result["view_weights"] = speed
    for label, field in fields.items():
        cost = per_view_cost(scene, field, views)
        print(f"{label:>7} 3D part per view at {cost['W']}x{cost['H']}: fast {cost['fast_ms']} ms, naive "
              f"(re-render) {cost['naive_ms']} ms, x{cost['speedup']}; naive on cached samples "
              f"{cost['cached_samples_naive_ms']} ms, x{cost['speedup_vs_cached_samples']}; render+vote+update "
              f"alone x{cost['render_vote_update_speedup']} (nnz {cost['nnz_per_view']}, "
              f"{cost['matrix_mb_per_view']} MB, weights {cost['weights_build_s_per_view']} s once per view)")
        q, cache = quality(scene, field, truth, label)
        per_object = [r["seconds"] for r in q["gt"]["objects"][1:]]            # weights already cached
        result["fields"][label] = {"resolution": list(field.resolution), "per_view_3d": cost, "quality": q,
                                   "seconds_per_object_cached": round(float(np.mean(per_object)), 2),
                                   "views_weights_seconds_total": round(cache.seconds, 1)}
    atomic_write(OUT, json.dumps(result, indent=1))
    print("\nfield    mode              mean held-out mIoU (coverage / M > 0)   s/object (cached)")
    for label, r in result["fields"].items():
        for mode, q in r["quality"].items():
            print(f"{label:<8} {mode:<17} {q['mean_miou']:6.2f} / {q['mean_miou_reference_rule']:6.2f}"
                  f"                    {r['seconds_per_object_cached']}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
