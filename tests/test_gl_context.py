"""GL contexts made by engine/platform/gl.py leave torch usable: a fused Adam step (which imports
triton) after an EGL context once segfaulted the interpreter."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gl

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import torch
from engine.platform.gl import GLUnavailableError, headless_context
try:
    ctx = headless_context()
except GLUnavailableError:
    raise SystemExit(3)
ctx.finish()
p = torch.zeros(8, requires_grad=True)                      # [8]
optimiser = torch.optim.Adam([p], lr=0.1, fused=True)
(p - 1.0).square().sum().backward()
optimiser.step()
assert float(p.detach()[0]) > 0.0
"""


def test_fused_adam_after_an_egl_context():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode == 3:
        pytest.skip("no EGL OpenGL context")
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
