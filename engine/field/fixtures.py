"""A small trained field of the built-in scene for tests and benchmarks, trained once and cached.

Training is deterministic: a fixed iteration budget (no time budget), seeded, on the CPU, so every
machine and every load level gives the same field (engine/field/cache.py stores it).
"""

from __future__ import annotations

from engine.field.cache import cached_field
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
