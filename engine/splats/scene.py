"""Opening a splat scene: the Gaussians, the views to segment in, and where the views came from.

`load_splat_scene(path)` accepts a 3DGS `point_cloud.ply`, or the trainer's output folder (its
`point_cloud.ply`, or the highest `point_cloud/iteration_*/point_cloud.ply`), or `builtin-gs`
(`builtin-gs-<size>`). The views, in this order of preference:
1. the output's `cameras.json` (the frame the splats were trained in), with the photos of the
   source scene where one is found (`source`, else the `source_path` of the output's `cfg_args`;
   read by any loader of the project and matched by image name), else renders of the splats;
2. a source scene alone: its cameras, when its loader keeps the trainer's frame (transforms.json,
   COLMAP captures that are not forward-facing: LLFF and forward-facing COLMAP scenes are re-centred
   by their loaders, so they need cameras.json);
3. neither: an orbit around the splats' robust centre (engine/splats/cameras.py), rendered.
The views are a project Scene (every 8th held out), so the segmentation systems read them as they
read any scene's.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.scenes.common import every_8th_split
from engine.scenes.scene import Scene
from engine.splats.cameras import Cameras, orbit_cameras, read_cameras_json
from engine.splats.cloud import GaussianCloud, SplatError
from engine.splats.plyio import read_splats

RENDER_BACKGROUND = (0.0, 0.0, 0.0)    # behind the splats in rendered views (3DGS's default)


@dataclass(frozen=True)
class SplatScene:
    scene: Scene                       # the views (photos or renders), cameras, split
    cloud: GaussianCloud
    ply: Path                          # the file the Gaussians came from
    cameras_from: str                  # "cameras.json", "source scene", "orbit" or "builtin"
    instance_ids: np.ndarray | None = None   # [N] uint8 known object per Gaussian (builtin-gs)


def is_splat_scene(path_or_name: str) -> bool:
    """Whether a SCENE argument names a splat scene: builtin-gs[-<size>], a .ply file, or a folder
    holding point_cloud.ply or point_cloud/iteration_*/point_cloud.ply."""
    name = str(path_or_name)
    if name == "builtin-gs" or name.startswith("builtin-gs-"):
        return True
    path = Path(name).expanduser()
    if path.is_file():
        return path.suffix.lower() == ".ply"
    return path.is_dir() and ((path / "point_cloud.ply").is_file()
                              or any(path.glob("point_cloud/iteration_*/point_cloud.ply")))


def find_ply(path: Path) -> tuple[Path, Path]:
    """(point_cloud.ply, the output folder that may hold cameras.json / cfg_args) of a path."""
    if path.is_file():
        root = path.parents[2] if path.parent.parent.name == "point_cloud" else path.parent
        return path, root
    if (path / "point_cloud.ply").is_file():
        return path / "point_cloud.ply", path
    iterations = sorted(path.glob("point_cloud/iteration_*/point_cloud.ply"),
                        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    if iterations:
        return iterations[-1], path
    raise SplatError(f"no point_cloud.ply in {path} (nor point_cloud/iteration_*/point_cloud.ply): give a "
                     "3DGS .ply or the trainer's output folder")


def source_from_cfg(root: Path) -> Path | None:
    """The existing `source_path` recorded in a 3DGS output's cfg_args, if any."""
    cfg = root / "cfg_args"
    if not cfg.is_file():
        return None
    match = re.search(r"source_path=['\"]([^'\"]+)['\"]", cfg.read_text(errors="replace"))
    return Path(match.group(1)) if match and Path(match.group(1)).is_dir() else None


def load_splat_scene(path_or_name: str, source: str | None = None, downscale: int | None = None) -> SplatScene:
    """Open a splat scene (see the module docstring); SplatError / SceneError say what is wrong."""
    name = str(path_or_name)
    if name == "builtin-gs" or name.startswith("builtin-gs-"):
        return _builtin(name, downscale)
    ply, root = find_ply(Path(name).expanduser())
    cloud = read_splats(ply)
    source_dir = Path(source).expanduser() if source else source_from_cfg(root)
    source_scene = None
    if source_dir is not None:
        from engine.scenes import load_scene
        source_scene = load_scene(str(source_dir), downscale)
    label = root.name if ply.parent == root else ply.stem
    if (root / "cameras.json").is_file():
        cameras = read_cameras_json(root / "cameras.json", downscale or 1)
        images = _matched_photos(source_scene, cameras) if source_scene is not None else None
        return SplatScene(_scene(label, ply, cloud, cameras, images), cloud, ply, "cameras.json")
    if source_scene is not None:
        if source_scene.kind == "llff" or source_scene.forward_facing:
            raise SplatError(f"{source_dir} is re-centred by its loader ({source_scene.kind}, forward-facing), so "
                             f"its cameras do not match the splats' frame: put the trainer's cameras.json beside "
                             f"{ply.name}'s output folder")
        cameras = Cameras(source_scene.K, source_scene.T_world_camera, source_scene.H, source_scene.W,
                          source_scene.view_names)
        return SplatScene(_scene(label, ply, cloud, cameras, source_scene.images), cloud, ply, "source scene")
    cameras = orbit_cameras(cloud.means.numpy(), cloud.opacity.numpy(), downscale or 1)
    return SplatScene(_scene(label, ply, cloud, cameras, None), cloud, ply, "orbit")


def _matched_photos(source: Scene, cameras: Cameras) -> np.ndarray | None:
    """The source scene's photos in the order of `cameras` (matched by name, resized to its size), or
    None with a warning when some view has no photo."""
    from PIL import Image

    stems = {Path(n).stem: i for i, n in enumerate(source.view_names)}
    missing = [n for n in cameras.names if Path(n).stem not in stems]
    if missing:
        warnings.warn(f"{len(missing)} views of cameras.json have no photo in the source scene (e.g. "
                      f"{missing[0]}): the views are rendered from the splats instead", stacklevel=3)
        return None
    photos = [source.images[stems[Path(n).stem]] for n in cameras.names]
    return np.stack([p if p.shape[:2] == (cameras.H, cameras.W)
                     else np.asarray(Image.fromarray(p).resize((cameras.W, cameras.H), Image.BILINEAR))
                     for p in photos])


def _scene(label: str, ply: Path, cloud: GaussianCloud, cameras: Cameras, images: np.ndarray | None) -> Scene:
    """A project Scene of the views (rendered from the splats when `images` is None)."""
    from engine.splats.raster import render_splats

    if images is None:
        images = np.stack([
            np.round(np.clip(render_splats(cloud, K, T, cameras.H, cameras.W, background=RENDER_BACKGROUND,
                                           with_weights=False).rgb.numpy(), 0, 1) * 255).astype(np.uint8)
            for K, T in zip(cameras.K, cameras.T_world_camera)])
    means = cloud.means.numpy()
    solid = means[cloud.opacity.numpy() > 0.1] if (cloud.opacity.numpy() > 0.1).any() else means
    lo, hi = np.percentile(solid, 1, axis=0), np.percentile(solid, 99, axis=0)
    pad = 0.1 * (hi - lo) + 1e-3
    bbox = np.stack([lo - pad, hi + pad]).astype(np.float32)
    depths = np.einsum("nij,nj->ni", np.linalg.inv(cameras.T_world_camera)[:, :3, :3],
                       bbox.mean(0) - cameras.T_world_camera[:, :3, 3])[:, 2]
    reach = float(np.linalg.norm(bbox[1] - bbox[0]) / 2)
    train, test = every_8th_split(len(cameras.names))
    return Scene(name=label, source=str(ply), kind="splats", images=images, K=cameras.K.astype(np.float32),
                 T_world_camera=cameras.T_world_camera.astype(np.float32), view_names=cameras.names,
                 train_ids=train, test_ids=test, bbox=bbox, near=float(max(0.05, depths.min() - reach)),
                 far=float(depths.max() + reach), background=RENDER_BACKGROUND)


def _builtin(name: str, downscale: int | None) -> SplatScene:
    """builtin-gs[-<size>]: the built-in scene's views and truth, its Gaussians fitted to that size."""
    from engine.scenes import BUILTIN_SIZE
    from engine.scenes.builtin import builtin_scene
    from engine.splats.builtin_gs import builtin_splats

    size = name.removeprefix("builtin-gs").removeprefix("-")
    if size and not size.isdigit():
        raise SplatError(f"unknown built-in splat scene '{name}': use 'builtin-gs' or 'builtin-gs-<size>'")
    pixels = int(size or BUILTIN_SIZE) // (downscale or 1)
    if pixels < 8:
        raise SplatError(f"'{name}' with --downscale {downscale} is {pixels} px wide: use at least 8 pixels")
    splats = builtin_splats(pixels)
    scene = dataclasses.replace(builtin_scene(pixels), name=name if not downscale else f"builtin-gs-{pixels}")
    return SplatScene(scene, splats.cloud, splats.folder / "point_cloud.ply", "builtin", splats.instance_ids)
