"""Per-view exports: an object's 2D masks and the object-alone / object-removed renders.

Masks render the 3D mask with the frozen field's compositing weights (systems/inverse/ops:
frozen_view_weights + coverage_mask with the default SegmentationSettings' cutoffs: the segment
command's path, so scene views give segment's masks). Renders edit a
copy of the field: the raw density of the excluded voxels is set to
`ops.EMPTY_RAW`, whose activation is ~0, so those voxels neither show nor occlude.

Camera path file (`--path cameras.json`): a JSON list, one object per camera,
    {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "T_world_camera": 4 x 4 rows, "H": int, "W": int,
     "name": "optional_file_stem"}
with the project's conventions (OpenCV camera to world, pixel intrinsics). Frames without a
name are called path_0000, path_0001, ...
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from components.camera import Camera
from components.resources import SegmentationSettings
from engine.errors import UserFacingError
from engine.field.grid import VoxelField
from engine.field.render import render_view
from systems.export.ops import EMPTY_RAW
from systems.inverse.frozen import frozen_view_weights
from systems.inverse.ops import coverage_mask


class CameraPathError(UserFacingError):
    """A camera path file that cannot be read; the message names the file and the expected format."""


@dataclass(frozen=True)
class NamedCamera:
    name: str        # file stem of this frame's outputs
    camera: Camera


def scene_cameras(scene) -> list[NamedCamera]:
    """Every view of a Scene as a named camera (names are the scene's view names)."""
    return [NamedCamera(name, Camera.of_view(scene, i)) for i, name in enumerate(scene.view_names)]


MAX_SIDE = 8192   # pixels per side of a camera-path image (the viewer's --size limit)


def load_camera_path(path: str | Path) -> list[NamedCamera]:
    """Read a camera path JSON file (format in the module docstring); raises CameraPathError."""
    path = Path(path)
    expected = 'a JSON list of {"K": 3x3, "T_world_camera": 4x4, "H": int, "W": int, "name": optional}'
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CameraPathError(f"cannot read camera path {path} ({type(error).__name__}): "
                              f"write {expected}") from None
    if not isinstance(entries, list) or not entries:
        raise CameraPathError(f"camera path {path} is not a non-empty list: write {expected}")
    cameras = []
    for i, entry in enumerate(entries):
        try:
            K = np.asarray(entry["K"], np.float32).reshape(3, 3)
            T = np.asarray(entry["T_world_camera"], np.float32).reshape(4, 4)
            H, W = int(entry["H"]), int(entry["W"])
            name = str(entry.get("name") or f"path_{i:04d}")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CameraPathError(f"camera {i} of {path} is malformed: each entry must be "
                                  f"{expected[10:]}") from None
        if not 0 < H <= MAX_SIDE or not 0 < W <= MAX_SIDE:
            raise CameraPathError(f"camera {i} of {path} has size {H} x {W}: give H and W within 1..{MAX_SIDE}")
        if not (np.isfinite(K).all() and np.isfinite(T).all()):
            raise CameraPathError(f"camera {i} of {path} holds NaN or infinity in K or T_world_camera: "
                                  f"give finite numbers")
        cameras.append(NamedCamera(name, Camera(K, T, H, W)))
    return cameras


def object_masks(field: VoxelField, votes: torch.Tensor, camera: Camera) -> np.ndarray:
    """bool [K, H, W]: the 2D mask (systems.inverse.ops.coverage_mask) of every channel of votes
    [K, Z, Y, X] in a camera."""
    settings = SegmentationSettings()
    weights, _ = frozen_view_weights(field, camera, weight_cutoff=settings.weight_cutoff,
                                     min_entry=settings.min_entry)
    return coverage_mask(weights, votes.to(torch.float32).cpu().numpy())


def edited_field(field: VoxelField, removed: np.ndarray) -> VoxelField:
    """A copy of `field` whose voxels marked by removed [Z, Y, X] bool hold no density."""
    edited = copy.deepcopy(field)
    with torch.no_grad():
        cut = torch.from_numpy(np.ascontiguousarray(removed)).to(edited.density.device)
        edited.density[0, 0][cut] = EMPTY_RAW
    return edited


def render_rgb(field: VoxelField, camera: Camera) -> np.ndarray:
    """uint8 [H, W, 3] colour render of `field` in `camera`."""
    view = render_view(field, camera.K, camera.T_world_camera, camera.H, camera.W)
    return (view.rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
