"""mask_grid.npz, the one record of a segmentation's mask grid: snapshot, write, read, check.

Every writer and reader goes through this module: `segment` and `replay` write it, the viewer
snapshots its live grid for an export, `export` reads it. Layout, version MASK_GRID_VERSION:
    votes       [K, Z, Y, X] float32, the SA3D votes; object k's (surface) mask is votes[k] > 0
                (a splat scene: [K, N], one value per Gaussian)
    counts      the same shape, how many views voted on each voxel (read as 0 where absent)
    names       [K] str;     colors [K, 3] uint8 display colours
    bbox        [2, 3] float32 field-space min / max (x, y, z) of the grid (the field's box)
    space       str, "world" or "ndc" (the field's space; engine/field/grid.py converts)
    scene_hash, field_hash   str (field_hash: sha256 of field.pt)
    version     int
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserFacingError
from engine.io import DAMAGED_ARRAY_FILE, atomic_write

MASK_GRID_VERSION = 1


class MaskGridError(UserFacingError):
    """A mask grid file that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True, eq=False)
class MaskGridFile:
    votes: np.ndarray            # [K, Z, Y, X] float32; object k's 3D mask is votes[k] > 0
    counts: np.ndarray           # [K, Z, Y, X] float32 views that voted on each voxel
    names: tuple[str, ...]       # K object names
    colors: np.ndarray           # [K, 3] uint8 display colours
    bbox: np.ndarray             # [2, 3] float32 field-space min / max (x, y, z)
    space: str                   # "world" | "ndc"
    scene_hash: str
    field_hash: str
    path: Path                   # where it was read from (for messages)

    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(int(r) for r in self.votes.shape[1:])

    def object_index(self, name: str | None) -> int:
        """Channel of object `name` (None: the only object); raises MaskGridError listing the names."""
        listed = ", ".join(self.names) or "(none)"
        if name is None:
            if len(self.names) == 1:
                return 0
            raise MaskGridError(f"{self.path} holds {len(self.names)} objects ({listed}): "
                                f"choose one with --object NAME")
        if name not in self.names:
            raise MaskGridError(f"no object '{name}' in {self.path}: choose one of {listed}")
        return self.names.index(name)

    def object_mask(self, index: int) -> np.ndarray:
        """bool [Z, Y, X] surface mask (votes > 0) of channel `index`; raises MaskGridError when empty."""
        mask = self.votes[index] > 0
        if not mask.any():
            raise MaskGridError(f"object '{self.names[index]}' has an empty 3D mask in {self.path}: "
                                f"nothing to export; segment it again (more prompts or views)")
        return mask


def grid_snapshot(app) -> MaskGridFile:
    """Reads MaskGrid, SceneData and the SegObjects: a copy of the App's grid with its objects'
    names and colours in channel order."""
    from components.resources import MaskGrid, SceneData
    from systems.segmentation.objects import objects_by_channel

    grid, data = app.resource(MaskGrid), app.resource(SceneData)
    objects = objects_by_channel(app)
    return MaskGridFile(votes=grid.votes.astype(np.float32, copy=True),
                        counts=grid.counts.astype(np.float32, copy=True),
                        names=tuple(o.name for o in objects),
                        colors=np.array([o.color for o in objects], np.uint8).reshape(-1, 3),
                        bbox=np.asarray(grid.bbox, np.float32), space=grid.space,
                        scene_hash=data.scene.content_hash(), field_hash=data.field_hash,
                        path=Path("the viewer's mask grid"))


def mask_grid_bytes(grid: MaskGridFile) -> bytes:
    """The npz encoding (module docstring) of `grid`."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, votes=grid.votes.astype(np.float32), counts=grid.counts.astype(np.float32),
                        names=np.array(grid.names, dtype=str), colors=np.asarray(grid.colors, np.uint8).reshape(-1, 3),
                        bbox=np.asarray(grid.bbox, np.float32), space=np.array(grid.space),
                        scene_hash=np.array(grid.scene_hash), field_hash=np.array(grid.field_hash),
                        version=np.array(MASK_GRID_VERSION))
    return buffer.getvalue()


def write_mask_grid(path: str | Path, grid: MaskGridFile) -> Path:
    """Write `grid` to `path` atomically."""
    atomic_write(path, mask_grid_bytes(grid))
    return Path(path)


def save_mask_grid(app, path: str | Path) -> Path:
    """Write the App's mask grid (grid_snapshot) to `path` atomically."""
    return write_mask_grid(path, grid_snapshot(app))


def load_mask_grid(path: str | Path) -> MaskGridFile:
    """Read a mask_grid.npz; raises MaskGridError when it is missing, unreadable or of another version."""
    path = Path(path)
    fix = "run `python main.py segment ...` to write one"
    if not path.is_file():
        raise MaskGridError(f"no mask grid at {path}: {fix}")
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"])
            if version != MASK_GRID_VERSION:
                raise MaskGridError(f"{path} is mask grid version {version}, this program reads "
                                    f"version {MASK_GRID_VERSION}: segment again")
            votes = data["votes"].astype(np.float32)
            counts = data["counts"].astype(np.float32) if "counts" in data.files else np.zeros_like(votes)
            grid = MaskGridFile(votes=votes, counts=counts,
                                names=tuple(str(n) for n in data["names"]),
                                colors=data["colors"].astype(np.uint8),
                                bbox=data["bbox"].astype(np.float32).reshape(2, 3),
                                space=str(data["space"]), scene_hash=str(data["scene_hash"]),
                                field_hash=str(data["field_hash"]), path=path)
    except DAMAGED_ARRAY_FILE as error:
        raise MaskGridError(f"{path} is not a readable mask grid ({type(error).__name__}: {error}): {fix}") from None
    names = grid.names
    if votes.ndim not in (2, 4) or len(names) != votes.shape[0] or grid.colors.shape != (len(names), 3) \
            or grid.counts.shape != votes.shape:
        raise MaskGridError(f"{path} is damaged: votes {votes.shape}, counts {grid.counts.shape} and colors "
                            f"{grid.colors.shape} for {len(names)} names: {fix}")
    if not (np.isfinite(votes).all() and np.isfinite(grid.bbox).all()):
        raise MaskGridError(f"{path} is damaged: its votes or box hold NaN or infinity: {fix}")
    return grid


def check_matches_field(grid: MaskGridFile, *, resolution: tuple[int, int, int], bbox: np.ndarray,
                        space: str, field_hash: str | None) -> None:
    """Refuse (MaskGridError) a grid whose resolution, box, space or field hash differ from the field's."""
    again = "use the field the object was segmented with, or segment again with this field"
    if grid.resolution != tuple(resolution):
        raise MaskGridError(f"{grid.path} has resolution {grid.resolution} but the field has "
                            f"{tuple(resolution)}: {again}")
    if grid.space != space or not np.allclose(grid.bbox, np.asarray(bbox, np.float32), atol=1e-5):
        raise MaskGridError(f"{grid.path} covers box {grid.bbox.tolist()} ({grid.space}) but the field covers "
                            f"{np.asarray(bbox).tolist()} ({space}): {again}")
    if field_hash is not None and grid.field_hash != field_hash:
        raise MaskGridError(f"{grid.path} was segmented with another field (hash {grid.field_hash[:12]}, "
                            f"this field {field_hash[:12]}): {again}")
