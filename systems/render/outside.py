"""What the GL ray marcher needs from an unbounded field's background grid, as plain arrays (pure).

The grid goes up as float16 raw values, one RGBA texel per voxel (rgb = raw colour, a = raw density);
the shader applies the activations after interpolation, as torch does (engine/field/background.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class OutsideArrays:
    rgba: np.ndarray         # [R, R, R, 4] float16 raw colour + raw density, [Z, Y, X] order
    centre: np.ndarray       # [3] float32 world centre of the foreground box
    half_extent: np.ndarray  # [3] float32 world half size of the foreground box
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
