"""The viewer camera's changes reach the presenter through the App's version stamps, not a counter of
its own: set_pose (every writer of the pose: move_camera, a replay's camera step) stamps ViewerCamera."""

from engine.app import App
from engine.platform.clock import FrameClock
from engine.platform.input import InputState, KeyEvent
from engine.scenes.builtin import builtin_scene
from engine.schedule import Schedule
from systems.camera.system import ViewerCamera, move_camera, set_pose, viewer_camera


def test_a_pose_change_is_seen_once_by_each_reader():
    scene = builtin_scene(64)
    seen = []
    app = App(Schedule.of(simulate=[move_camera, lambda a: seen.append(a.changed(ViewerCamera))]))
    app.insert_resource(viewer_camera(scene, 48, 64))
    app.insert_resource(InputState())
    app.insert_resource(FrameClock(fixed_dt=1 / 30))
    app.step()
    app.step()
    assert seen == [True, False]                                # the inserted camera, then nothing new
    cam = app.resource(ViewerCamera)
    with app.active():
        set_pose(app, cam.views[2], cam.view_ids[2])
    app.step()
    assert seen[-1] and cam.view == cam.view_ids[2] and (cam.T_world_camera == cam.views[2]).all()
    state = app.resource(InputState)
    state.apply(KeyEvent("F", True, frozenset()))               # snap to the nearest view: move_camera writes it
    app.step()
    state.begin_frame()
    app.step()
    assert seen[-2:] == [True, False] and not hasattr(cam, "version")
