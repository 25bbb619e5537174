"""Segmentation on real captures with ground-truth masks (../shared/data/real) and on the built-in scene.

    .venv/bin/python bench/bench_real.py [--scenes spinnerf-box,gold-cape,builtin] [--fields DIR] [--data DIR]
                                         [--baseline REF] [--modes fallback_click,...]

For each real capture: its field (DIR/<scene>/field.pt; trained there with `main.py train` and the
README's defaults when missing: 10 minutes, the field kind the capture needs), one training view
prompted with its ground-truth mask and, separately, with one click at the mask's centre (its
deepest pixel), propagated over the training views as `segment` does (default settings, the
early stop included), with the `gt` and the `fallback` segmenters; single-view lifting (the
prompted view alone) is the floor. Scores: mIoU on the held-out views (every 8th) of the masks
`segment` writes, and of the grids before the start check (`propagated`) and after the prompted
view alone (`single_view`), which is how the start check's rule is compared with its alternatives.
The built-in scene: one click inside each object (bench_sa3d's click), gt and fallback.

--baseline REF runs the same scenes, on the same fields and caches, with the code of git ref REF
(main: what a branch must not fall below), scene by scene just before this tree's runs, so that both
meet the same load; the table shows both side by side.

Writes bench/results/real.json and prints a table; the load average is recorded beside the timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import esper
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.resources import MaskGrid, SegmentationSettings, ViewCache  # noqa: E402
from components.segmentation import Propagation, SegObject  # noqa: E402
from engine.app import App  # noqa: E402
from engine.io import atomic_write, file_sha256  # noqa: E402
from engine.schedule import Schedule  # noqa: E402
from systems.inverse.ops import coverage_mask, mask_iou  # noqa: E402
from systems.inverse.start_check import AGREEMENT, CONFIDENT_SHARE, keep_supported  # noqa: E402
from systems.sam import make_segmenter  # noqa: E402
from systems.sam.fallback import FallbackConfig  # noqa: E402
from systems.segmentation.cli import ObjectPrompt  # noqa: E402
from systems.segmentation.headless import segment_object  # noqa: E402
from systems.segmentation.plugin import segmentation_plugin  # noqa: E402
from systems.segmentation.setup import insert_segmentation  # noqa: E402
from systems.segmentation.views import scene_view_entry  # noqa: E402

OUT = ROOT / "bench" / "results" / "real.json"
DATA = ROOT.parent / "shared" / "data" / "real"
SPACE = {"spinnerf-box": "auto", "gold-cape": "unbounded"}     # gold-cape stores LLFF poses of a 360 capture
TRAIN_MINUTES = 10.0
REAL_MODES = ("single_view", "gt_mask", "fallback_mask", "fallback_click", "fallback_click_single_view")
BUILTIN_MODES = ("gt_click", "fallback_click")


class _Bar:
    """The progress-bar interface headless.segment_object drives, silent."""
    total = 0

    def update(self, n=1):
        pass

    def set_postfix(self, **_):
        pass

    def refresh(self):
        pass


def load() -> float:
    return round(os.getloadavg()[0], 2)


def ensure_field(scene_dir: Path, fields: Path) -> Path:
    """DIR/<scene>/field.pt, trained with `main.py train` (written as a whole folder) when missing."""
    out = fields / scene_dir.name
    if not (out / "field.pt").exists():
        print(f"training {scene_dir.name} ({TRAIN_MINUTES:g} min) into {out}", flush=True)
        subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(scene_dir), "--out", str(out),
                        "--max-minutes", str(TRAIN_MINUTES), "--space", SPACE.get(scene_dir.name, "auto")],
                       check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return out / "field.pt"


def gt_mask(scene_dir: Path, name: str, H: int, W: int) -> np.ndarray:
    from systems.segmentation.cli import read_mask_png
    return read_mask_png(str(scene_dir / "masks" / f"{name}.png"), H, W)


def centre_click(mask: np.ndarray) -> tuple[float, float]:
    """(x, y): the mask's deepest pixel (largest distance to its outside), the centre of a click."""
    depth = ndimage.distance_transform_edt(mask)
    y, x = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return float(x) + 0.5, float(y) + 0.5


def held_out_miou(app, views, truth: dict, votes) -> float:
    ious = [mask_iou(coverage_mask(scene_view_entry(app, v).weights, votes)[0], truth[v]) for v in views]
    return round(100 * float(np.mean(ious)), 2)


def run_one(scene, field, field_hash, cache, segmenter, obj, views, truth, propagate: bool) -> dict:
    """One object through `segment`'s loop; held-out mIoU of the written masks, the propagated grid
    and the single-view grid, views accepted, seconds, and the fallback's seconds per view."""
    settings = SegmentationSettings(views=None if propagate else ())
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, segmenter, settings, field_hash=field_hash)
    app.insert_resource(cache)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    result = segment_object(app, obj, segmenter, _Bar(), seconds, multiple=False)
    spent = time.perf_counter() - start
    grid = app.resource(MaskGrid)
    row = {"miou": held_out_miou(app, views, truth, grid.votes[0:1]),
           "accepted": len(result.accepted), "rejected": len(result.rejected),
           "stopped_early": result.stopped_early, "seconds": round(spent, 2)}
    tried = len(result.accepted) + len(result.rejected)
    if tried:
        row["segmenter_s_per_view"] = round(seconds.get("segment_pending_views", 0.0) / tried, 3)
    with app.active():
        for _, (_, prop) in esper.get_components(SegObject, Propagation):
            if prop.start_check is not None:
                row["start_check"] = prop.start_check.summary()
                row["miou_propagated"] = held_out_miou(app, views, truth, prop.propagated[None])
                row["miou_start"] = held_out_miou(app, views, truth, prop.start[None])
                row["miou_union"] = held_out_miou(app, views, truth,
                                                  keep_supported(prop.start, prop.propagated)[None])
    return row


def real_scene(name: str, fields: Path, data: Path, modes: tuple[str, ...] = REAL_MODES) -> dict:
    from engine.field.checkpoint import load_field
    from engine.scenes import load_scene

    scene_dir = data / name
    path = ensure_field(scene_dir, fields)
    scene = load_scene(str(scene_dir), None)
    field = load_field(path, scene_hash=scene.content_hash())
    field_hash = file_sha256(path)
    truth = {v: gt_mask(scene_dir, scene.view_names[v], scene.H, scene.W) for v in range(len(scene))}
    view = int(scene.train_ids[0])
    x, y = centre_click(truth[view])
    masks, cache = str(scene_dir / "masks"), ViewCache()
    from systems.segmentation.setup import weights_store
    cache.store = weights_store(field_hash)
    as_mask = ObjectPrompt("object", view, mask=truth[view])
    as_click = ObjectPrompt("object", view, points=((x, y, 1),))
    runs = {
        "single_view": (make_segmenter("gt", gt_masks=masks), as_mask, False),
        "gt_mask": (make_segmenter("gt", gt_masks=masks), as_mask, True),
        "fallback_mask": (make_segmenter("fallback"), as_mask, True),
        "fallback_click": (make_segmenter("fallback"), as_click, True),
        "fallback_click_single_view": (make_segmenter("fallback"), as_click, False),
    }
    out = {"scene": name, "views": len(scene), "size": [scene.H, scene.W], "prompted_view": scene.view_names[view],
           "click": [round(x, 1), round(y, 1)], "field": str(path), "runs": {}}
    for mode, (segmenter, obj, propagate) in ((m, runs[m]) for m in REAL_MODES if m in modes):
        out["runs"][mode] = row = run_one(scene, field, field_hash, cache, segmenter, obj, scene.test_ids, truth,
                                          propagate)
        row["load"] = load()
        extra = "".join(f"  {k[5:]} {row[k]:.2f}" for k in ("miou_propagated", "miou_start", "miou_union") if k in row)
        check = row.get("start_check")
        print(f"{name:>13} {mode:>27}: held-out mIoU {row['miou']:6.2f}  accepted {row['accepted']:3d}  "
              f"rejected {row['rejected']:3d}  {row['seconds']:7.1f} s  (load {row['load']}){extra}"
              + (f"  start check {check['agreement']:.2f} on {len(check['views'])} views" if check else ""), flush=True)
    out["view_weights_seconds"] = round(cache.seconds, 1)
    return out


def builtin(modes: tuple[str, ...] = BUILTIN_MODES, size: int = 128) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_sa3d import click_for

    from engine.field.cache import default_field
    from engine.field.progress import training_bar
    from engine.scenes.builtin import builtin_scene, builtin_truth

    scene, truth = builtin_scene(size), builtin_truth(size)
    with training_bar("the built-in scene's default field (once)") as progress:
        field, path = default_field(scene, progress=progress)
    field_hash = file_sha256(path)
    cache = ViewCache()
    from systems.segmentation.setup import weights_store
    cache.store = weights_store(field_hash)
    out = {"scene": scene.name, "runs": {}}
    for mode in (m for m in BUILTIN_MODES if m in modes):
        rows = []
        for k, name in enumerate(truth.object_names, start=1):
            view, x, y = click_for(truth, scene, k)
            seg = make_segmenter("gt", gt_masks=str(truth.mask_dir(name))) if mode == "gt_click" \
                else make_segmenter("fallback")
            gts = {v: truth.instance_masks[v] == k for v in range(len(scene))}
            row = run_one(scene, field, field_hash, cache, seg, ObjectPrompt(name, view, points=((x, y, 1),)),
                          scene.test_ids, gts, True)
            rows.append({"object": name, **row})
        out["runs"][mode] = {"miou": round(float(np.mean([r["miou"] for r in rows])), 2), "objects": rows,
                             "load": load()}
        print(f"{'builtin':>13} {mode:>27}: held-out mIoU {out['runs'][mode]['miou']:6.2f}  "
              + " ".join(f"{r['object']} {r['miou']:.1f}" for r in rows), flush=True)
    return out


def export_baseline(ref: str, folder: Path, data: Path) -> tuple[Path, str]:
    """git ref REF's tree exported into folder/tree, with folder/shared/data/real -> data (where that
    tree's bench looks for the captures); returns the tree and the commit. Exits 2 on a bad ref."""
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode:
        print(f"error: --baseline {ref} is no git ref of {ROOT}: give a branch, tag or commit (e.g. main)",
              file=sys.stderr)
        sys.exit(2)
    commit = found.stdout.strip()
    tree = folder / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (folder / "shared" / "data").mkdir(parents=True)
    (folder / "shared" / "data" / "real").symlink_to(data.resolve())
    return tree, commit


def baseline_scene(tree: Path, name: str, fields: Path) -> dict:
    """One scene benchmarked by the exported tree's own bench_real.py (its real.json's entry)."""
    subprocess.run([sys.executable, str(tree / "bench" / "bench_real.py"), "--scenes", name, "--fields", str(fields)],
                   check=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
    return json.loads((tree / "bench" / "results" / "real.json").read_text())["scenes"][name]


def print_table(result: dict) -> None:
    """Held-out mIoU per scene and mode, beside the baseline's when there is one."""
    base = result.get("baseline", {}).get("scenes", {})
    label = f"{result['baseline']['ref']} ({result['baseline']['commit'][:8]})" if base else ""
    print(f"\nscene          mode                          held-out mIoU  {label}")
    for name, scene in result["scenes"].items():
        for mode, row in scene["runs"].items():
            old = base.get(name, {}).get("runs", {}).get(mode)
            side = f"   {old['miou']:6.2f}  ({row['miou'] - old['miou']:+.2f})" if old else ""
            print(f"{name:<14} {mode:<29} {row['miou']:6.2f}{side}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="spinnerf-box,gold-cape,builtin")
    parser.add_argument("--data", type=Path, default=DATA, help=f"folder of the real captures (default {DATA})")
    parser.add_argument("--fields", default=None, help="folder of <scene>/field.pt (default: "
                        "$SA3D_CACHE/real-fields, else ~/.cache/sa3d/real-fields)")
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="also run the scenes with git ref REF's code, side by side (e.g. main)")
    parser.add_argument("--modes", default="", help="only these runs (comma-separated; default: all of "
                        f"{', '.join(REAL_MODES)}; the built-in scene's: {', '.join(BUILTIN_MODES)})")
    args = parser.parse_args()
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip()) or REAL_MODES + BUILTIN_MODES
    unknown = [m for m in modes if m not in REAL_MODES + BUILTIN_MODES]
    if unknown:
        print(f"error: no mode {unknown[0]}: use some of {', '.join(dict.fromkeys(REAL_MODES + BUILTIN_MODES))}",
              file=sys.stderr)
        sys.exit(2)
    fields = Path(args.fields or Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d") / "real-fields")
    names = [n.strip() for n in args.scenes.split(",") if n.strip()]
    missing = [n for n in names if n != "builtin" and not (args.data / n).is_dir()]
    if missing:
        print(f"error: no real capture {missing[0]} in {args.data}: use one of "
              f"{sorted(p.name for p in args.data.glob('*'))} or builtin, or give --data DIR", file=sys.stderr)
        sys.exit(2)
    result = {"load_start": load(), "fallback_config": dataclasses.asdict(FallbackConfig()),
              "start_check": {"agreement": AGREEMENT, "confident_share": CONFIDENT_SHARE}, "scenes": {}}
    with tempfile.TemporaryDirectory(prefix="sa3d-baseline-") as tmp:
        if args.baseline:
            tree, commit = export_baseline(args.baseline, Path(tmp), args.data)
            result["baseline"] = {"ref": args.baseline, "commit": commit, "scenes": {}}
        for name in names:               # the JSON is rewritten after each scene: a long run keeps its part
            if args.baseline:
                result["baseline"]["scenes"][name] = baseline_scene(tree, name, fields)
            result["scenes"][name] = builtin(modes) if name == "builtin" else real_scene(name, fields, args.data, modes)
            result["load_end"] = load()
            previous = json.loads(OUT.read_text()) if OUT.exists() else {"scenes": {}}
            previous["scenes"].update(result["scenes"])
            previous.update({k: v for k, v in result.items() if k != "scenes"})
            if not args.baseline:        # a side-by-side comparison holds within one run only
                previous.pop("baseline", None)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(OUT, json.dumps(previous, indent=1))
    print_table(result)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
