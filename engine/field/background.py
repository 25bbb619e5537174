"""The background of unbounded scenes: a coarse grid in contracted space outside the foreground box.

Contraction (mip-NeRF 360's, with the L-infinity norm as in DVGO's "unbounded_inward"). The inner
region is a cube around the foreground box's centre that holds the box and every camera
(`inner_half_extent`); a world point x has inner coordinates p = (x - centre) / half_extent, so the
inner cube is [-1, 1]^3; outside it

    c(p) = (2 - 1 / |p|_inf) p / |p|_inf          (|p|_inf > 1; c(p) = p inside the inner cube)

maps all of space beyond the inner cube into the shell 1 < |c|_inf < 2. The space between the
object and the cameras (the table, the stand, the floor around them) is modelled linearly, at half
the grid's resolution; only what lies beyond the cameras is contracted, where every camera sees it
from inside, at nearly the same direction. (Contracting from the foreground box itself would squeeze
the cameras' surroundings into a few voxels, which each view then fits on its own.) The grid
[1, 4, R, R, R] (raw density, raw colour) covers [-2, 2]^3 with grid_sample's align_corners=True
convention: a contracted point c is sampled at normalised coords c / 2 (the foreground box inside it
is never sampled).

Marching (mirrored by assets/shaders/raymarch.frag.glsl). A ray o + t d (camera z of d = 1, so t is
camera depth) enters the background at t_s: where it leaves the foreground box, or, when it misses
the box, at its point closest to the box centre (never before `near`). From there `samples` = N bins
uniform in disparity: bin edges t_j = t_s / (1 - j / N), j = 0 .. N (t_N = infinity, |c| = 2), and
the sample of bin j at t_s / (1 - (j + offset) / N) (offset 0.5, drawn uniformly in training). Each
sample has alpha_j = 1 - exp(-sigma_j * delta_j) with delta_j = |c(t_{j+1}) - c(t_j)| (Euclidean,
contracted units) and sigma = softplus(raw + shift) * scale (scale = 1 / contracted voxel spacing,
shift: raw 0 gives alpha `init_alpha` over one voxel), except the last, whose alpha is 1: whatever
passes the background takes the colour at its outer edge, so a ray's background weights sum to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.field.grid import grid_sample_points, softplus

EDGE_CAP = 1.0 - 1e-6      # bin-edge fraction standing for infinity (t = 1e6 t_s, |c| = 2 - 1e-6 |p_s|^-1)


@dataclass(slots=True)
class BackgroundResult:
    rgb: torch.Tensor       # [N, 3] composited background colour (weights sum to 1 per ray)
    depth: torch.Tensor     # [N] expected camera depth of the background
    t_start: torch.Tensor   # [N] where the background begins on each ray
    weights: torch.Tensor   # [N, samples] the bins' compositing weights (training: distortion)


def contract(points: torch.Tensor) -> torch.Tensor:
    """Box coordinates [M, 3] -> contracted coordinates [M, 3] in [-2, 2]^3 (formula above)."""
    norm = points.abs().amax(dim=-1, keepdim=True).clamp(min=1e-9)       # [M, 1]
    outside = (2.0 - 1.0 / norm) * points / norm                          # [M, 3]
    return torch.where(norm > 1.0, outside, points)


def background_start(origins: torch.Tensor, dirs: torch.Tensor, centre: torch.Tensor,
                     t_exit: torch.Tensor, hit: torch.Tensor, near: float) -> torch.Tensor:
    """t_s [N]: the box exit t_exit [N] where hit [N], else the ray's point closest to `centre` [3];
    never before `near`."""
    closest = ((centre - origins) * dirs).sum(-1) / dirs.square().sum(-1).clamp(min=1e-12)  # [N]
    return torch.where(hit, t_exit, closest).clamp(min=near)


def inner_half_extent(bbox, camera_positions) -> float:
    """Half size of the inner cube around the centre of bbox [2, 3] that holds the box and every
    camera position [N, 3] (world)."""
    box = torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3)
    centre = (box[0] + box[1]) / 2
    positions = torch.as_tensor(camera_positions, dtype=torch.float32).reshape(-1, 3)
    reach = (positions - centre).abs().amax() if positions.numel() else torch.zeros(())
    return float(torch.maximum(reach, ((box[1] - box[0]) / 2).amax()))


class BackgroundField(nn.Module):
    """The contracted background grid of one foreground box; see the module docstring.

    `half_extent`: the inner cube's half size (inner_half_extent); None: the box's own half
    extents (the box is the inner region)."""

    def __init__(self, bbox, resolution: int, *, samples: int = 32, init_alpha: float = 1e-2,
                 half_extent: float | None = None) -> None:
        super().__init__()
        box = torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3)
        self.samples = int(samples)
        half = (box[1] - box[0]) / 2 if half_extent is None else torch.full((3,), float(half_extent))
        self.register_buffer("centre", (box[0] + box[1]) / 2)             # [3] world
        self.register_buffer("half_extent", half)                        # [3] world, inner region
        R = int(resolution)
        self.grid = nn.Parameter(torch.zeros(1, 4, R, R, R))              # [1, 4, R, R, R] raw
        # softplus(shift) * scale * spacing = -log(1 - init_alpha), spacing = 1 / scale
        self.register_buffer("density_scale", torch.tensor((R - 1) / 4.0))
        self.register_buffer("density_shift", torch.tensor(math.log(math.expm1(-math.log(1.0 - init_alpha)))))

    @property
    def resolution(self) -> int:
        return int(self.grid.shape[-1])

    def activate(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw density -> sigma per contracted unit."""
        return softplus(raw + self.density_shift) * self.density_scale

    def render(self, origins: torch.Tensor, dirs: torch.Tensor, t_start: torch.Tensor, *,
               jitter: bool = False) -> BackgroundResult:
        """Composite the background of rays origins [N, 3], dirs [N, 3] from t_start [N] on."""
        n, N = origins.shape[0], self.samples
        device = origins.device
        o_b = (origins - self.centre) / self.half_extent                  # [N, 3] inner coords
        d_b = dirs / self.half_extent                                     # [N, 3]
        j = torch.arange(N + 1, device=device, dtype=torch.float32)       # [N + 1]
        edge_t = t_start[:, None] / (1.0 - (j / N).clamp(max=EDGE_CAP))  # [n, N + 1]
        edges = contract(o_b[:, None] + edge_t[..., None] * d_b[:, None])  # [n, N + 1, 3]
        delta = (edges[:, 1:] - edges[:, :-1]).norm(dim=-1)               # [n, N]
        offset = torch.rand(n, N, device=device) if jitter else torch.full((n, N), 0.5, device=device)
        t = t_start[:, None] / (1.0 - ((j[:-1] + offset) / N).clamp(max=EDGE_CAP))  # [n, N]
        points = contract(o_b[:, None] + t[..., None] * d_b[:, None])     # [n, N, 3]
        values = grid_sample_points(self.grid, points.reshape(-1, 3) / 2.0).reshape(n, N, 4)
        alpha = 1.0 - torch.exp(-self.activate(values[..., 0]) * delta)   # [n, N]
        alpha = torch.cat([alpha[:, :-1], torch.ones_like(alpha[:, -1:])], dim=1)
        keep = torch.cumprod(1.0 - alpha[:, :-1], dim=1)                  # [n, N - 1]
        transmittance = torch.cat([torch.ones_like(alpha[:, :1]), keep], dim=1)  # [n, N]
        weights = transmittance * alpha                                   # [n, N]
        rgb = (weights[..., None] * torch.sigmoid(values[..., 1:])).sum(1)  # [n, 3]
        return BackgroundResult(rgb=rgb, depth=(weights * t).sum(1), t_start=t_start, weights=weights)

    @torch.no_grad()
    def upsample(self, resolution: int) -> None:
        """Resize the grid to resolution^3 (trilinear on raw values); rebuild any optimiser after."""
        R = int(resolution)
        new = F.interpolate(self.grid.data, size=(R, R, R), mode="trilinear", align_corners=True)
        self.grid = nn.Parameter(new.contiguous())
