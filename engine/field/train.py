"""Training a VoxelField from a Scene's posed training views, within an iteration and/or time budget.

Progress p in [0, 1] is the larger of elapsed / max_seconds and iteration / max_iterations (either
budget may be absent; with no time budget, training is deterministic). Coarse to fine: the grids
start at `stage_scales[0]` of the target resolution and are upsampled when p reaches
`stage_starts`. Random batches of rays from all training views (their rays are computed once),
fused Adam, a learning rate decaying exponentially with p, total-variation and sparsity (mean
sample alpha) regularisers (TV added straight to the gradients, engine/field/regularizers.py),
and empty-space skipping: voxels that no training camera sees are
never occupied; every `prune_every` iterations, voxels whose samples never reached weight
`prune_weight` are emptied for good (their density lowered far below the occupancy threshold), and
after `occupancy_warmup` iterations the occupancy is refreshed from the density every
`occupancy_every` iterations. Scenes with a known background start thin (init alpha 1e-3).
The field kind follows the capture (`field_kind`): forward-facing scenes are modelled in NDC space,
scenes with a known constant backdrop in their box, and the rest (captures that walk around an
object) in their box plus a contracted background grid outside it, grown coarse to fine with the
box (see engine/field/grid.py and background.py). At the end the held-out views are rendered and
scored (PSNR).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.field.background import BackgroundField, inner_half_extent
from engine.field.grid import VoxelField, resolution_for
from engine.field.regularizers import add_total_variation_grad, distortion
from engine.field.render import render_training_rays, render_view
from engine.math.rays import camera_rays, world_to_ndc


@dataclass(frozen=True)
class TrainConfig:
    resolution: int = 160                 # final grid has about resolution**3 voxels
    stage_scales: tuple[float, ...] = (0.4, 0.8, 1.0)   # grid size of each stage / final
    stage_starts: tuple[float, ...] = (0.0, 0.12, 0.35)  # progress where a stage begins
    stage_min_iterations: int = 300       # ... but not before the previous stage ran this many
    batch_rays: int = 4096                # rays per iteration
    lr_start: float = 0.1                 # Adam learning rate at the start ...
    lr_end: float = 0.01                  # ... decaying exponentially to this at the end
    tv_density: float = 1e-3              # total-variation weight on the raw density
    tv_color: float = 1e-4                # total-variation weight on the raw colour
    tv_background_density: float = 1e-3  # the same on the background grid (unbounded kind)
    tv_background_color: float = 1e-4
    tv_every: int = 4                     # apply TV every n iterations (weights scaled by n)
    init_alpha: float | None = None       # alpha of one step at raw density 0 (None: 1e-3 with a
                                          # known background, else 1e-2)
    sparsity: float = 1e-3                # weight of the mean sample alpha (empties unconstrained space)
    occupancy_every: int = 16             # refresh the empty-space mask every n iterations
    occupancy_alpha: float = 1e-4         # voxels whose neighbourhood has a lower alpha are skipped
    occupancy_warmup: int = 50            # first refresh after this many iterations
    prune_every: int = 100                # every n iterations of a stage (from its n-th on), voxels ...
    prune_weight: float = 5e-3            # ... none of whose 3x3x3 neighbours' samples reached this
                                          # weight are emptied
    max_iterations: int | None = None     # iteration budget (None: the time budget alone)
    space: str = "auto"                   # field kind "box" | "ndc" | "unbounded" | "auto" (field_kind)
    background_resolution: int = 64       # final side of the unbounded kind's background grid
    background_samples: int = 32          # background samples per ray (unbounded kind)
    distortion: float = 0.0               # weight of the background bins' distortion loss (unbounded)
    compiled: bool = True                 # CPU: the compiled training march (engine/field/train_march.py)
    stop_transmittance: float = 0.0       # ... stops a ray once its transmittance is below this
    eval_views: int = 8                   # held-out views scored at the end (the first n)
    seed: int = 0


@dataclass
class TrainResult:
    field: VoxelField
    test_psnr: float | None       # mean over the scored held-out views; None without test views
    iterations: int
    seconds: float                # training loop only
    eval_seconds: float


Progress = Callable[[dict], None]


def train_field(scene, *, device: str = "cpu", max_seconds: float | None = 60.0,
                config: TrainConfig = TrainConfig(), progress: Progress | None = None) -> TrainResult:
    """Train a field of `scene` (engine.scenes.Scene) on `device` within the budgets.

    max_seconds None (or inf) with config.max_iterations: a deterministic, iteration-only schedule.
    `progress`, if given, is called every 10 iterations with a dict: iteration, loss, psnr (of the
    batch), elapsed, max_seconds, progress (p), resolution, occupied (fraction). Reads the scene
    only; returns a TrainResult. Raises ValueError when neither budget is given.
    """
    max_seconds = math.inf if max_seconds is None else float(max_seconds)
    if math.isinf(max_seconds) and config.max_iterations is None:
        raise ValueError("train_field needs max_seconds or config.max_iterations")
    torch.manual_seed(config.seed)
    rays = _training_rays(scene, device)                               # [R, 3] origins, dirs, colours
    field, final = make_field(scene, config)
    run = _Run(field=field.to(device))
    _begin_stage(run, scene, config)
    start, elapsed, fraction = time.perf_counter(), 0.0, 0.0
    while fraction < 1.0:
        if _stage_due(run, config, fraction):
            _grow(run, scene, config, final)
        _set_learning_rate(run.optimizer, config, fraction)
        loss, mse = _step(run, config, rays)
        if _due(run.iteration - run.stage_begin, run.iteration, config.prune_every, config.prune_every):
            _prune(run, config)
        if _due(run.iteration, run.iteration, config.occupancy_warmup, config.occupancy_every):
            _refresh_occupancy(run, config)
        elapsed = time.perf_counter() - start
        fraction = max(elapsed / max_seconds, run.iteration / (config.max_iterations or math.inf))
        if progress is not None and run.iteration % 10 == 0:
            progress({"iteration": run.iteration, "loss": float(loss.detach()), "psnr": _psnr(float(mse.detach())),
                      "elapsed": elapsed, "max_seconds": max_seconds, "progress": fraction,
                      "resolution": run.field.resolution, "occupied": run.occupied})
    run.field.update_occupancy(config.occupancy_alpha, run.seen)
    eval_start = time.perf_counter()
    test_psnr = evaluate_psnr(run.field, scene, scene.test_ids[:config.eval_views])
    return TrainResult(field=run.field, test_psnr=test_psnr, iterations=run.iteration, seconds=elapsed,
                       eval_seconds=time.perf_counter() - eval_start)


@dataclass
class _Run:
    """The state of one training run; a stage's parts are set by _begin_stage."""
    field: VoxelField
    stage: int = 0
    stage_begin: int = 0                  # iteration at which the current stage began
    iteration: int = 0
    seen: torch.Tensor | None = None      # [Z, Y, X] bool: voxels some training camera sees
    occupied: float = 1.0                 # occupied fraction at the last refresh
    optimizer: torch.optim.Adam | None = None
    max_weight: torch.Tensor | None = None  # [Z, Y, X] largest sample weight since the last prune
    dead: torch.Tensor | None = None      # [Z, Y, X] bool: voxels pruned in this stage


def _begin_stage(run: _Run, scene, config: TrainConfig) -> None:
    """Fit what a stage keeps to the field's current grids: the seen mask, the occupancy (no
    threshold before the warm-up), a fresh optimiser and empty pruning records."""
    field, device = run.field, run.field.density.device
    run.seen = _seen_mask(scene, field)
    threshold = config.occupancy_alpha if run.iteration >= config.occupancy_warmup else 0.0
    run.occupied = field.update_occupancy(threshold, run.seen)
    run.optimizer = _adam(field, config.lr_start)
    run.max_weight = torch.zeros(field.resolution, device=device)
    run.dead = torch.zeros(field.resolution, dtype=torch.bool, device=device)


def _stage_due(run: _Run, config: TrainConfig, fraction: float) -> bool:
    """Whether the next stage starts now: its progress is reached and this stage ran long enough."""
    following = run.stage + 1
    return (following < len(config.stage_scales) and fraction >= config.stage_starts[following]
            and run.iteration - run.stage_begin >= min(config.stage_min_iterations, _budget(config)))


def _grow(run: _Run, scene, config: TrainConfig, final: tuple[int, int, int]) -> None:
    """Start the next stage: upsample the grids (the background's too) and begin it afresh."""
    run.stage, run.stage_begin = run.stage + 1, run.iteration
    run.field.upsample(_stage_resolution(final, config.stage_scales[run.stage]))
    if run.field.outside is not None:
        run.field.outside.upsample(_background_resolution(config, run.stage))
    _begin_stage(run, scene, config)


def _set_learning_rate(optimizer: torch.optim.Adam, config: TrainConfig, fraction: float) -> None:
    """lr_start decaying exponentially to lr_end over the progress `fraction`."""
    lr = config.lr_start * (config.lr_end / config.lr_start) ** fraction
    for group in optimizer.param_groups:
        group["lr"] = lr


def _step(run: _Run, config: TrainConfig, rays) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a random batch of the training rays (origins, dirs, colours
    [R, 3]): photometric loss plus sparsity, TV every tv_every steps; records each voxel's largest
    sample weight for pruning. Returns the loss and the batch's MSE."""
    rays_o, rays_d, target = rays
    field = run.field
    idx = torch.randint(0, rays_o.shape[0], (config.batch_rays,), device=rays_o.device)
    out = render_training_rays(field, rays_o[idx], rays_d[idx], run.max_weight,
                               stop_transmittance=config.stop_transmittance, compiled=config.compiled)
    mse = F.mse_loss(out.rgb, target[idx])
    loss = mse + config.sparsity * out.alpha_mean
    if config.distortion and out.background_weights is not None:
        loss = loss + config.distortion * distortion(out.background_weights).mean()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.tv_every and run.iteration % config.tv_every == 0:
        _add_total_variation(field, config)
    run.optimizer.step()
    run.iteration += 1
    return loss, mse


def _due(since: int, iteration: int, first: int, every: int) -> bool:
    """Whether a periodic task runs now: `since` has reached `first` and `iteration` is a multiple
    of `every` (0: never)."""
    return bool(every) and since >= first and iteration % every == 0


def _prune(run: _Run, config: TrainConfig) -> None:
    """Mark dead the seen voxels none of whose 3x3x3 neighbours' samples reached prune_weight since
    the last prune."""
    reached = F.max_pool3d(run.max_weight[None, None], 3, stride=1, padding=1)[0, 0]  # [Z, Y, X]
    run.dead |= (reached < config.prune_weight) & run.seen
    run.max_weight.zero_()


def _refresh_occupancy(run: _Run, config: TrainConfig) -> None:
    """Empty the dead voxels for good, then recompute the occupancy from the density."""
    _empty(run.field, run.dead, config.occupancy_alpha)
    run.occupied = run.field.update_occupancy(config.occupancy_alpha, run.seen)


FIELD_KINDS = ("box", "ndc", "unbounded")


def field_kind(scene, requested: str = "auto") -> str:
    """The field kind for `scene`: `requested` unless "auto"; else "ndc" for forward-facing
    captures, "box" for scenes with a known constant backdrop (synthetic), "unbounded" otherwise
    (captures that walk around an object: the box holds it, a background grid the rest)."""
    if requested != "auto":
        if requested not in FIELD_KINDS:
            raise ValueError(f"field kind '{requested}' is not one of {', '.join(FIELD_KINDS)}, auto")
        return requested
    if scene.forward_facing:
        return "ndc"
    return "box" if scene.background is not None else "unbounded"


def make_field(scene, config: TrainConfig = TrainConfig()) -> tuple[VoxelField, tuple[int, int, int]]:
    """An untrained field of `scene` at the first stage's resolution, and the final resolution.

    Kinds (field_kind): "box": the scene's bbox and its backdrop (the exit colour when it has none).
    "unbounded": the scene's bbox from the camera depth scene.near on, and a background grid
    outside it, linear up to the cube that holds the training cameras and contracted beyond.
    "ndc": near plane n = scene.near, scale (2 f_x / W, 2 f_y / H) of the first view,
    far = unlimited, and the NDC box around every training camera's frustum from z = n to 2 x
    scene.far.
    """
    kind = field_kind(scene, config.space)
    init_alpha = config.init_alpha
    if init_alpha is None:
        init_alpha = 1e-3 if scene.background is not None and kind != "unbounded" else 1e-2
    if kind in ("box", "unbounded"):
        final = resolution_for(scene.bbox, config.resolution)
        first = _stage_resolution(final, config.stage_scales[0])
        if kind == "box":
            return VoxelField(scene.bbox, first, init_alpha=init_alpha, background=scene.background,
                              near=scene.near, far=scene.far), final
        cameras = scene.T_world_camera[list(scene.train_ids), :3, 3]
        outside = BackgroundField(scene.bbox, _background_resolution(config, 0),
                                  samples=config.background_samples, init_alpha=init_alpha,
                                  half_extent=inner_half_extent(scene.bbox, cameras))
        return VoxelField(scene.bbox, first, init_alpha=init_alpha, near=scene.near, far=1e10,
                          outside=outside), final
    K = scene.K[scene.train_ids[0]]
    scale = (2.0 * float(K[0, 0]) / scene.W, 2.0 * float(K[1, 1]) / scene.H)
    bbox = _ndc_box(scene, scene.near, scale, 2.0 * scene.far)                # [2, 3]
    final = resolution_for(bbox, config.resolution, (1.0, scene.H / scene.W, 0.5))
    return VoxelField(bbox, _stage_resolution(final, config.stage_scales[0]), init_alpha=init_alpha,
                      background=scene.background, near=0.0, far=1e10, space="ndc",
                      ndc_near=scene.near, ndc_scale=scale), final


def _ndc_box(scene, near: float, scale, far: float) -> torch.Tensor:
    """[2, 3] NDC box around the training cameras' frustums between world z = near and z = far."""
    corners = torch.tensor([[x, y, 1.0] for x in (0, scene.W) for y in (0, scene.H)])   # [4, 3]
    ends = []
    for i in scene.train_ids:
        K = torch.as_tensor(scene.K[i], dtype=torch.float32)
        T = torch.as_tensor(scene.T_world_camera[i], dtype=torch.float32)
        dirs = corners @ torch.linalg.inv(K).T @ T[:3, :3].T                 # [4, 3]
        origins = T[:3, 3].expand_as(dirs)                                   # [4, 3]
        for z in (near, far):
            t = (z - origins[:, 2]) / dirs[:, 2]                             # [4]
            ends.append(origins + t[:, None] * dirs)                         # [4, 3] world
    points = world_to_ndc(torch.cat(ends), near, scale)                      # [8 V, 3]
    return torch.stack([points.amin(0), points.amax(0)])


def evaluate_psnr(field: VoxelField, scene, view_ids) -> float | None:
    """Mean PSNR (dB) of the field's renders of scene views `view_ids`; None if there are none."""
    scores = []
    for i in view_ids:
        view = render_view(field, scene.K[i], scene.T_world_camera[i], scene.H, scene.W)
        truth = torch.from_numpy(scene.images[i]).to(view.rgb.device).float() / 255.0  # [H, W, 3]
        scores.append(_psnr(float(F.mse_loss(view.rgb, truth))))
    return sum(scores) / len(scores) if scores else None


@torch.no_grad()
def _empty(field: VoxelField, dead: torch.Tensor, occupancy_alpha: float) -> None:
    """Lower the raw density of the `dead` [Z, Y, X] voxels to alpha = occupancy_alpha / 100 at most."""
    if bool(dead.any()):
        sigma = -math.log(1.0 - occupancy_alpha / 100.0) / field.step_size
        raw = math.log(math.expm1(sigma / float(field.density_scale))) - float(field.density_shift)
        density = field.density.data[0, 0]                               # [Z, Y, X]
        density[dead] = density[dead].clamp(max=raw)


def _add_total_variation(field: VoxelField, config: TrainConfig) -> None:
    """Add the TV gradients of both grids (and the background's), weighted x tv_every."""
    n = config.tv_every
    add_total_variation_grad(field.density, config.tv_density * n)
    add_total_variation_grad(field.color, config.tv_color * n)
    if field.outside is not None:
        add_total_variation_grad(field.outside.grid, config.tv_background_density * n, slice(0, 1))
        add_total_variation_grad(field.outside.grid, config.tv_background_color * n, slice(1, 4))


def _budget(config: TrainConfig) -> int:
    """Minimum iterations of a stage: stage_min_iterations, shrunk to fit max_iterations."""
    if config.max_iterations is None:
        return config.stage_min_iterations
    return config.max_iterations // (2 * len(config.stage_scales))


def _psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-10))


def _background_resolution(config: TrainConfig, stage: int) -> int:
    """Side of the background grid in `stage`: its final side times the stage's scale."""
    return max(4, int(round(config.background_resolution * config.stage_scales[stage])))


def _stage_resolution(final: tuple[int, int, int], scale: float) -> tuple[int, int, int]:
    return tuple(max(2, int(round(r * scale))) for r in final)


def _adam(field: VoxelField, lr: float) -> torch.optim.Adam:
    fused = field.density.device.type in ("cpu", "cuda")
    params = [field.density, field.color] + ([field.outside.grid] if field.outside is not None else [])
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99), eps=1e-15, fused=fused)


def _training_rays(scene, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All rays of the training views: origins [R, 3], dirs [R, 3], colours [R, 3] in [0, 1]."""
    origins, dirs, colors = [], [], []
    for i in scene.train_ids:
        o, d = camera_rays(scene.K[i], scene.T_world_camera[i], scene.H, scene.W, device=device)
        origins.append(o)
        dirs.append(d)
        colors.append(torch.from_numpy(scene.images[i]).to(device).reshape(-1, 3).float() / 255.0)
    return torch.cat(origins), torch.cat(dirs), torch.cat(colors)


@torch.no_grad()
def _seen_mask(scene, field: VoxelField) -> torch.Tensor:
    """bool [Z, Y, X]: voxels near (one coarse cell) the view frustum of some training camera."""
    full = field.resolution
    Z, Y, X = (min(r, 48) for r in full)      # computed on a coarse grid, then upsampled
    device = field.density.device
    axes = [torch.linspace(float(field.bbox[0, a]), float(field.bbox[1, a]), n, device=device)
            for a, n in ((2, Z), (1, Y), (0, X))]
    zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
    points = field.to_world(torch.stack([xx, yy, zz], dim=-1).reshape(-1, 3))  # [Z*Y*X, 3] world
    seen = torch.zeros(points.shape[0], dtype=torch.bool, device=device)
    for i in scene.train_ids:
        T = torch.as_tensor(scene.T_world_camera[i], dtype=torch.float32, device=device)
        K = torch.as_tensor(scene.K[i], dtype=torch.float32, device=device)
        cam = (points - T[:3, 3]) @ T[:3, :3]                         # [P, 3] camera coords
        z = cam[:, 2]
        pix = cam @ K.T                                               # [P, 3]
        x, y = pix[:, 0] / z.clamp(min=1e-6), pix[:, 1] / z.clamp(min=1e-6)
        seen |= (z > scene.near) & (z < field.far) & (x >= 0) & (x <= scene.W) & (y >= 0) & (y <= scene.H)
    seen = F.max_pool3d(seen.reshape(1, 1, Z, Y, X).float(), kernel_size=3, stride=1, padding=1)
    return F.interpolate(seen, size=full, mode="nearest")[0, 0] > 0
