"""The viewer: its schedule (the data-flow diagram of a frame) and the resources it starts with.

    input:    begin_input -> poll_window (windowed) -> play_script (scripted) -> session_requests
              (-> feed_replay, with recording)
    simulate: handle_viewer_input -> move_camera (-> tap_requests, with recording) -> the
              segmentation systems -> export_requested
    present:  present_frame, or present_splat_frame in a splat scene (needs GL)
    ui:       draw_ui (needs the ImGui layer)
    end:      release_memory_after_work -> take_screenshots (-> check_replay -> write_session, with
              recording) -> swap_window -> pace_frames_while_working
"""

from __future__ import annotations

import time

import esper

from components.messages import ObjectDeleted, PropagationFinished
from components.segmentation import NeedsLift, NeedsSegment, PendingView, Propagation
from engine.app import App
from engine.io import file_sha256
from engine.platform.clock import FrameClock
from engine.platform.input import InputState
from engine.schedule import Schedule, Stage, system
from systems.camera.system import ViewerCamera, move_camera, viewer_camera
from systems.export.system import ExportFinished, export_requested
from systems.record.recorder import recording_plugin
from systems.render.progressive import Phase
from systems.sam.system import insert_encoding
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation
from systems.segmentation.work import insert_background_work, work_in_flight
from systems.viewer.prompts import handle_viewer_input
from systems.viewer.resources import ViewerLog, ViewerSettings
from systems.viewer.script import ScriptPlayer, play_script
from systems.viewer.session import SessionFiles, session_requests

WORKING_FRAME_S = 1 / 30   # while the background worker computes what the user waits for and the view is not
                           # moving, a frame lasts at least this long: the loop leaves the cores to the work


class WindowHandle:
    """The platform window (engine.platform.window.Window) as a resource."""

    def __init__(self, window) -> None:
        self.window = window


def begin_input(app) -> None:
    """Writes FrameClock (tick) and InputState (a new frame)."""
    app.resource(FrameClock).tick()
    app.resource(InputState).begin_frame()


IDLE_WAIT_S = 0.05      # a frame with nothing to do waits this long for input (the encoder gets the CPU)


def poll_window(app) -> None:
    """Reads the window's events into InputState (waiting up to IDLE_WAIT_S for one when the viewer
    is idle); requests exit when the window closes."""
    handle, state = app.resource(WindowHandle), app.resource(InputState)
    for event in handle.window.poll(IDLE_WAIT_S if viewer_idle(app) else 0.0):
        state.apply(event)
    if handle.window.should_close:
        app.exit_requested = True


def swap_window(app) -> None:
    """Shows the finished frame (window swap)."""
    app.resource(WindowHandle).window.swap()


def pace_frames_while_working(app) -> None:
    """Reads FrameClock, the presenter's phase and whether the background worker computes; sleeps
    out the rest of WORKING_FRAME_S then, unless the camera moves (its frames come first)."""
    from systems.render.gl_present import GLPresenter

    presenter = app.try_resource(GLPresenter)
    if not work_in_flight(app) or (presenter is not None and presenter.state.phase is Phase.MOVING):
        return
    time.sleep(max(0.0, WORKING_FRAME_S - app.resource(FrameClock).elapsed()))


def release_memory_after_work(app) -> None:
    """Reads PropagationFinished, ObjectDeleted and ExportFinished; gives the heap's free pages back
    to the system after such work (engine.memory.release_free_heap), so a long session stays flat."""
    from engine.memory import release_free_heap

    if [*app.read(PropagationFinished), *app.read(ObjectDeleted), *app.read(ExportFinished)]:
        release_free_heap()


def segmentation_idle(app) -> bool:
    """No propagation is running or waiting, and no prompt is being processed (or waits for its
    view's weights, embedding or the segmenter's answer)."""
    with app.active():
        busy = [e for e, p in esper.get_component(Propagation) if not p.finished]
        return not busy and not any(esper.get_component(tag) for tag in (PendingView, NeedsSegment, NeedsLift))


def frame_still(app) -> bool:
    """The live view is drawn at full resolution, with the newest mask grid."""
    from systems.render.gl_present import GLPresenter

    presenter = app.try_resource(GLPresenter)
    return presenter is not None and presenter.state.phase is Phase.DONE and not presenter.mask_dirty


def viewer_idle(app) -> bool:
    """Nothing would change on screen without input: the view is still and finished, no
    segmentation work is pending, no script or replay plays (a background encoder may run)."""
    from systems.record.replayer import Replay

    player, replay = app.try_resource(ScriptPlayer), app.try_resource(Replay)
    return (frame_still(app) and segmentation_idle(app) and (player is None or player.finished)
            and (replay is None or replay.done))


def viewer_schedule(*, gl: bool, ui: bool, recording: bool = False, splats: bool = False) -> Schedule:
    """The viewer's systems; `gl` adds the presenter (of a splat scene with `splats`), `ui` the
    ImGui overlay (both need GL), `recording` the recorder / replayer (idle until a recording
    starts or is continued)."""
    schedule = Schedule.of(
        input=[begin_input, system(poll_window, requires=(WindowHandle,)),
               system(play_script, requires=(ScriptPlayer,)), session_requests],
        simulate=[handle_viewer_input, move_camera])
    segmentation_plugin(schedule)
    schedule.add(Stage.SIMULATE, export_requested)
    schedule.add(Stage.END, release_memory_after_work)
    if gl:
        from systems.render.gl_present import GLPresenter, present_frame, take_screenshots
        from systems.render.gl_present_splats import present_splat_frame

        present = present_splat_frame if splats else present_frame
        schedule.add(Stage.PRESENT, system(present, requires=(GLPresenter,)))
        schedule.add(Stage.END, system(take_screenshots, requires=(GLPresenter,)))
    if ui:
        from engine.platform.imgui_layer import ImGuiLayer
        from systems.ui.panel import draw_ui

        schedule.add(Stage.UI, system(draw_ui, requires=(ImGuiLayer,)))
    if recording:
        recording_plugin(schedule)
    return schedule.add(Stage.END, system(swap_window, requires=(WindowHandle,)), pace_frames_while_working)


def build_viewer(scene, field, segmenter, *, H: int, W: int, gl: bool, ui: bool,
                 script: list[dict] | None = None, settings=None, fixed_dt: float | None = None,
                 recording: bool = False, files: SessionFiles | None = None) -> App:
    """An App with the viewer schedule and its resources (camera, input, clock, settings, the
    segmentation resources, SessionFiles). GL resources (GLPresenter, window, ImGui) are added by
    the caller. Without `recording` the caller may add recording_plugin itself."""
    from engine.memory import return_large_blocks

    return_large_blocks()                                 # a long session's freed arrays leave its RSS
    splats = getattr(field, "kind", None) == "gaussians"        # a GaussianScene (systems/inverse/splats.py)
    app = App(viewer_schedule(gl=gl, ui=ui, recording=recording, splats=splats))
    app.insert_resource(files or SessionFiles())
    field_file = files.field_path if files else None
    insert_segmentation(app, scene, field, segmenter, settings,
                        field_hash=file_sha256(field_file) if field_file else "none")
    app.insert_resource(camera := viewer_camera(scene, H, W))
    insert_encoding(app, first_view=camera.view)         # a SAM-family segmenter encodes in the background
    insert_background_work(app)                           # a click's weights and answer: never in a frame
    app.insert_resource(InputState())
    app.insert_resource(FrameClock(fixed_dt=fixed_dt))
    app.insert_resource(ViewerSettings())
    app.insert_resource(ViewerLog())
    if script is not None:
        app.insert_resource(ScriptPlayer(script, waits={"segmented": segmentation_idle, "still": frame_still}))
    return app


__all__ = ["ViewerCamera", "build_viewer", "viewer_schedule"]
