"""What the GL ray marcher needs from a VoxelField and a mask grid, as plain arrays (pure).

Encodings (the shader decodes them; see assets/shaders/raymarch.frag.glsl):
- volume: one RGBA texel per voxel, so a sample costs one trilinear fetch: rgb = colour, a = density.
  "f16": the raw grids (the shader applies the sigmoid / the activation after interpolation, as
  torch does). "u8": rgb = sigmoid(raw colour) * 255 and a = round(255 (raw - lo) / (hi - lo)) with
  lo / hi the 0.1 / 100 percentiles of raw over occupied voxels (raw below lo saturates to lo,
  where alpha is ~0 anyway).
- flags: uint8 [Z, Y, X, 4]: occupancy * 255, the object id (0 = none, k = object k, 1-based), the
  group size S of the voxel's samples (see `group_sizes`) and 0.
- block distance: uint8 [Zb, Yb, Xb]: for blocks of `block` voxels per side, the Chebyshev distance
  in blocks to the nearest block holding an occupied voxel (0 = this block holds one; capped at 255).
  A ray inside block b with distance d may leap out of the (2d - 1)^3 empty blocks around b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.ndimage import distance_transform_cdt

MAX_OBJECTS = 31   # object ids 1..31 fit the shader's colour table (index 0 = no object)
OVERLAY_TINT = 0.55   # share of an object's colour in a pixel of its overlay: the live view (u_tint), the
                      # candidate previews and replay videos (tint_pixels) all read this one number
# (group size S, largest alpha of one step allowed within reach of such a group). S = 2 holds
# everywhere (its bound exceeds any alpha): samples are one voxel apart, the grid's own resolution,
# at least; on trained fields this keeps the image within ~46 dB of torch's half-voxel steps at
# 1.6x the speed (bench/bench_viewer.py, tests/test_gl_raymarch.py).
GROUP_LEVELS = ((8, 0.02), (4, 0.1), (2, 2.0))


@dataclass(frozen=True)
class OutsideArrays:
    """The unbounded kind's background grid (engine/field/background.py) for upload: float16 raw
    values, the shader applies the activations after interpolation, as torch does."""
    rgba: np.ndarray         # [R, R, R, 4] float16 raw colour + raw density, [Z, Y, X] order
    centre: np.ndarray       # [3] float32 world centre of the foreground box
    half_extent: np.ndarray  # [3] float32 world half size of the inner cube (background.py)
    samples: int             # background samples per ray
    density_shift: float
    density_scale: float

    @property
    def resolution(self) -> int:
        return int(self.rgba.shape[0])


def outside_arrays(outside) -> OutsideArrays | None:
    """Encode a BackgroundField (or None: a field without one) for upload."""
    if outside is None:
        return None
    with torch.no_grad():
        grid = outside.grid.detach()[0].float().cpu()                        # [4, R, R, R]
        rgba = torch.cat([grid[1:], grid[:1]]).permute(1, 2, 3, 0).numpy()   # [R, R, R, 4]
    return OutsideArrays(rgba=np.ascontiguousarray(rgba.astype(np.float16)),
                         centre=outside.centre.detach().cpu().numpy().astype(np.float32),
                         half_extent=outside.half_extent.detach().cpu().numpy().astype(np.float32),
                         samples=int(outside.samples), density_shift=float(outside.density_shift),
                         density_scale=float(outside.density_scale))


@dataclass(frozen=True)
class VolumeArrays:
    rgba: np.ndarray         # [Z, Y, X, 4] colour + density: float16 raw, or uint8 (see the module doc)
    occupancy: np.ndarray    # [Z, Y, X] uint8 0 / 255
    groups: np.ndarray       # [Z, Y, X] uint8 group size S of samples whose nearest voxel this is
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
    space: str = "world"     # "ndc": bbox / step are in NDC (engine/field/grid.py), rays converted
    ndc_near: float = 1.0
    ndc_scale: tuple[float, float] = (1.0, 1.0)
    outside: OutsideArrays | None = None   # the unbounded kind's background grid

    @property
    def resolution(self) -> tuple[int, int, int]:
        """Z, Y, X voxel counts."""
        return tuple(int(r) for r in self.occupancy.shape)

    @property
    def encoded_u8(self) -> bool:
        """uint8 texels (sigmoid'ed colour, density over [raw_lo, raw_hi]); else float16 raw values."""
        return self.rgba.dtype == np.uint8


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
    lo = hi = 0.0
    if precision == "f16":
        rgba = torch.cat([color_raw, raw[..., None]], dim=-1).numpy().astype(np.float16)   # [Z, Y, X, 4]
    else:
        values = raw[occupancy] if bool(occupancy.any()) else raw.flatten()
        lo, hi = (float(q) for q in np.percentile(values.numpy(), [0.1, 100.0]))
        hi = max(hi, lo + 1e-3)
        density = ((raw - lo) / (hi - lo)).clamp(0.0, 1.0)                                 # [Z, Y, X]
        rgba = torch.cat([torch.sigmoid(color_raw), density[..., None]], dim=-1)          # [Z, Y, X, 4]
        rgba = (rgba * 255.0).round().numpy().astype(np.uint8)
    with torch.no_grad():
        sigma = F.softplus(raw + float(field.density_shift)) * float(field.density_scale)  # [Z, Y, X]
        alpha = 1.0 - torch.exp(-sigma * float(field.step_size))                           # [Z, Y, X]
    return VolumeArrays(
        rgba=np.ascontiguousarray(rgba), groups=group_sizes(alpha),
        occupancy=occupancy.numpy().astype(np.uint8) * 255, raw_lo=lo, raw_hi=hi,
        bbox=field.bbox.detach().cpu().numpy().astype(np.float32), step_size=float(field.step_size),
        density_shift=float(field.density_shift), density_scale=float(field.density_scale),
        near=float(field.near), far=float(field.far),
        background=field.background.detach().cpu().numpy().astype(np.float32),
        background_from_exit=bool(field.background_from_exit),
        space=field.space, ndc_near=float(field.ndc_near), ndc_scale=tuple(field.ndc_scale),
        outside=outside_arrays(getattr(field, "outside", None)))


def block_distance(occupancy: np.ndarray, block: int) -> np.ndarray:
    """uint8 [ceil(Z/b), ceil(Y/b), ceil(X/b)]: per block of b^3 voxels, the Chebyshev distance in
    blocks to the nearest block with an occupied voxel (0: it has one), capped at 255; all 255 when
    nothing is occupied. Reads occupancy [Z, Y, X] (nonzero = occupied)."""
    Z, Y, X = occupancy.shape
    pad = [(0, (-n) % block) for n in (Z, Y, X)]
    padded = np.pad(occupancy != 0, pad)                                   # [Zp, Yp, Xp]
    zb, yb, xb = (s // block for s in padded.shape)
    occupied = padded.reshape(zb, block, yb, block, xb, block).any(axis=(1, 3, 5))   # [Zb, Yb, Xb]
    if not occupied.any():
        return np.full(occupied.shape, 255, np.uint8)
    distance = distance_transform_cdt(~occupied, metric="chessboard")      # [Zb, Yb, Xb] int
    return np.minimum(distance, 255).astype(np.uint8)


def group_sizes(alpha: torch.Tensor, levels=GROUP_LEVELS) -> np.ndarray:
    """uint8 [Z, Y, X]: how many consecutive ray samples the shader may merge into one where this
    voxel is the nearest to the first of them: the largest S of `levels` whose alpha bound holds
    for every voxel within reach (S / 2 + 2 voxels: the group's extent plus trilinear support), else 1.

    A merged group of S samples takes the colour and density at its centre with alpha over S steps
    (the midpoint rule): pairs of half-voxel steps merge everywhere (the trilinear field barely
    changes within a voxel), and where every alpha is small larger groups barely change the image,
    so rays cross thin fog S times faster. Reads alpha [Z, Y, X] (one step, per voxel).
    """
    sizes = torch.ones(alpha.shape, dtype=torch.uint8)                     # [Z, Y, X]
    for size, bound in sorted(levels):
        reach = size // 2 + 2
        nearby = alpha[None, None].float()                                 # [1, 1, Z, Y, X]
        for axis in range(3):                                              # separable box maximum
            kernel = [1, 1, 1]
            kernel[axis] = 2 * reach + 1
            nearby = F.max_pool3d(nearby, kernel, stride=1, padding=[k // 2 for k in kernel])
        nearby = nearby[0, 0]                                              # [Z, Y, X]
        sizes[nearby < bound] = size
    return sizes.numpy()


def object_ids(votes: np.ndarray | None, resolution: tuple[int, ...], grow_voxels: int = 1) -> np.ndarray:
    """uint8 [Z, Y, X] (a splat scene's: [N]): the object whose vote is highest among positive ones
    (1-based), else 0, grown by `grow_voxels` into unlabelled neighbours (as the export's renders grow the mask), so
    "object removed" leaves no shell of the object's surface voxels behind.

    Reads votes [K, Z, Y, X] (None or K = 0: no objects); objects past MAX_OBJECTS are dropped. The
    work is done in the box around the positive votes, widened by grow_voxels + 1: its border voxels
    stay unlabelled, so the dilation there (reflecting at the box's edge) sees the zeros it would
    see in the whole grid, and the result is the whole grid's (the viewer calls this in a frame).
    """
    ids = np.zeros(resolution, dtype=np.uint8)
    if votes is None or len(votes) == 0:
        return ids
    votes = np.asarray(votes)[:MAX_OBJECTS]                                # [K, Z, Y, X]
    inside = (votes > 0).any(axis=0)                                        # [Z, Y, X]
    box = []
    for axis, n in enumerate(inside.shape):
        hit = np.flatnonzero(inside.any(axis=tuple(a for a in range(inside.ndim) if a != axis)))
        if not len(hit):
            return ids
        box.append(slice(max(int(hit[0]) - grow_voxels - 1, 0), min(int(hit[-1]) + grow_voxels + 2, n)))
    crop = votes[(slice(None), *box)]                                       # [K, z, y, x]
    best = crop.argmax(axis=0)                                              # [z, y, x]
    positive = np.take_along_axis(crop, best[None], axis=0)[0] > 0          # [z, y, x]
    sub = np.where(positive, best + 1, 0).astype(np.uint8)
    for _ in range(grow_voxels):
        grown = ndimage.grey_dilation(sub, size=(3, 3, 3))
        sub = np.where(sub == 0, grown, sub)                                # labelled voxels keep their id
    ids[tuple(box)] = sub
    return ids


def voxel_flags(occupancy: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """uint8 [Z, Y, X, 4]: occupancy (0 / 255), object id, group size and 0: the shader's per-voxel
    lookup. Reads occupancy, ids and groups, each uint8 [Z, Y, X]."""
    return np.ascontiguousarray(np.stack([occupancy, ids, groups, np.zeros_like(ids)], axis=-1).astype(np.uint8))


def tint_pixels(rgb: np.ndarray, ids: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """The overlay on the CPU, as the shader mixes it: rgb [H, W, 3] float in [0, 1], object ids
    [H, W] (0 = none, k = colors[k]) and colors [K + 1, 3] float in [0, 1] -> [H, W, 3]."""
    tinted = (1.0 - OVERLAY_TINT) * rgb + OVERLAY_TINT * colors[ids]
    return np.where(ids[..., None] > 0, tinted, rgb)
