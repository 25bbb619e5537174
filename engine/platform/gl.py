"""OpenGL contexts: a headless EGL context (tests, benchmarks, the display-less demo)."""

from __future__ import annotations

import moderngl

from engine.errors import UserFacingError


class GLUnavailableError(UserFacingError):
    """No OpenGL 3.3 context could be created."""


def headless_context() -> moderngl.Context:
    """A standalone OpenGL 3.3+ context through EGL (no window, no display).

    Raises GLUnavailableError when EGL or a GL 3.3 driver is missing.
    """
    try:
        return moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as error:  # moderngl raises plain Exceptions for every driver failure
        raise GLUnavailableError(f"no headless OpenGL context ({error}): install Mesa's EGL "
                                 "(apt-get install libegl1 libgl1-mesa-dri) or run with a display") from None
