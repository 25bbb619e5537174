"""Run the viewer: in a window (GLFW + ImGui), or headless on an EGL context (tests, the demo)."""

from __future__ import annotations

from systems.render.gl_present import GLPresenter
from systems.sam.system import stop_encoding
from systems.viewer.plugin import WindowHandle


def run_windowed(app, *, title: str, max_frames: int | None = None) -> int:
    """Open an H x W window for `app` (built with gl=True, ui=True), run until it closes, the
    script quits or max_frames ran; returns the number of frames."""
    from engine.platform.imgui_layer import ImGuiLayer
    from engine.platform.window import Window
    from systems.camera.system import ViewerCamera

    cam = app.resource(ViewerCamera)
    window = Window(title, cam.W, cam.H)
    layer = ImGuiLayer(window)
    try:
        app.insert_resource(WindowHandle(window))
        app.insert_resource(layer)
        app.insert_resource(GLPresenter(ctx=window.ctx, target=window.ctx.screen))
        return app.run(max_frames=max_frames)
    finally:
        stop_encoding(app)
        app.remove_resource(GLPresenter)
        layer.close()
        window.close()


def run_headless(app, *, max_frames: int | None = None) -> int:
    """Run `app` (built with gl=True, ui=False) on a standalone EGL context, drawing into an
    offscreen H x W framebuffer; returns the number of frames."""
    from engine.platform.gl import headless_context
    from systems.camera.system import ViewerCamera

    cam = app.resource(ViewerCamera)
    ctx = headless_context()
    try:
        target = ctx.simple_framebuffer((cam.W, cam.H), components=4)
        app.insert_resource(GLPresenter(ctx=ctx, target=target))
        return app.run(max_frames=max_frames)
    finally:
        stop_encoding(app)
        app.remove_resource(GLPresenter)
        ctx.release()
