"""The voxel radiance field: a dense density grid and an RGB colour grid in an axis-aligned box.

Spaces. `space` "world": field-space points are world points. `space` "ndc" (forward-facing
scenes, world +Z = the mean viewing direction, cameras near z = 0): field-space points are the
normalised device coordinates of engine/math/rays.py with the buffers `ndc_near` n and
`ndc_scale` (a_x, a_y):  ndc(x, y, z) = (a_x x / z, a_y y / z, 1 - 2 n / z);  world z = n maps to
-1, infinity to +1. Rays are straight lines there. A camera ray o + t d becomes the NDC ray
o' + s d' of `ndc_rays` (origin moved to the plane z = n: o_n = o + t_n d, t_n = (n - o_z) / d_z;
o' = ndc(o_n); d' = (a_x (d_x/d_z - o_nx/n), a_y (d_y/d_z - o_ny/n), 2)); rays with d_z <= 0 see
nothing. `to_field(world)` / `to_world(field)` convert points (exports and meshes use them).

Layout. Tensors are [Z, Y, X] (grid_sample's [D, H, W]); field x runs along X. A field-space point
p maps to normalised grid coordinates c = 2 (p - bbox_min) / (bbox_max - bbox_min) - 1 in (x, y, z)
order (bbox is in field space), and the grids are sampled trilinearly with `grid_sample(...,
align_corners=True, padding_mode="border")`: voxel centres sit at the box corners and faces, spacing
(bbox_max - bbox_min) / (resolution - 1) per axis. `voxel_size` is the mean of the three spacings
(field-space units: world units, or NDC units).

Density. The activation, in field-space units (sigma per unit length: world or NDC), is

    sigma(raw) = softplus(raw + density_shift) * density_scale

with two constant buffers: density_scale = 1 / voxel_size at construction (kept when the grid
grows), density_shift chosen so that raw = 0 gives alpha = init_alpha over one step.
`density_values()` returns sigma [Z, Y, X]; interpolation happens on `raw` before the activation.

Ray marching (mirrored exactly by the GLSL ray marcher). Step `step_size` = step_voxels * voxel_size
field-space units (default step_voxels = 0.5). The ray is written in field space as o_f + u d_f:
world: o_f = o, d_f = d, u = t (d has camera z = 1, so t = camera depth), and u is clipped to
[u0, u1] = [max(near, u_enter), min(far, u_exit)] (near / far: the field's camera-depth range,
u_enter / u_exit: the box). NDC: o_f = o', d_f = d', u = s, clipped to [max(s(near), 0, s_enter),
min(s(far), s_exit)] with s(t) = 1 - n / (o_z + t d_z) (0 where o_z + t d_z <= n); the camera
depth of s is t = t_n + n s / ((1 - s) d_z). Samples at u_k = u0 + (k + 0.5) * step_size / |d_f| for
k = 0 .. floor((u1 - u0) |d_f| / step_size) - 1 (training jitters the 0.5). Each sample has
alpha_k = 1 - exp(-sigma(x_k) * step_size), transmittance
T_k = prod_{j<k} (1 - alpha_j), weight w_k = T_k alpha_k, colour sigmoid(color(x_k)).
Background: the remaining T_final = prod_k (1 - alpha_k) takes the constant `background` colour
(kind "box": scenes with a known backdrop), or the colour of the contracted background grid
`outside` marched from the box exit outward (kind "unbounded": captures that walk around an object;
engine/field/background.py), or, when `background_from_exit` (kind "ndc": forward-facing scenes),
the grid's colour at the exit point x(u1), which then counts as one more, fully opaque, sample of
weight T_final. Depth: sum_k w_k t_k + T_final t_bg, t_bg = t(u1) (= far where the ray misses the
box), or the background grid's expected depth.

Empty-space skipping. `occupancy` [Z, Y, X] bool marks voxels whose 3x3x3 neighbourhood has
alpha >= a threshold (and that some training camera sees); since the activation is monotone and
trilinear weights are convex, a sample whose nearest voxel is unoccupied has alpha below that
threshold and is skipped before any grid lookup.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from engine.math.rays import ndc_rays, ndc_to_world, world_to_ndc

if TYPE_CHECKING:
    from engine.field.background import BackgroundField


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)), as log1p(exp(-|x|)) + max(x, 0): the same bits whatever torch's thread
    count (F.softplus's vectorised and scalar paths round differently, and the threads split the
    array at different points), which replay's bit-exact check needs."""
    return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)


def grid_sample_points(grid: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of grid [1, C, Z, Y, X] at normalised coords [N, 3] (x, y, z) -> [N, C].

    On the CPU, grid_sample runs one thread per batch item, so the points are split over a batch
    of `torch.get_num_threads()` (expanded, not copied) grids: ~2x faster on 2 cores.
    """
    n = coords.shape[0]
    batch = 1 if grid.is_cuda or n < 4096 else max(1, min(torch.get_num_threads(), 8))
    pad = (-n) % batch
    if pad:
        coords = torch.cat([coords, coords[:pad]], dim=0)         # [N + pad, 3]
    pts = coords.reshape(batch, 1, 1, -1, 3)                       # [B, 1, 1, M, 3]
    out = F.grid_sample(grid.expand(batch, -1, -1, -1, -1), pts, mode="bilinear",
                        padding_mode="border", align_corners=True)  # [B, C, 1, 1, M]
    out = out.reshape(batch, grid.shape[1], -1).permute(0, 2, 1).reshape(-1, grid.shape[1])
    return out[:n]                                                 # [N, C]


def resolution_for(bbox, voxels: int, density=(1.0, 1.0, 1.0)) -> tuple[int, int, int]:
    """Resolution (Z, Y, X) with about voxels**3 voxels in bbox [2, 3] (x, y, z): nearly cubic, or
    with relative voxel counts per unit length `density` (x, y, z)."""
    extent = torch.as_tensor(bbox, dtype=torch.float64)
    extent = (extent[1] - extent[0]).clamp(min=1e-9) * torch.as_tensor(density, dtype=torch.float64)  # [3]
    side = (float(extent.prod()) / voxels ** 3) ** (1.0 / 3.0)
    x, y, z = (max(2, int(round(float(e) / side))) for e in extent)
    return z, y, x


class VoxelField(nn.Module):
    """Dense density + RGB grids in `bbox`; see the module docstring for every convention."""

    def __init__(self, bbox, resolution: tuple[int, int, int], *, init_alpha: float = 1e-2,
                 step_voxels: float = 0.5, background: tuple[float, float, float] | None = None,
                 near: float = 0.0, far: float = 1e10, space: str = "world",
                 ndc_near: float = 1.0, ndc_scale: tuple[float, float] = (1.0, 1.0),
                 outside: BackgroundField | None = None) -> None:
        super().__init__()
        if space not in ("world", "ndc"):
            raise ValueError(f"space '{space}' is not supported: 'world' or 'ndc'")
        if outside is not None and (space != "world" or background is not None):
            raise ValueError("a background grid needs space 'world' and no constant background")
        Z, Y, X = (int(r) for r in resolution)
        self.space = space
        self.ndc_near = float(ndc_near)                                  # NDC parameters (space "ndc")
        self.ndc_scale = (float(ndc_scale[0]), float(ndc_scale[1]))
        self.step_voxels = float(step_voxels)
        self.outside = outside                                           # contracted background grid
        self.background_from_exit = background is None and outside is None
        self.near, self.far = float(near), float(far)   # camera-depth range the field was trained on
        self.register_buffer("bbox", torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3).clone())
        self.register_buffer("background", torch.tensor(background or (0.0, 0.0, 0.0)))  # [3]
        self.density = nn.Parameter(torch.zeros(1, 1, Z, Y, X))   # [1, 1, Z, Y, X] raw
        self.color = nn.Parameter(torch.zeros(1, 3, Z, Y, X))     # [1, 3, Z, Y, X] raw (sigmoid)
        scale = 1.0 / self.voxel_size
        # softplus(shift) * scale * step = -log(1 - init_alpha)
        target = -math.log(1.0 - init_alpha) / (scale * self.step_size)
        self.register_buffer("density_scale", torch.tensor(scale))
        self.register_buffer("density_shift", torch.tensor(math.log(math.expm1(target))))
        self.register_buffer("occupancy", torch.ones(Z, Y, X, dtype=torch.bool))  # [Z, Y, X]

    # ---- geometry -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """"box" (constant backdrop), "unbounded" (background grid outside the box) or "ndc"."""
        if self.space == "ndc":
            return "ndc"
        return "unbounded" if self.outside is not None else "box"

    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(int(r) for r in self.density.shape[2:])

    @property
    def voxel_size(self) -> float:
        """Mean voxel spacing in field-space units."""
        extent = (self.bbox[1] - self.bbox[0]).detach().cpu().double()  # [3] x, y, z
        counts = torch.tensor(self.resolution[::-1], dtype=torch.float64) - 1  # [3] x, y, z
        return float((extent / counts).mean())

    @property
    def step_size(self) -> float:
        """Distance between ray samples in field-space units."""
        return self.step_voxels * self.voxel_size

    def to_grid_coords(self, points: torch.Tensor) -> torch.Tensor:
        """Field-space points [N, 3] -> normalised grid coords [N, 3] (x, y, z), box = [-1, 1]^3."""
        return (points - self.bbox[0]) / (self.bbox[1] - self.bbox[0]) * 2.0 - 1.0

    def to_field(self, world: torch.Tensor) -> torch.Tensor:
        """World points [M, 3] -> field-space points [M, 3] (identity in world space)."""
        if self.space == "ndc":
            return world_to_ndc(world, self.ndc_near, self.ndc_scale)
        return world

    def to_world(self, points: torch.Tensor) -> torch.Tensor:
        """Field-space points [M, 3] -> world points [M, 3] (NDC z must be < 1)."""
        if self.space == "ndc":
            return ndc_to_world(points, self.ndc_near, self.ndc_scale)
        return points

    def field_rays(self, origins: torch.Tensor, dirs: torch.Tensor, near: float, far: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Camera rays (world) [N, 3] each -> field-space rays o_f [N, 3], d_f [N, 3] and the
        parameter range u_lo [N], u_hi [N] allowed by the camera depths [near, far] (the box
        is not applied here); see "Ray marching" in the module docstring."""
        if self.space == "world":
            n = origins.shape[0]
            return (origins, dirs, torch.full((n,), near, device=origins.device),
                    torch.full((n,), far, device=origins.device))
        o_f, d_f = ndc_rays(origins, dirs, self.ndc_near, self.ndc_scale)
        z_near = origins[:, 2] + near * dirs[:, 2]                          # [N] world z at near
        z_far = origins[:, 2] + min(far, 1e30) * dirs[:, 2]                 # [N]
        n = self.ndc_near
        s_lo = torch.where(z_near > n, 1.0 - n / z_near, torch.zeros_like(z_near))
        s_hi = torch.where(z_far > n, 1.0 - n / z_far, torch.zeros_like(z_far))
        return o_f, d_f, s_lo, s_hi

    def camera_depth(self, u: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor,
                     ray_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Camera depth t [S] of field-ray parameters u [S] on rays origins / dirs [S, 3] (world), or
        on rays origins / dirs [N, 3] picked by ray_ids [S] (gathered only where needed: NDC)."""
        if self.space == "world":
            return u
        if ray_ids is not None:
            origins, dirs = origins[ray_ids], dirs[ray_ids]                  # [S, 3] each
        dz = dirs[:, 2].clamp(min=1e-9)                                    # [S]
        n = self.ndc_near
        t_n = (n - origins[:, 2]) / dz                                      # [S]
        return t_n + n * u / ((1.0 - u).clamp(min=1e-6) * dz)

    # ---- lookups --------------------------------------------------------------------------
    def activate(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw density -> sigma per field-space unit (the activation of the module docstring)."""
        return softplus(raw + self.density_shift) * self.density_scale

    def sample_density(self, coords: torch.Tensor) -> torch.Tensor:
        """sigma [N] at normalised coords [N, 3]."""
        return self.activate(grid_sample_points(self.density, coords)[:, 0])

    def sample_rgb(self, coords: torch.Tensor) -> torch.Tensor:
        """Colour [N, 3] in [0, 1] at normalised coords [N, 3]."""
        return torch.sigmoid(grid_sample_points(self.color, coords))

    def nearest_voxel(self, coords: torch.Tensor) -> torch.Tensor:
        """int64 [N]: flat index (z * Y + y) * X + x of the voxel nearest to each normalised coord [N, 3]."""
        Z, Y, X = self.resolution
        half = torch.tensor([(X - 1) / 2, (Y - 1) / 2, (Z - 1) / 2], device=coords.device)
        idx = torch.addcmul(half, coords, half).round_().long()           # [N, 3] x, y, z
        idx = torch.minimum(idx.clamp_(min=0), torch.tensor([X - 1, Y - 1, Z - 1], device=coords.device))
        return (idx[:, 2] * Y + idx[:, 1]) * X + idx[:, 0]                # [N]

    def occupied(self, coords: torch.Tensor) -> torch.Tensor:
        """bool [N]: the occupancy of the voxel nearest to each normalised coord [N, 3]."""
        return self.occupancy.reshape(-1)[self.nearest_voxel(coords)]

    @torch.no_grad()
    def density_values(self) -> torch.Tensor:
        """Activated density sigma [Z, Y, X] float32 (per field-space unit), detached."""
        return self.activate(self.density[0, 0]).float().clone()

    @torch.no_grad()
    def rgb_values(self) -> torch.Tensor:
        """Colour [Z, Y, X, 3] float32 in [0, 1], detached."""
        return torch.sigmoid(self.color[0]).permute(1, 2, 3, 0).float().contiguous()

    # ---- maintenance ----------------------------------------------------------------------
    @torch.no_grad()
    def update_occupancy(self, alpha_threshold: float = 1e-4, seen: torch.Tensor | None = None) -> float:
        """Recompute `occupancy` from the density (and an optional bool [Z, Y, X] seen mask).

        Returns the occupied fraction.
        """
        alpha = 1.0 - torch.exp(-self.density_values() * self.step_size)   # [Z, Y, X]
        dense = (alpha >= alpha_threshold).float()[None, None]
        occ = F.max_pool3d(dense, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        if seen is not None:
            occ &= seen
        self.occupancy = occ
        return float(occ.float().mean())

    @torch.no_grad()
    def upsample(self, resolution: tuple[int, int, int]) -> None:
        """Grow (or shrink) both grids to `resolution` by trilinear interpolation of the raw values.

        Replaces the parameters: rebuild any optimiser afterwards. Occupancy is reset to all-true.
        """
        size = tuple(int(r) for r in resolution)
        for name in ("density", "color"):
            old = getattr(self, name)
            new = F.interpolate(old.data, size=size, mode="trilinear", align_corners=True)
            setattr(self, name, nn.Parameter(new.contiguous()))
        self.occupancy = torch.ones(size, dtype=torch.bool, device=self.density.device)

    def total_variation(self, density_weight: float, color_weight: float) -> torch.Tensor:
        """Mean squared difference of neighbouring raw values (density and colour), weighted."""
        loss = self.density.new_zeros(())
        for grid, w in ((self.density, density_weight), (self.color, color_weight)):
            if w > 0:
                tv = sum(torch.diff(grid, dim=d).square().mean() for d in (2, 3, 4))
                loss = loss + w * tv
        return loss
