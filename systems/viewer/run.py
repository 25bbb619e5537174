"""Run the viewer: in a window (GLFW + ImGui), or headless on an EGL context (tests, the demo).

GL objects stay in their rooms: the presenter (systems/render/gl_present.py) is built there, from
the window or as an offscreen one, and only handed to the App here.
"""

from __future__ import annotations

from systems.export.system import Exports, finish_exports
from systems.sam.system import stop_encoding
from systems.segmentation.work import stop_work
from systems.viewer.plugin import WindowHandle


def stop_workers(app) -> None:
    """End the background threads of a closing viewer: the encoder's, then the click worker's; the
    exports asked for and not written yet are written now (a running one again, from the start)."""
    stop_encoding(app)
    stop_work(app)
    if app.has_resource(Exports):
        finish_exports(app)


def run_windowed(app, *, title: str, max_frames: int | None = None) -> int:
    """Open an H x W window for `app` (built with gl=True, ui=True), run until it closes, the
    script quits or max_frames ran; returns the number of frames."""
    from engine.platform.imgui_layer import ImGuiLayer
    from engine.platform.window import Window
    from systems.camera.system import ViewerCamera
    from systems.render.gl_present import GLPresenter, window_presenter

    cam = app.resource(ViewerCamera)
    window = Window(title, cam.W, cam.H)
    layer = ImGuiLayer(window)
    try:
        app.insert_resource(WindowHandle(window))
        app.insert_resource(layer)
        app.insert_resource(window_presenter(window))
        return app.run(max_frames=max_frames)
    finally:
        stop_workers(app)
        app.remove_resource(GLPresenter)
        layer.close()
        window.close()


def run_headless(app, *, max_frames: int | None = None) -> int:
    """Run `app` (built with gl=True, ui=False) with an offscreen presenter of the camera's size;
    returns the number of frames."""
    from systems.camera.system import ViewerCamera
    from systems.render.gl_present import GLPresenter, offscreen_presenter

    cam = app.resource(ViewerCamera)
    with offscreen_presenter(cam.H, cam.W) as presenter:
        try:
            app.insert_resource(presenter)
            return app.run(max_frames=max_frames)
        finally:
            stop_workers(app)
            app.remove_resource(GLPresenter)
