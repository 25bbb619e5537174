"""A trained field of the built-in scene for other tests, trained once and cached on disk.

Training is deterministic: a fixed iteration budget (no time budget), seeded, on the CPU, so every
machine and every load level gives the same field. Cache: `$SA3D_CACHE/fields/` (default
`~/.cache/sa3d/fields/`), one checkpoint per (size, iterations, resolution, scene hash, SCHEDULE),
written atomically so parallel test runs are safe.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.field.checkpoint import FieldCheckpointError, load_field, save_field
from engine.field.grid import VoxelField
from engine.field.train import TrainConfig, train_field

SCHEDULE = "s4"   # bump when the training recipe changes, so stale cached fields are not reused


def fixture_config(iterations: int, resolution: int) -> TrainConfig:
    """The training recipe of the fixture: the default one, compressed into `iterations`."""
    return TrainConfig(resolution=resolution, max_iterations=iterations, batch_rays=2048,
                       stage_min_iterations=iterations // 8, eval_views=2, init_alpha=1e-2)


def trained_builtin_field(size: int = 64, iterations: int = 400, resolution: int = 64):
    """(scene, field): the built-in scene at size x size pixels and a field trained for `iterations`
    on the CPU at about resolution**3 voxels; loaded from the cache when it is there."""
    from engine.scenes.builtin import builtin_scene

    scene = builtin_scene(size)
    root = Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d") / "fields"
    path = root / f"builtin-{size}-{iterations}it-{resolution}-{SCHEDULE}-{scene.content_hash()}.pt"
    try:
        return scene, load_field(path, scene_hash=scene.content_hash())
    except FieldCheckpointError:
        pass
    result = train_field(scene, max_seconds=None, config=fixture_config(iterations, resolution))
    field: VoxelField = result.field
    save_field(path, field, scene_hash=scene.content_hash(), meta={"test_psnr": result.test_psnr})
    return scene, field
