"""Blender / nerfstudio / instant-ngp `transforms*.json` scenes.

Reads `transforms.json` (one file; split from `train_filenames` / `test_filenames` when present,
else every 8th view held out) or Blender's `transforms_{train,val,test}.json` (train = train
(+ val when asked), test = test; view names get the split as prefix, "train_r_0", because Blender
reuses file names across splits). Intrinsics: `fl_x`, `fl_y`, `cx`, `cy`, `w`, `h` per frame or at
the top level, else `camera_angle_x` (+ `camera_angle_y`). `transform_matrix` is camera-to-world in
OpenGL convention (+Y up, -Z forward) and is converted to OpenCV here. RGBA images are composited
over the background (white unless the file says otherwise). Listed images that do not exist are
skipped with a warning. The optional key `sa3d` = {bbox, background, near, far, forward_facing}
(written by the built-in scene) overrides the defaults; otherwise the bbox is the region the
cameras see (engine/scenes/region.py), tightened to nerfstudio's sparse point cloud inside it
when `ply_file_path` names one, else (cameras that share no region) a cube around the point all
cameras look at (common.bbox_from_cameras).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.scenes.checks import check_cameras, number, numbers
from engine.scenes.common import (
    bbox_from_cameras,
    every_8th_split,
    find_image,
    read_image,
    scale_K,
    stack_images,
    warn_missing,
)
from engine.scenes.ply import read_ply_points
from engine.scenes.region import points_region, visual_region
from engine.scenes.scene import Scene, SceneError

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips camera +Y up / -Z forward to +Y down / +Z


def read_json(path: Path) -> dict:
    """Parse a JSON object; SceneError naming file and line when it is malformed."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SceneError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); fix or regenerate "
                         "the file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"cannot read {path} ({exc}); check the file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise SceneError(f"{path} has no 'frames' list; expected a transforms.json in the "
                         "Blender/nerfstudio format")
    return data


def _intrinsics(meta: dict, frame: dict, W: int, H: int, path: Path) -> np.ndarray:
    """[3, 3] K of one frame at its file's full resolution W x H (frame keys override meta)."""
    fix = "give positive numbers (pixels, or radians for camera_angle_x / _y)"

    def get(key: str) -> float | None:
        value = frame.get(key, meta.get(key))
        where = f"{path}: '{key}' of {frame.get('file_path')}"
        return None if value is None else number(value, where, fix, positive=key not in ("cx", "cy"))

    w, h = get("w"), get("h")
    sx, sy = (W / w if w else 1.0), (H / h if h else 1.0)   # w/h in the JSON may differ from the file's size
    if get("fl_x") is not None:
        fx = get("fl_x")
        fy = get("fl_y") if get("fl_y") is not None else fx
    elif get("camera_angle_x") is not None:
        fx = 0.5 * (w or W) / np.tan(0.5 * get("camera_angle_x"))
        angle_y = get("camera_angle_y")
        fy = 0.5 * (h or H) / np.tan(0.5 * angle_y) if angle_y is not None else fx
    else:
        raise SceneError(f"{path} gives no focal length (fl_x or camera_angle_x); add one")
    cx = get("cx") if get("cx") is not None else 0.5 * (w or W)
    cy = get("cy") if get("cy") is not None else 0.5 * (h or H)
    return scale_K(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), sx, sy)


def load_transforms(folder: Path, downscale: int | None = None, include_val: bool = False
                    ) -> Scene:
    """Read a transforms*.json scene from `folder` (see module docstring). Raises SceneError."""
    factor = downscale or 1
    single = folder / "transforms.json"
    if single.is_file():
        splits = [("all", single)]
    else:
        names = ("train", "val", "test") if include_val else ("train", "test")
        splits = [(s, folder / f"transforms_{s}.json") for s in names
                  if (folder / f"transforms_{s}.json").is_file()]
        if not splits:
            raise SceneError(f"{folder} has no transforms.json or transforms_train.json; "
                             "give a Blender/nerfstudio scene folder")
    images, Ks, poses, names, split_of, extra = [], [], [], [], [], {}
    background, saw_alpha = None, False
    for split, path in splits:
        meta = read_json(path)
        extra = _extra(meta.get("sa3d", extra), path)
        background = tuple(extra["background"]) if "background" in extra else None
        missing = []
        for frame in meta["frames"]:
            if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
                raise SceneError(f"{path}: a frame lacks 'file_path' or 'transform_matrix'; "
                                 "fix the file")
            image_path = find_image(path.parent / str(frame["file_path"]))
            if image_path is None:
                missing.append(str(frame["file_path"]))
                continue
            image, alpha = read_image(image_path, factor, background)
            saw_alpha |= alpha
            full_W, full_H = read_size(image_path)
            K = _intrinsics(meta, frame, full_W, full_H, path)
            Ks.append(scale_K(K, image.shape[1] / full_W, image.shape[0] / full_H))
            pose = numbers(frame["transform_matrix"], ((4, 4), (3, 4)),
                           f"{path}: transform_matrix of {frame['file_path']}",
                           "give the camera-to-world matrix as 4 rows of 4 numbers")
            poses.append(np.vstack([pose[:3], [0, 0, 0, 1]]) @ OPENGL_TO_OPENCV)
            images.append(image)
            names.append(image_path.stem if split == "all" else f"{split}_{image_path.stem}")
            split_of.append((split, str(frame["file_path"])))
        warn_missing(missing, len(meta["frames"]), path)
    if len(set(names)) != len(names):
        names = [p.replace("/", "_").replace(".", "").strip("_") for _, p in split_of]
    stacked = stack_images(images, names, folder)
    train_ids, test_ids = _split(splits, split_of, meta)
    K = np.stack(Ks).astype(np.float32)
    T = np.stack(poses).astype(np.float32)
    check_cameras(K, T, names, splits[0][1], "fix that frame's transform_matrix and intrinsics, or remove the frame")
    bbox, near, far = bbox_from_cameras(K, T, stacked.shape[1], stacked.shape[2])
    if "bbox" in extra:
        bbox, bbox_source = extra["bbox"], "sa3d.bbox in the scene file"
    else:
        bbox, bbox_source = _region(folder, meta, K, T, stacked.shape[1], stacked.shape[2], near, bbox)
    if background is None and saw_alpha:
        background = (1.0, 1.0, 1.0)
    return Scene(
        name=folder.name, source=str(folder), kind="blender", images=stacked, K=K,
        T_world_camera=T, view_names=tuple(names), train_ids=train_ids, test_ids=test_ids,
        bbox=np.asarray(bbox, dtype=np.float32),
        near=float(extra.get("near", near)), far=float(extra.get("far", far)),
        forward_facing=bool(extra.get("forward_facing", False)), background=background,
        bbox_source=bbox_source)


def _extra(extra, path: Path) -> dict:
    """The optional `sa3d` key with its numbers checked: bbox [2, 3], background [3], near, far."""
    if not isinstance(extra, dict):
        raise SceneError(f"{path}: 'sa3d' must be an object with bbox, background, near, far; fix or remove it")
    fix = "fix or remove it"
    checked = dict(extra)
    for key, shape in (("bbox", (2, 3)), ("background", (3,)), ("near", ()), ("far", ())):
        if key in extra:
            value = numbers(extra[key], shape, f"{path}: sa3d.{key}", fix)
            checked[key] = value.tolist() if shape else float(value)
    return checked


def _region(folder: Path, meta: dict, K, T, H: int, W: int, near: float, cube) -> tuple[np.ndarray, str]:
    """(bbox [2, 3], how it was chosen): the region the cameras see, tightened to the points of
    `ply_file_path` inside it; `cube` when the cameras share no region."""
    seen = visual_region(K, T, H, W, near)
    if seen is None:
        return cube, "cube around the cameras' look-at point"
    if meta.get("ply_file_path"):
        tight = points_region(read_ply_points(folder / str(meta["ply_file_path"])), seen)
        if tight is not None:
            return tight, "ply_file_path points inside the region the cameras see"
    return seen, "region the cameras see"


def read_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image file without decoding its pixels."""
    with Image.open(path) as im:
        return im.size


def _split(splits, split_of, meta) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Train / test ids from Blender split files, nerfstudio filename lists or every 8th view."""
    if splits[0][0] != "all":
        test = tuple(i for i, (s, _) in enumerate(split_of) if s == "test")
        return tuple(i for i, (s, _) in enumerate(split_of) if s != "test"), test
    if "test_filenames" in meta:
        held = {str(Path(p).with_suffix("")) for p in meta["test_filenames"]}
        test = tuple(i for i, (_, p) in enumerate(split_of) if str(Path(p).with_suffix("")) in held)
        return tuple(i for i in range(len(split_of)) if i not in test), test
    return every_8th_split(len(split_of))
