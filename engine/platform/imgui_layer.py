"""Dear ImGui over the window's ModernGL context, through imgui_bundle's C++ GLFW / OpenGL3
backends (no PyOpenGL). Widgets are built by systems/ui between begin_frame and end_frame."""

from __future__ import annotations

import ctypes

from imgui_bundle import imgui

from engine.platform.window import Window


class ImGuiLayer:
    def __init__(self, window: Window) -> None:
        self.context = imgui.create_context()
        io = imgui.get_io()
        io.set_ini_filename("")                      # no imgui.ini beside the user's files
        imgui.style_colors_dark()
        address = ctypes.cast(window.handle, ctypes.c_void_p).value
        imgui.backends.glfw_init_for_opengl(address, True)   # chains to the window's callbacks
        imgui.backends.opengl3_init("#version 330")

    def begin_frame(self) -> None:
        imgui.backends.opengl3_new_frame()
        imgui.backends.glfw_new_frame()
        imgui.new_frame()

    def end_frame(self) -> None:
        """Finish the widgets and draw them over the bound (default) framebuffer."""
        imgui.render()
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())

    @property
    def want_mouse(self) -> bool:
        return bool(imgui.get_io().want_capture_mouse)

    @property
    def want_keyboard(self) -> bool:
        return bool(imgui.get_io().want_capture_keyboard)

    def close(self) -> None:
        imgui.backends.opengl3_shutdown()
        imgui.backends.glfw_shutdown()
        imgui.destroy_context(self.context)
