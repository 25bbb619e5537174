"""Camera rays and ray-box intersection (torch only).

Convention: `T_world_camera` [4, 4] maps OpenCV camera coordinates (+X right, +Y down, +Z forward)
to world coordinates; K [3, 3] are pixel intrinsics; the centre of pixel (x, y) = (column, row) is
(x + 0.5, y + 0.5). Ray directions are NOT normalised: their camera-space z component is 1, so the
ray parameter t of a point o + t * d is its camera depth.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(array, device=None) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        array = torch.from_numpy(np.ascontiguousarray(array))
    return array.to(device=device, dtype=torch.float32)


def camera_rays(K, T_world_camera, H: int, W: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through the centres of all H x W pixels, row-major (index = row * W + column).

    Reads K [3, 3] and T_world_camera [4, 4] (numpy or torch). Returns float32 tensors
    origins [H*W, 3] and dirs [H*W, 3] with dirs = R @ K^-1 [x + .5, y + .5, 1].
    """
    K = _as_tensor(K, device)                                     # [3, 3]
    T = _as_tensor(T_world_camera, device)                        # [4, 4]
    ys, xs = torch.meshgrid(torch.arange(H, device=K.device, dtype=torch.float32) + 0.5,
                            torch.arange(W, device=K.device, dtype=torch.float32) + 0.5,
                            indexing="ij")                        # [H, W] each
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # [H*W, 3]
    dirs_cam = pixels @ torch.linalg.inv(K).T                     # [H*W, 3], z = 1
    dirs = dirs_cam @ T[:3, :3].T                                 # [H*W, 3]
    origins = T[:3, 3].expand_as(dirs).contiguous()               # [H*W, 3]
    return origins, dirs


def ray_box(origins: torch.Tensor, dirs: torch.Tensor, bbox: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab-method intersection of rays with an axis-aligned box.

    Reads origins [N, 3], dirs [N, 3], bbox [2, 3] (min, max). Returns t_enter [N], t_exit [N]
    (ray parameters; the ray misses the box where t_exit <= t_enter; t_enter may be negative when
    the origin is inside the box).
    """
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)  # [N, 3]
    t_a = (bbox[0] - origins) / safe                              # [N, 3]
    t_b = (bbox[1] - origins) / safe                              # [N, 3]
    t_enter = torch.minimum(t_a, t_b).amax(dim=-1)                # [N]
    t_exit = torch.maximum(t_a, t_b).amin(dim=-1)                 # [N]
    return t_enter, t_exit


# ---- normalised device coordinates (forward-facing scenes) ------------------------------------
# NDC of a world point p = (x, y, z) with z > 0 (world +Z = the mean viewing direction), for the
# parameters near n and scale (a_x, a_y):  ndc(p) = (a_x x / z, a_y y / z, 1 - 2 n / z).
# z = n maps to -1, z -> infinity to +1; the map is projective, so straight world rays stay straight.

def world_to_ndc(points: torch.Tensor, near: float, scale) -> torch.Tensor:
    """World points [M, 3] (z > 0) -> NDC points [M, 3] (formula above)."""
    z = points[:, 2]                                              # [M]
    return torch.stack([scale[0] * points[:, 0] / z, scale[1] * points[:, 1] / z,
                        1.0 - 2.0 * near / z], dim=-1)


def ndc_to_world(points: torch.Tensor, near: float, scale) -> torch.Tensor:
    """NDC points [M, 3] (z < 1) -> world points [M, 3]: the inverse of world_to_ndc."""
    z = 2.0 * near / (1.0 - points[:, 2])                         # [M]
    return torch.stack([points[:, 0] * z / scale[0], points[:, 1] * z / scale[1], z], dim=-1)


def ndc_rays(origins: torch.Tensor, dirs: torch.Tensor, near: float, scale
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """World rays o + t d [N, 3] each -> NDC rays o' + s d' [N, 3] each.

    The origin first moves along the ray to the plane z = near (o_n = o + t_n d, t_n = (near - o_z)
    / d_z), then o' = ndc(o_n) (so o'_z = -1) and
    d' = (a_x (d_x / d_z - o_nx / near), a_y (d_y / d_z - o_ny / near), 2): s in [0, 1) covers the
    ray from z = near to infinity, with world z = near / (1 - s). Rays need d_z > 0 (callers drop
    the others); d_z is clamped to 1e-9 here.
    """
    dz = dirs[:, 2].clamp(min=1e-9)                               # [N]
    t_n = (near - origins[:, 2]) / dz                             # [N]
    o_n = origins + t_n[:, None] * dirs                           # [N, 3], z = near
    o_ndc = torch.stack([scale[0] * o_n[:, 0] / near, scale[1] * o_n[:, 1] / near,
                         torch.full_like(dz, -1.0)], dim=-1)      # [N, 3]
    d_ndc = torch.stack([scale[0] * (dirs[:, 0] / dz - o_n[:, 0] / near),
                         scale[1] * (dirs[:, 1] / dz - o_n[:, 1] / near),
                         torch.full_like(dz, 2.0)], dim=-1)       # [N, 3]
    return o_ndc, d_ndc
