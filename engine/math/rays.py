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
