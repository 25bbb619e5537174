"""Fields of the built-in scene for tests and benchmarks: a small trained one (trained once and
cached) and an exact-geometry one.

Training is deterministic: a fixed iteration budget (no time budget), seeded, on the CPU, so every
machine and every load level gives the same field (engine/field/cache.py stores it).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.field.cache import cached_field
from engine.field.grid import VoxelField, resolution_for
from engine.field.train import TrainConfig


def fixture_config(iterations: int, resolution: int) -> TrainConfig:
    """The training recipe of the fixture: the default one, compressed into `iterations`."""
    return TrainConfig(resolution=resolution, max_iterations=iterations, batch_rays=2048,
                       stage_min_iterations=iterations // 8, eval_views=2, init_alpha=1e-2)


def trained_builtin_field(size: int = 64, iterations: int = 400, resolution: int = 64):
    """(scene, field): the built-in scene at size x size pixels and a field trained for `iterations`
    on the CPU at about resolution**3 voxels; loaded from the cache when it is there."""
    from engine.scenes.builtin import builtin_scene

    scene = builtin_scene(size)
    field, _ = cached_field(scene, config=fixture_config(iterations, resolution), seconds=None,
                            tag=f"fixture-{iterations}it-{resolution}")
    return scene, field


def exact_builtin_field(scene, truth, voxels: int) -> VoxelField:
    """A field of the built-in scene that is opaque exactly inside the objects and the ground, in
    their albedo (the ground grey), with clear space elsewhere (no training): measures SA3D and the
    viewer apart from the radiance field's quality. `truth` is builtin_truth()."""
    res = resolution_for(scene.bbox, voxels)
    occupied = np.zeros(res, bool)
    color = torch.zeros(3, *res)                                                       # [3, Z, Y, X] raw
    occupied[np.linspace(scene.bbox[0, 2], scene.bbox[1, 2], res[0]) <= 0.0] = True   # the ground
    color[:, torch.from_numpy(occupied)] = 0.5
    for k in range(1, len(truth.object_names) + 1):
        inside = truth.voxel_truth(k, scene.bbox, res)
        occupied |= inside
        rgb = torch.tensor(truth.colors[k - 1] / 255.0, dtype=torch.float32).clamp(0.02, 0.98)
        color[:, torch.from_numpy(inside)] = torch.logit(rgb)[:, None]
    field = VoxelField(scene.bbox, res, background=scene.background, near=scene.near, far=scene.far)
    with torch.no_grad():
        field.density.fill_(-30.0)
        field.density[0, 0][torch.from_numpy(occupied)] = 30.0
        field.color.copy_(color[None])
    field.update_occupancy()
    return field
