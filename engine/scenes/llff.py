"""LLFF scenes: `poses_bounds.npy` + `images_N/` (or `images/`) folders, forward-facing or 360.

`poses_bounds.npy` is [N, 17]: a 3x5 matrix per view (rotation columns [down, right, back],
camera position, [H, W, focal] of the full-resolution images) then near and far depth bounds.
The folder `images_N` is chosen by `downscale` N (1 -> `images`); with no downscale, `images_8`
if it exists, else the most downsampled folder there is. Focal is divided by the ratio of the
poses' H to the folder's image height.

World frame and region:
  - the poses are recentred on the average camera (world origin at the mean camera position,
    world +Z = the mean viewing direction, +Y = mean image down; an OpenCV-like world), and scaled
    so that the smallest near bound becomes 1; `near` = 0.9 (x the smallest near bound), `far` =
    the 90th percentile of the far bounds (not spent on the few views whose far bound is an
    outlier), `background` = None;
  - forward-facing captures (engine/scenes/region.py is_forward_facing; the field models them in
    NDC space): `bbox` covers every camera frustum between depths near and far;
  - captures that walk around an object (LLFF poses are also used for those, e.g. NeRD's): `bbox`
    is the region that the cameras see (region.visual_region), `forward_facing` = False.
Views 0, 8, 16, ... (sorted by file name) are held out for testing.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.scenes.checks import check_cameras
from engine.scenes.common import IMAGE_SUFFIXES, bbox_from_cameras, every_8th_split, read_image, stack_images
from engine.scenes.region import forward_frame, is_forward_facing, visual_region
from engine.scenes.scene import Scene, SceneError

FAR_PERCENTILE = 90.0  # far limit of the bbox: this percentile of the views' far bounds


def _image_folders(folder: Path) -> dict[int, Path]:
    """{downscale factor: folder} for `images` (1) and every `images_N` in `folder`."""
    found = {}
    for sub in folder.iterdir():
        match = re.fullmatch(r"images(?:_(\d+))?", sub.name)
        if sub.is_dir() and match:
            found[int(match.group(1) or 1)] = sub
    return found


def _choose_folder(folder: Path, downscale: int | None) -> Path:
    """The image folder for `downscale` (see module docstring); SceneError listing the choices."""
    found = _image_folders(folder)
    if not found:
        raise SceneError(f"{folder} has poses_bounds.npy but no images/ or images_N/ folder; "
                         "add the images")
    if downscale is None:
        return found.get(8, found[max(found)])
    if downscale not in found:
        have = ", ".join(f"{p.name}/ (--downscale {f})" for f, p in sorted(found.items()))
        raise SceneError(f"{folder} has no {'images' if downscale == 1 else f'images_{downscale}'}"
                         f"/ folder for --downscale {downscale}; it has {have}")
    return found[downscale]


def load_llff(folder: Path, downscale: int | None = None) -> Scene:
    """Read an LLFF scene folder (see module docstring). Raises SceneError on bad input."""
    path = folder / "poses_bounds.npy"
    try:
        raw = np.load(path).astype(np.float64)
    except Exception as exc:  # a damaged header fails in numpy's parser with any of several types
        raise SceneError(f"cannot read {path} ({exc or type(exc).__name__}); regenerate it with LLFF's "
                         "imgs2poses") from exc
    if raw.ndim != 2 or raw.shape[1] != 17 or len(raw) == 0:
        raise SceneError(f"{path} has shape {raw.shape}, expected [N, 17] with N >= 1; regenerate it")
    image_folder = _choose_folder(folder, downscale)
    files = sorted(p for p in image_folder.iterdir() if p.suffix in IMAGE_SUFFIXES)
    if len(files) != len(raw):
        raise SceneError(f"{image_folder} has {len(files)} images but {path} has {len(raw)} poses; "
                         "the two must match one to one")
    _check_rows(raw, path)
    poses, bounds = raw[:, :15].reshape(-1, 3, 5), raw[:, 15:]                # [N, 3, 5], [N, 2]
    images = stack_images([read_image(p)[0] for p in files], [p.name for p in files], folder)
    H, W = images.shape[1:3]
    focal = poses[:, 2, 4] * H / poses[:, 0, 4]                               # [N]
    K = np.zeros((len(raw), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = focal, focal, W / 2, H / 2, 1
    T = np.tile(np.eye(4), (len(raw), 1, 1))                                  # [N, 4, 4]
    T[:, :3, :3] = np.stack([poses[:, :, 1], poses[:, :, 0], -poses[:, :, 2]], -1)
    T[:, :3, 3] = poses[:, :, 3]
    check_cameras(K, T, [p.name for p in files], path, "regenerate the file with LLFF's imgs2poses")
    T = np.linalg.inv(forward_frame(T)) @ T
    scale = 1.0 / bounds[:, 0].min()
    T[:, :3, 3] *= scale
    near, far = 0.9, float(np.percentile(bounds[:, 1], FAR_PERCENTILE) * scale)
    forward = is_forward_facing(T)
    if forward:
        bbox, bbox_source = _frustum_bbox(K, T, H, W, near, far), "camera frusta from near to far"
    else:
        bbox, bbox_source = visual_region(K, T, H, W, near), "region the cameras see"
        if bbox is None:
            bbox, bbox_source = bbox_from_cameras(K, T, H, W)[0], "cube around the cameras' look-at point"
    train_ids, test_ids = every_8th_split(len(raw))
    return Scene(
        name=folder.name, source=str(folder), kind="llff", images=images,
        K=K.astype(np.float32), T_world_camera=T.astype(np.float32),
        view_names=tuple(p.stem for p in files), train_ids=train_ids, test_ids=test_ids,
        bbox=bbox, near=near, far=far, forward_facing=forward, background=None, bbox_source=bbox_source)


def _check_rows(raw: np.ndarray, path: Path) -> None:
    """Refuse rows holding NaN / infinity, image sizes or focal lengths <= 0, or depth bounds that
    are not 0 < near < far; the message names the row (the view, in file-name order)."""
    fix = "regenerate the file with LLFF's imgs2poses (or remove that view and its image)"
    for i, row in enumerate(raw):
        if not np.isfinite(row).all():
            raise SceneError(f"{path}: row {i} holds NaN or infinity; {fix}")
        H, W, focal = row[4], row[9], row[14]
        if min(H, W, focal) <= 0:
            raise SceneError(f"{path}: row {i} gives image size {W:g}x{H:g} and focal length {focal:g}; "
                             f"each must be positive; {fix}")
        if not 0 < row[15] < row[16]:
            raise SceneError(f"{path}: row {i} has depth bounds near {row[15]:g}, far {row[16]:g}; "
                             f"they must satisfy 0 < near < far; {fix}")


def _frustum_bbox(K: np.ndarray, T: np.ndarray, H: int, W: int, near: float, far: float
                  ) -> np.ndarray:
    """[2, 3] world box around every camera's frustum between depths near and far."""
    corners = np.array([[x, y, 1.0] for x in (0, W) for y in (0, H)])          # [4, 3] pixels
    rays = np.einsum("nij,cj->nci", np.linalg.inv(K), corners)                 # [N, 4, 3] z = 1
    cam = np.concatenate([rays * near, rays * far], 1)                         # [N, 8, 3]
    world = np.einsum("nij,ncj->nci", T[:, :3, :3], cam) + T[:, None, :3, 3]   # [N, 8, 3]
    return np.stack([world.reshape(-1, 3).min(0), world.reshape(-1, 3).max(0)]).astype(np.float32)
