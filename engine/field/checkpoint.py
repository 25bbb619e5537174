"""The field checkpoint: one torch.save'd dict, written atomically.

Format (version 1): {"format": "sa3d-field", "version": 1, "scene_hash": str, "meta": dict,
"config": {space, step_voxels, near, far, background (None = exit colour), ndc_near, ndc_scale
(read as 1.0 / (1, 1) when absent)}, "tensors": {bbox [2,3],
density [1,1,Z,Y,X], color [1,3,Z,Y,X], density_scale [], density_shift [], occupancy [Z,Y,X] bool},
"outside": None (kinds box and ndc; also when absent) or the background grid of the unbounded kind
{"samples": int, "tensors": {grid [1,4,R,R,R], centre [3], half_extent [3], density_scale [],
density_shift []}} (engine/field/background.py)}.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from engine.errors import UserFacingError
from engine.field.background import BackgroundField
from engine.field.grid import VoxelField
from engine.io import atomic_path

FORMAT = "sa3d-field"
VERSION = 1
_TENSORS = ("bbox", "density", "color", "density_scale", "density_shift", "occupancy")
_OUTSIDE_TENSORS = ("grid", "centre", "half_extent", "density_scale", "density_shift")


class FieldCheckpointError(UserFacingError):
    """A field checkpoint that cannot be used; the message names the file and what to do."""


def save_field(path: str | os.PathLike, field: VoxelField, *, scene_hash: str, meta: dict | None = None) -> None:
    """Write `field` to `path` atomically (temporary file beside it, then rename)."""
    state = {
        "format": FORMAT, "version": VERSION, "scene_hash": str(scene_hash), "meta": dict(meta or {}),
        "config": {"space": field.space, "step_voxels": field.step_voxels, "near": field.near,
                   "far": field.far, "ndc_near": field.ndc_near, "ndc_scale": list(field.ndc_scale),
                   "background": (None if field.background_from_exit or field.outside is not None
                                  else field.background.tolist())},
        "tensors": {name: getattr(field, name).detach().cpu().clone() for name in _TENSORS},
        "outside": None if field.outside is None else {
            "samples": field.outside.samples,
            "tensors": {name: getattr(field.outside, name).detach().cpu().clone() for name in _OUTSIDE_TENSORS}},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_field(path: str | os.PathLike, *, scene_hash: str | None = None, device="cpu") -> VoxelField:
    """Read a field saved by save_field onto `device`.

    Raises FieldCheckpointError when the file is missing, corrupt, of another version, or (when
    scene_hash is given) trained on another scene.
    """
    path = Path(path)
    retrain = "retrain it with `python main.py train SCENE --out DIR`"
    if not path.is_file():
        raise FieldCheckpointError(f"no field checkpoint at {path}: {retrain}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling / zip failure means the file is unusable
        raise FieldCheckpointError(f"{path} is not a readable field checkpoint ({type(error).__name__}): "
                                   f"{retrain}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise FieldCheckpointError(f"{path} is not an sa3d field checkpoint: {retrain}")
    if state.get("version") != VERSION:
        raise FieldCheckpointError(f"{path} has checkpoint version {state.get('version')}, this program "
                                   f"reads version {VERSION}: {retrain}")
    if scene_hash is not None and state.get("scene_hash") != scene_hash:
        raise FieldCheckpointError(f"{path} was trained on another scene (hash {state.get('scene_hash')}, "
                                   f"this scene {scene_hash}): {retrain}")
    try:
        config, tensors = state["config"], state["tensors"]
        density = tensors["density"]
        outside = state.get("outside")
        background = None
        if outside is not None:
            background = BackgroundField(tensors["bbox"], outside["tensors"]["grid"].shape[-1],
                                         samples=int(outside["samples"]))
        field = VoxelField(tensors["bbox"], tuple(density.shape[2:]), step_voxels=config["step_voxels"],
                           background=config["background"], near=config["near"], far=config["far"],
                           space=config["space"], ndc_near=config.get("ndc_near", 1.0),
                           ndc_scale=tuple(config.get("ndc_scale", (1.0, 1.0))), outside=background)
        with torch.no_grad():
            for module, names, source in ((field, _TENSORS, tensors),
                                          (background, _OUTSIDE_TENSORS, (outside or {}).get("tensors"))):
                for name in names if module is not None else ():
                    target = getattr(module, name)
                    if target.shape != source[name].shape:
                        raise ValueError(name)
                    if source[name].is_floating_point() and not torch.isfinite(source[name]).all():
                        raise ValueError(f"{name} holds NaN or infinity")
                    target.copy_(source[name])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise FieldCheckpointError(f"{path} is damaged (field '{error}' missing or malformed): "
                                   f"{retrain}") from None
    return field.to(device)

