"""Trained fields cached on disk: a scene's default field is trained once, then loaded.

Cache: `$SA3D_CACHE/fields/` (default `~/.cache/sa3d/fields/`), one checkpoint per scene hash,
training recipe and budget, written atomically (parallel runs are safe). The built-in scene's
default field trains for a fixed number of iterations, so every machine and load level gets the
same field, and `view`, `segment`, `export` and `replay` agree on it (same file, same hash).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.field.checkpoint import FieldCheckpointError, load_field, save_field
from engine.field.grid import VoxelField
from engine.field.train import Progress, TrainConfig, train_field

RECIPE = "r5"                  # bump when the training recipe changes: stale cached fields are not reused
BUILTIN_ITERATIONS = 2000      # the built-in scene's default field: about 5 minutes on 2 CPU cores (sharp
                               # silhouettes: bench/bench_sa3d.py needs them for its 95 mIoU)
BUILTIN_RESOLUTION = 128


def cache_dir() -> Path:
    """Folder of the cached fields."""
    return Path(os.environ.get("SA3D_CACHE") or Path.home() / ".cache" / "sa3d") / "fields"


def cached_field(scene, *, config: TrainConfig, seconds: float | None, tag: str, device: str = "cpu",
                 progress: Progress | None = None) -> tuple[VoxelField, Path]:
    """(field, checkpoint path): the cached field of `scene` for this recipe `tag`, or one trained
    now with `config` within `seconds` (None: config.max_iterations alone) and cached."""
    path = cache_dir() / f"{scene.name}-{tag}-{RECIPE}-{scene.content_hash()}.pt"
    try:
        return load_field(path, scene_hash=scene.content_hash(), device=device), path
    except FieldCheckpointError:
        pass
    result = train_field(scene, device=device, max_seconds=seconds, config=config, progress=progress)
    save_field(path, result.field, scene_hash=scene.content_hash(),
               meta={"test_psnr": result.test_psnr, "iterations": result.iterations})
    return result.field, path


def default_field(scene, *, device: str = "cpu", seconds: float = 120.0,
                  progress: Progress | None = None) -> tuple[VoxelField, Path]:
    """The field a command uses when none is given: for the built-in scene the deterministic
    BUILTIN_ITERATIONS recipe, for other scenes the default recipe trained for `seconds`."""
    if scene.kind == "builtin":
        config = TrainConfig(resolution=BUILTIN_RESOLUTION, max_iterations=BUILTIN_ITERATIONS)
        return cached_field(scene, config=config, seconds=None, device=device, progress=progress,
                            tag=f"{BUILTIN_ITERATIONS}it-{BUILTIN_RESOLUTION}")
    return cached_field(scene, config=TrainConfig(), seconds=seconds, device=device, progress=progress,
                        tag=f"{seconds:g}s")

