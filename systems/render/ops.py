"""What the GL ray marcher needs from a VoxelField and a mask grid, as plain arrays (pure).

Encodings (the shader decodes them; see assets/shaders/raymarch.frag.glsl):
- density: the raw grid (interpolated before the activation, as in torch), float16, or uint8
  v = round(255 (raw - lo) / (hi - lo)) with lo / hi the 0.1 / 100 percentiles of raw over
  occupied voxels (raw below lo saturates to lo, where alpha is ~0 anyway).
- colour: the raw grid as float16 (the shader applies the sigmoid), or uint8 sigmoid(raw) * 255.
- flags: uint8 [Z, Y, X, 2]: occupancy * 255 and the object id (0 = none, k = object k, 1-based).
- blocks: uint8 [Zb, Yb, Xb]: 255 where a block of `block` voxels per side has an occupied voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_OBJECTS = 31   # object ids 1..31 fit the shader's colour table (index 0 = no object)


@dataclass(frozen=True)
class VolumeArrays:
    density: np.ndarray      # [Z, Y, X] float16 raw or uint8 encoded (see raw_lo / raw_hi)
    color: np.ndarray        # [Z, Y, X, 4] float16 raw or uint8 sigmoid'ed (alpha channel unused)
    occupancy: np.ndarray    # [Z, Y, X] uint8 0 / 255
    raw_lo: float            # uint8 density: raw = raw_lo + v / 255 * (raw_hi - raw_lo)
    raw_hi: float
    bbox: np.ndarray         # [2, 3] float32 world min / max
    step_size: float         # world units between samples
    density_shift: float
    density_scale: float
    near: float
    far: float
    background: np.ndarray   # [3] float32 backdrop colour (unused when background_from_exit)
    background_from_exit: bool

    @property
    def resolution(self) -> tuple[int, int, int]:
        """Z, Y, X voxel counts."""
        return tuple(int(r) for r in self.occupancy.shape)

    @property
    def density_u8(self) -> bool:
        return self.density.dtype == np.uint8

    @property
    def color_raw(self) -> bool:
        return self.color.dtype != np.uint8


def volume_arrays(field, *, precision: str = "u8") -> VolumeArrays:
    """Encode a VoxelField's grids for upload; precision "u8" (fast) or "f16" (closest to torch).

    Reads field.density / color / occupancy and its scalars; raises ValueError on another precision.
    """
    if precision not in ("u8", "f16"):
        raise ValueError(f"precision must be 'u8' or 'f16', not {precision!r}")
    with torch.no_grad():
        raw = field.density.detach()[0, 0].float().cpu()                          # [Z, Y, X]
        color_raw = field.color.detach()[0].permute(1, 2, 3, 0).float().cpu()       # [Z, Y, X, 3]
        occupancy = field.occupancy.cpu()                                  # [Z, Y, X] bool
    rgba = torch.cat([color_raw, torch.zeros_like(color_raw[..., :1])], dim=-1)  # [Z, Y, X, 4]
    lo = hi = 0.0
    if precision == "f16":
        density = raw.numpy().astype(np.float16)
        color = rgba.numpy().astype(np.float16)
    else:
        values = raw[occupancy] if bool(occupancy.any()) else raw.flatten()
        lo, hi = (float(q) for q in np.percentile(values.numpy(), [0.1, 100.0]))
        hi = max(hi, lo + 1e-3)
        density = np.round((raw.numpy() - lo) / (hi - lo) * 255.0).clip(0, 255).astype(np.uint8)
        color = np.round(torch.sigmoid(rgba).numpy() * 255.0).astype(np.uint8)
    return VolumeArrays(
        density=np.ascontiguousarray(density), color=np.ascontiguousarray(color),
        occupancy=occupancy.numpy().astype(np.uint8) * 255, raw_lo=lo, raw_hi=hi,
        bbox=field.bbox.detach().cpu().numpy().astype(np.float32), step_size=float(field.step_size),
        density_shift=float(field.density_shift), density_scale=float(field.density_scale),
        near=float(field.near), far=float(field.far),
        background=field.background.detach().cpu().numpy().astype(np.float32),
        background_from_exit=bool(field.background_from_exit))


def occupied_blocks(occupancy: np.ndarray, block: int) -> np.ndarray:
    """uint8 [ceil(Z/b), ceil(Y/b), ceil(X/b)]: 255 where any voxel of the block is occupied.

    Reads occupancy [Z, Y, X] (nonzero = occupied).
    """
    Z, Y, X = occupancy.shape
    pad = [(0, (-n) % block) for n in (Z, Y, X)]
    padded = np.pad(occupancy != 0, pad)                                   # [Zp, Yp, Xp]
    zb, yb, xb = (s // block for s in padded.shape)
    blocks = padded.reshape(zb, block, yb, block, xb, block).any(axis=(1, 3, 5))
    return blocks.astype(np.uint8) * 255


def object_ids(votes: np.ndarray | None, resolution: tuple[int, int, int]) -> np.ndarray:
    """uint8 [Z, Y, X]: the object whose vote is highest among positive ones (1-based), else 0.

    Reads votes [K, Z, Y, X] (None or K = 0: no objects); objects past MAX_OBJECTS are dropped.
    """
    if votes is None or len(votes) == 0:
        return np.zeros(resolution, dtype=np.uint8)
    votes = np.asarray(votes)[:MAX_OBJECTS]                                # [K, Z, Y, X]
    best = votes.argmax(axis=0)                                            # [Z, Y, X]
    positive = np.take_along_axis(votes, best[None], axis=0)[0] > 0        # [Z, Y, X]
    return np.where(positive, best + 1, 0).astype(np.uint8)


def voxel_flags(occupancy: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """uint8 [Z, Y, X, 2]: occupancy (0 / 255) and object id, the shader's per-voxel lookup."""
    return np.ascontiguousarray(np.stack([occupancy, ids], axis=-1).astype(np.uint8))
