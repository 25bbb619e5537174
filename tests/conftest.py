"""Test-wide settings: must run before torch is imported by any test module."""

import os

# A spinning OpenMP pool makes torch 40-70x slower when another process (llvmpipe, a second
# test worker) shares the two cores; the viewer and the benchmarks set the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def field_file(tmp_path_factory):
    """The built-in scene's 64 px fixture field saved as a checkpoint, for the CLI's tests."""
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import trained_builtin_field

    scene, field = trained_builtin_field(64)
    path = tmp_path_factory.mktemp("field") / "field.pt"
    save_field(path, field, scene_hash=scene.content_hash())
    return path
