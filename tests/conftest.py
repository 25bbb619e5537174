"""Test-wide settings: must run before torch is imported by any test module."""

import os
import shutil
import subprocess
import time

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


@pytest.fixture
def xvfb(request, monkeypatch):
    """An Xvfb display for a real GLFW window, its screen the test module's XVFB_SCREEN (WxHxDepth);
    skips where Xvfb is not installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    screen = getattr(request.module, "XVFB_SCREEN", "640x480x24")
    display = f":{80 + os.getpid() % 19}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", screen, "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    monkeypatch.setenv("DISPLAY", display)
    yield display
    server.terminate()
    server.wait(timeout=10)
