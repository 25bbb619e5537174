"""OpenGL contexts: a headless EGL context (tests, benchmarks, the display-less demo), and the
library preload every GL context of the app needs first (`preload_before_gl`)."""

from __future__ import annotations

import moderngl

from engine.errors import UserFacingError


class GLUnavailableError(UserFacingError):
    """No OpenGL 3.3 context could be created."""


def preload_before_gl() -> None:
    """Load triton's native library (its own LLVM) before any GL context loads Mesa's llvmpipe.

    Why: torch imports triton lazily (torch.optim's fused Adam, torch._dynamo, torch.compile). Once
    llvmpipe's LLVM is in the process, loading triton/_C/libtriton.so segfaults the interpreter
    (seen at triton/knobs.py with torch 2.14 and Mesa 22 / LLVM 15); loaded in the other order both
    work. `import triton` costs ~0.1 s (torch._dynamo, which imports it, ~1.2 s); nothing happens
    when triton is not installed (CPU-only torch builds). Every GL context is created through this
    package (headless_context, engine/platform/window.py Window), which calls this first.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def headless_context() -> moderngl.Context:
    """A standalone OpenGL 3.3+ context through EGL (no window, no display).

    Raises GLUnavailableError when EGL or a GL 3.3 driver is missing.
    """
    preload_before_gl()
    try:
        return moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as error:  # moderngl raises plain Exceptions for every driver failure
        raise GLUnavailableError(f"no headless OpenGL context ({error}): install Mesa's EGL "
                                 "(apt-get install libegl1 libgl1-mesa-dri) or run with a display") from None
