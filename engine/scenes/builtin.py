"""The built-in scene: five coloured objects on a checkered ground, with exact ground truth.

Generated on first use by builtin_render's ray tracer and cached under
`$SA3D_CACHE/builtin/<VERSION>-<size>/` (default cache `~/.cache/sa3d`), written atomically
(built in a temporary folder, then renamed):
  transforms.json              nerfstudio-style cameras (+ `sa3d`: bbox, background, near, far)
  images/view_000.png          rendered RGB views
  instances/view_000.png       uint8 id of the first surface hit (0 ground/background, k object k)
  objects/<name>/view_000.png  0/255 mask of one object (its visible pixels)
  objects.json                 names, colours (uint8) and primitive parameters
Split: views 0, 8, 16, ... are test views. World: +Z up, ground square at z = 0 inside the bbox;
everything outside the bbox is the constant Scene.background colour.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.scenes import builtin_render as br
from engine.scenes.common import every_8th_split
from engine.scenes.scene import Scene
from engine.scenes.transforms_json import OPENGL_TO_OPENCV, load_transforms

VERSION = "v1"  # bump when the scene's content changes, so stale caches are not reused


def cache_dir(size: int) -> Path:
    """Folder of the cached built-in scene of `size` x `size` pixels (may not exist yet)."""
    root = Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d")
    return root / "builtin" / f"{VERSION}-{size}"


def ensure_builtin(size: int = 128) -> Path:
    """Generate the built-in scene into its cache folder unless it is there; returns the folder."""
    target = cache_dir(size)
    if (target / "transforms.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _generate(size, tmp)
        os.rename(tmp, target)
    except OSError:
        if not (target / "transforms.json").is_file():  # not a lost race with another writer
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _generate(size: int, folder: Path) -> None:
    """Render every view of the built-in scene and write the cache layout into `folder`."""
    poses, K = br.camera_poses(), br.intrinsics(size)
    names = [f"view_{i:03d}" for i in range(len(poses))]
    for sub in ["images", "instances"] + [f"objects/{o.name}" for o in br.OBJECTS]:
        (folder / sub).mkdir(parents=True)
    for name, T in zip(names, poses):
        rgb, ids, _ = br.render_view(K, T, size, size)
        Image.fromarray(rgb).save(folder / "images" / f"{name}.png")
        Image.fromarray(ids).save(folder / "instances" / f"{name}.png")
        for k, obj in enumerate(br.OBJECTS, start=1):
            mask = np.where(ids == k, 255, 0).astype(np.uint8)
            Image.fromarray(mask).save(folder / "objects" / obj.name / f"{name}.png")
    _, test_ids = every_8th_split(len(names))
    transforms = {
        "fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "w": size, "h": size,
        "camera_model": "OPENCV",
        "frames": [{"file_path": f"images/{n}.png", "transform_matrix": (T @ OPENGL_TO_OPENCV).tolist()}
                   for n, T in zip(names, poses)],
        "test_filenames": [f"images/{names[i]}.png" for i in test_ids],
        "sa3d": {"bbox": br.BBOX.tolist(), "background": list(br.BACKGROUND), "near": br.NEAR,
                 "far": br.FAR, "forward_facing": False},
    }
    (folder / "transforms.json").write_text(json.dumps(transforms, indent=1))
    objects = [{"name": o.name, "color": [round(c * 255) for c in o.color],
                "shape": type(o.shape).__name__.lower(), **dataclasses.asdict(o.shape)}
               for o in br.OBJECTS]
    (folder / "objects.json").write_text(json.dumps(objects, indent=1))


def builtin_scene(size: int = 128) -> Scene:
    """The built-in scene at `size` x `size` pixels: 60 views (test views 0, 8, 16, ...),
    bbox br.BBOX, background br.BACKGROUND. Generates and caches it on first use (~6 s at 128)."""
    folder = ensure_builtin(size)
    scene = load_transforms(folder)
    return dataclasses.replace(scene, name="builtin" if size == 128 else f"builtin-{size}",
                               kind="builtin")


@dataclass(frozen=True)
class BuiltinTruth:
    """Exact ground truth of the built-in scene (object k is object_names[k - 1])."""
    folder: Path                            # the cache folder
    object_names: tuple[str, ...]           # short lowercase names, in id order
    colors: np.ndarray                      # [K, 3] uint8 albedo of each object
    instance_masks: np.ndarray              # [N, H, W] uint8, 0 none, k object k (first hit)
    view_names: tuple[str, ...]             # same order as the scene's views

    def inside(self, k: int, points: np.ndarray) -> np.ndarray:
        """bool [M]: which world points [M, 3] lie inside object k (1-based, surface included)."""
        return br.OBJECTS[k - 1].shape.inside(np.asarray(points, dtype=np.float64).reshape(-1, 3))

    def voxel_truth(self, k: int, bbox: np.ndarray, resolution: tuple[int, int, int]
                    ) -> np.ndarray:
        """bool [Z, Y, X]: object k sampled at the grid points of `bbox` [2, 3] with
        align_corners=True (index 0 at bbox min, index n-1 at bbox max, per axis)."""
        bbox = np.asarray(bbox, dtype=np.float64)
        axes = [np.linspace(bbox[0, a], bbox[1, a], n) for a, n in zip((2, 1, 0), resolution)]
        z, y, x = np.meshgrid(*axes, indexing="ij")                              # [Z, Y, X] each
        points = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)                  # [Z*Y*X, 3]
        return self.inside(k, points).reshape(resolution)

    def mask_dir(self, name: str) -> Path:
        """Folder of 0/255 PNG masks `<view name>.png` of the object called `name`."""
        if name not in self.object_names:
            raise KeyError(f"no object '{name}' in the built-in scene: {self.object_names}")
        return self.folder / "objects" / name

    def instance_dir(self) -> Path:
        """Folder of uint8 instance-id PNGs `<view name>.png` (value k = object k)."""
        return self.folder / "instances"


def builtin_truth(size: int = 128) -> BuiltinTruth:
    """Ground truth of the built-in scene of `size` pixels (generating the cache if needed)."""
    folder = ensure_builtin(size)
    names = tuple(f"view_{i:03d}" for i in range(len(br.camera_poses())))
    masks = np.stack([np.asarray(Image.open(folder / "instances" / f"{n}.png")) for n in names])
    return BuiltinTruth(
        folder=folder, object_names=tuple(o.name for o in br.OBJECTS),
        colors=np.array([[round(c * 255) for c in o.color] for o in br.OBJECTS], dtype=np.uint8),
        instance_masks=masks, view_names=names)
