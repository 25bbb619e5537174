"""Reading the SA3D core's mask_grid.npz and checking it against the field and the object name.

Layout (written by the segment command, version 1): votes [K, Z, Y, X] float32 (a splat scene:
[K, N], one value per Gaussian), counts of the same shape, names [K] str, colors [K, 3] uint8,
bbox [2, 3], space str, scene_hash str, field_hash str, version int. The 3D mask of object k is
votes[k] > 0.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserFacingError

MASK_GRID_VERSION = 1


class ExportError(UserFacingError):
    """An export that cannot be made; the message names the problem and what to do."""


@dataclass(frozen=True, eq=False)
class MaskGridFile:
    votes: np.ndarray            # [K, Z, Y, X] float32; object k's 3D mask is votes[k] > 0
    names: tuple[str, ...]       # K object names
    colors: np.ndarray           # [K, 3] uint8 display colours
    bbox: np.ndarray             # [2, 3] float32 world min / max (x, y, z)
    space: str                   # "world"
    scene_hash: str
    field_hash: str
    path: Path                   # where it was read from (for messages)

    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(int(r) for r in self.votes.shape[1:])

    def object_index(self, name: str | None) -> int:
        """Channel of object `name` (None: the only object); raises ExportError listing the names."""
        listed = ", ".join(self.names) or "(none)"
        if name is None:
            if len(self.names) == 1:
                return 0
            raise ExportError(f"{self.path} holds {len(self.names)} objects ({listed}): "
                              f"choose one with --object NAME")
        if name not in self.names:
            raise ExportError(f"no object '{name}' in {self.path}: choose one of {listed}")
        return self.names.index(name)

    def object_mask(self, index: int) -> np.ndarray:
        """bool [Z, Y, X] 3D mask of channel `index`; raises ExportError when it is empty."""
        mask = self.votes[index] > 0
        if not mask.any():
            raise ExportError(f"object '{self.names[index]}' has an empty 3D mask in {self.path}: "
                              f"nothing to export; segment it again (more prompts or views)")
        return mask


def load_mask_grid(path: str | Path) -> MaskGridFile:
    """Read a mask_grid.npz; raises ExportError when it is missing, unreadable or of another version."""
    path = Path(path)
    fix = "run `python main.py segment ...` to write one"
    if not path.is_file():
        raise ExportError(f"no mask grid at {path}: {fix}")
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"])
            if version != MASK_GRID_VERSION:
                raise ExportError(f"{path} is mask grid version {version}, this program reads "
                                  f"version {MASK_GRID_VERSION}: segment again")
            votes = data["votes"].astype(np.float32)
            names = tuple(str(n) for n in data["names"])
            grid = MaskGridFile(votes=votes, names=names, colors=data["colors"].astype(np.uint8),
                                bbox=data["bbox"].astype(np.float32).reshape(2, 3),
                                space=str(data["space"]), scene_hash=str(data["scene_hash"]),
                                field_hash=str(data["field_hash"]), path=path)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise ExportError(f"{path} is not a readable mask grid ({type(error).__name__}: {error}): {fix}") from None
    if votes.ndim not in (2, 4) or len(names) != votes.shape[0] or grid.colors.shape != (len(names), 3):
        raise ExportError(f"{path} is damaged: votes {votes.shape} and colors {grid.colors.shape} for "
                          f"{len(names)} names: {fix}")
    if not (np.isfinite(votes).all() and np.isfinite(grid.bbox).all()):
        raise ExportError(f"{path} is damaged: its votes or box hold NaN or infinity: {fix}")
    return grid


def check_matches_field(grid: MaskGridFile, *, resolution: tuple[int, int, int], bbox: np.ndarray,
                        space: str, field_hash: str | None) -> None:
    """Refuse (ExportError) a grid whose resolution, box, space or field hash differ from the field's."""
    again = "export with the field the object was segmented with, or segment again with this field"
    if grid.resolution != tuple(resolution):
        raise ExportError(f"{grid.path} has resolution {grid.resolution} but the field has "
                          f"{tuple(resolution)}: {again}")
    if grid.space != space or not np.allclose(grid.bbox, np.asarray(bbox, np.float32), atol=1e-5):
        raise ExportError(f"{grid.path} covers box {grid.bbox.tolist()} ({grid.space}) but the field covers "
                          f"{np.asarray(bbox).tolist()} ({space}): {again}")
    if field_hash is not None and grid.field_hash != field_hash:
        raise ExportError(f"{grid.path} was segmented with another field (hash {grid.field_hash[:12]}, "
                          f"this field {field_hash[:12]}): {again}")
