"""Export benchmark: solid masks and meshes of the built-in scene's objects against their exact solids.

    .venv/bin/python bench/bench_export.py [--quick] [--field FIELD.pt] [--segmenters gt,fallback]

For every object of the built-in scene: one click, propagation over the training views (as
`segment` runs it), then the exports `export` writes from that grid: the npz's solid mask and the
OBJ mesh. Measured against the object's exact solid (engine/scenes/builtin_render.py's primitive):
the mask's IoU with the primitive sampled at the grid's voxel centres (the votes' IoU, V > 0,
beside it: the visible surface SA3D marks), the mesh's volume against the primitive's (the
primitive's volume by a fine lattice) and against its own mask's (voxel count times a voxel's
volume: what the mesh extraction adds or loses), its connected components and whether it is watertight.
Fields: the trained field `segment` uses (or --field) and, with --exact, also the exact-geometry
field (opaque exactly inside the objects). Writes bench/results/export.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import esper
import numpy as np
import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_sa3d import click_for  # noqa: E402

from components.camera import Camera  # noqa: E402
from components.messages import PromptAdded, PropagationFinished, PropagationRequested  # noqa: E402
from components.resources import SegmentationSettings, ViewCache  # noqa: E402
from components.segmentation import SegObject  # noqa: E402
from engine.app import App  # noqa: E402
from engine.field.cache import default_field  # noqa: E402
from engine.field.checkpoint import load_field  # noqa: E402
from engine.field.fixtures import exact_builtin_field  # noqa: E402
from engine.field.progress import training_bar  # noqa: E402
from engine.io import atomic_write  # noqa: E402
from engine.scenes import builtin_render as br  # noqa: E402
from engine.scenes.builtin import builtin_scene, builtin_truth  # noqa: E402
from engine.schedule import Schedule  # noqa: E402
from systems.export.export import ExportOptions, export_object  # noqa: E402
from systems.export.ops import grid_spacing  # noqa: E402
from systems.export.scene_views import app_export_scene  # noqa: E402
from systems.sam import make_segmenter  # noqa: E402
from systems.segmentation.grid_file import grid_snapshot  # noqa: E402
from systems.segmentation.plugin import segmentation_plugin  # noqa: E402
from systems.segmentation.setup import insert_segmentation  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "export.json"
LATTICE = 200          # points per side of the lattice that measures a primitive's volume


def primitive_volume(shape) -> float:
    """Volume of a primitive of the built-in scene: the share of a LATTICE^3 lattice over its
    bounding sphere's cube that lies inside it (exact to ~0.1%)."""
    centre, radius = br.bounding_sphere(shape)
    axis = (np.arange(LATTICE) + 0.5) / LATTICE * 2.0 - 1.0
    inside = 0
    for z in axis:                                                    # one slab at a time
        x, y = np.meshgrid(axis, axis, indexing="ij")
        points = centre + radius * np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], 1)
        inside += int(shape.inside(points).sum())
    return inside / LATTICE ** 3 * (2 * radius) ** 3


def segment(app, scene, truth, k) -> int:
    """One click on object k, propagated; returns the number of views accepted."""
    view, x, y = click_for(truth, scene, k)
    app.send(PromptAdded(Camera.of_view(scene, view), x, y, 1, view))
    app.send(PropagationRequested())
    finished = []
    while not finished and app.frame < 500:
        app.step()
        finished += app.messages.read(PropagationFinished, "bench")
    return finished[0].accepted if finished else 0


def measure(scene, field, truth, segmenter: str, cache: ViewCache, folder: Path) -> list[dict]:
    """Every object: segment, export npz and obj, compare with the exact solid."""
    rows = []
    for k, name in enumerate(truth.object_names, start=1):
        seg = make_segmenter(segmenter, gt_masks=str(truth.mask_dir(name)))
        app = App(segmentation_plugin(Schedule()))
        insert_segmentation(app, scene, field, seg, SegmentationSettings())
        app.insert_resource(cache)
        accepted = segment(app, scene, truth, k)
        with app.active():
            for _, obj in esper.get_component(SegObject):
                obj.name = name
        grid = grid_snapshot(app)
        context, _ = app_export_scene(app)           # the scene, and the view weights it builds
        start = time.perf_counter()
        export_object(grid, field, folder / f"{name}.npz", ExportOptions(format="npz"), context)
        seconds = time.perf_counter() - start
        export_object(grid, field, folder / f"{name}.obj", ExportOptions(format="obj"), context)
        app.close()
        exact = truth.voxel_truth(k, field.bbox.numpy(), field.resolution)
        with np.load(folder / f"{name}.npz") as data:
            mask = data["mask"][0].astype(bool)
        surface = grid.votes[0] > 0
        mesh = trimesh.load(folder / f"{name}.obj", process=False)
        volume = primitive_volume(br.OBJECTS[k - 1].shape)
        mask_volume = float(mask.sum() * np.prod(grid_spacing(field.bbox.numpy(), field.resolution)))
        rows.append({
            "object": name, "views_accepted": accepted,
            "mask_iou": round(float((mask & exact).sum() / (mask | exact).sum()), 4),
            "votes_iou": round(float((surface & exact).sum() / (surface | exact).sum()), 4),
            "mask_voxels": int(mask.sum()), "exact_voxels": int(exact.sum()),
            "mesh_volume_error": round(float(mesh.volume / volume - 1.0), 4),
            "mask_volume_error": round(mask_volume / volume - 1.0, 4),
            "mesh_against_mask": round(float(mesh.volume / mask_volume - 1.0), 4),
            "mesh_components": len(mesh.split(only_watertight=False)),
            "mesh_watertight": bool(mesh.is_watertight),
            "solid_mask_seconds": round(seconds, 2)})
        r = rows[-1]
        print(f"{segmenter:>8} {name:>9}: mask IoU {r['mask_iou']:.3f} (votes {r['votes_iou']:.3f}), mesh volume "
              f"{100 * r['mesh_volume_error']:+.1f}% (mask {100 * r['mask_volume_error']:+.1f}%, mesh against "
              f"mask {100 * r['mesh_against_mask']:+.1f}%), {r['mesh_components']} component(s), "
              f"watertight {r['mesh_watertight']}, {r['solid_mask_seconds']} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 64 px scene and its small fixture field")
    parser.add_argument("--field", default=None, help="a trained field.pt of the built-in scene "
                        "(default: the one `segment` uses, trained once)")
    parser.add_argument("--exact", action="store_true", help="also the exact-geometry field")
    parser.add_argument("--segmenters", default="gt,fallback", help="comma-separated: gt, fallback")
    args = parser.parse_args()
    torch.manual_seed(0)
    size = 64 if args.quick else 128
    scene, truth = builtin_scene(size), builtin_truth(size)
    if args.quick:
        from engine.field.fixtures import trained_builtin_field
        _, trained = trained_builtin_field(64)
    elif args.field is None:
        with training_bar("the built-in scene's default field (once)") as progress:
            trained, _ = default_field(scene, progress=progress)
    else:
        trained = load_field(args.field, scene_hash=scene.content_hash())
    fields = {"trained": trained}
    if args.exact:
        fields["exact"] = exact_builtin_field(scene, truth, 128 if size == 128 else 64)
    load = os.getloadavg()[0]
    result = {"scene": scene.name, "threads": torch.get_num_threads(), "load_1min_start": round(load, 2),
              "fields": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for label, field in fields.items():
            cache = ViewCache()
            result["fields"][label] = {"resolution": list(field.resolution), "segmenters": {}}
            for segmenter in args.segmenters.split(","):
                rows = measure(scene, field, truth, segmenter, cache, Path(tmp))
                result["fields"][label]["segmenters"][segmenter] = rows
    result["load_1min_end"] = round(os.getloadavg()[0], 2)
    atomic_write(OUT, json.dumps(result, indent=1))
    print("\nfield    segmenter object     mask IoU  votes IoU  mesh volume  mask volume  mesh/mask  components"
          "  watertight")
    for label, r in result["fields"].items():
        for segmenter, rows in r["segmenters"].items():
            for row in rows:
                print(f"{label:<8} {segmenter:<9} {row['object']:<10} {row['mask_iou']:8.3f}  {row['votes_iou']:9.3f}"
                      f"  {100 * row['mesh_volume_error']:+10.1f}%  {100 * row['mask_volume_error']:+10.1f}%"
                      f"  {100 * row['mesh_against_mask']:+8.1f}%  {row['mesh_components']:10d}  "
                      f"{str(row['mesh_watertight']):>10}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
