"""The GLFW window with a ModernGL context; its callbacks turn into InputEvents.

imgui_bundle is imported before glfw so that the pip glfw package loads the GLFW library bundled
with imgui_bundle (the one its C++ ImGui backend was built against).
"""

from __future__ import annotations

import glfw
import moderngl
from imgui_bundle import imgui  # noqa: F401  (must come before glfw: it selects the GLFW library)

from engine.platform.gl import GLUnavailableError, preload_before_gl
from engine.platform.input import InputEvent, KeyEvent, MouseButtonEvent, MouseMoveEvent, ScrollEvent

_KEY_NAMES = {getattr(glfw, n): n[4:] for n in dir(glfw) if n.startswith("KEY_") and n != "KEY_UNKNOWN"}
_BUTTONS = {glfw.MOUSE_BUTTON_LEFT: "left", glfw.MOUSE_BUTTON_RIGHT: "right", glfw.MOUSE_BUTTON_MIDDLE: "middle"}
_MODS = ((glfw.MOD_SHIFT, "shift"), (glfw.MOD_CONTROL, "ctrl"), (glfw.MOD_ALT, "alt"), (glfw.MOD_SUPER, "super"))


def _mods(bits: int) -> frozenset[str]:
    return frozenset(name for bit, name in _MODS if bits & bit)


class Window:
    """An OpenGL 3.3 core window. `poll()` returns the input events since the last call."""

    def __init__(self, title: str, W: int, H: int, *, visible: bool = True) -> None:
        preload_before_gl()        # before GLFW's context loads Mesa (see engine/platform/gl.py)
        if not glfw.init():
            raise GLUnavailableError("GLFW could not start: set DISPLAY to an X server (or run "
                                     "Xvfb :99 & export DISPLAY=:99), or unset DISPLAY for the headless demo")
        for hint, value in ((glfw.CONTEXT_VERSION_MAJOR, 3), (glfw.CONTEXT_VERSION_MINOR, 3),
                            (glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE),
                            (glfw.OPENGL_FORWARD_COMPAT, True), (glfw.VISIBLE, visible)):
            glfw.window_hint(hint, value)
        self.handle = glfw.create_window(W, H, title, None, None)
        if not self.handle:
            glfw.terminate()
            raise GLUnavailableError("no OpenGL 3.3 window could be created on this display: "
                                     "install Mesa (libgl1-mesa-dri) or unset DISPLAY for the headless demo")
        glfw.make_context_current(self.handle)
        glfw.swap_interval(0)
        self.ctx = moderngl.create_context(require=330)
        self._events: list[InputEvent] = []
        glfw.set_key_callback(self.handle, self._on_key)
        glfw.set_mouse_button_callback(self.handle, self._on_button)
        glfw.set_cursor_pos_callback(self.handle, self._on_cursor)
        glfw.set_scroll_callback(self.handle, self._on_scroll)

    # The callbacks are set before ImGui's backend installs its own, which chain to these.
    def _on_key(self, _window, key, _scancode, action, mods) -> None:
        if key in _KEY_NAMES and action in (glfw.PRESS, glfw.RELEASE):
            self._events.append(KeyEvent(_KEY_NAMES[key], action == glfw.PRESS, _mods(mods)))

    def _on_button(self, _window, button, action, mods) -> None:
        if button in _BUTTONS:
            self._events.append(MouseButtonEvent(_BUTTONS[button], action == glfw.PRESS, _mods(mods)))

    def _on_cursor(self, _window, x, y) -> None:
        self._events.append(MouseMoveEvent(float(x), float(y)))

    def _on_scroll(self, _window, _dx, dy) -> None:
        self._events.append(ScrollEvent(float(dy)))

    def poll(self, wait_s: float = 0.0) -> list[InputEvent]:
        """Process pending window events, first waiting up to wait_s seconds for one when there are
        none; returns the input events they produced, oldest first."""
        if wait_s > 0.0:
            glfw.wait_events_timeout(wait_s)
        else:
            glfw.poll_events()
        events, self._events = self._events, []
        return events

    @property
    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        """(W, H) of the drawable area in pixels."""
        return tuple(glfw.get_framebuffer_size(self.handle))

    def swap(self) -> None:
        glfw.swap_buffers(self.handle)

    def close(self) -> None:
        """Destroy the window and stop GLFW."""
        self.ctx.release()
        glfw.destroy_window(self.handle)
        glfw.terminate()
