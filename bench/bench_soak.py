"""Soak: the viewer headless (EGL) under a scripted session for minutes, sampling RSS and frame times.

The session repeats one cycle until the time is up: fly (W, A, a right-drag, orbit mode and a
scroll), click where the flight ended (a free camera: its view weights are new) and clear, step to
the next training view and snap to it, click an object, lift a candidate and
propagate, start a second object (another one) with a positive and a negative click, undo, lift it,
toggle the overlay and the three view modes, export the grid (npz, the same file each cycle; it
carves the objects' solid masks in the viewer's background worker while the deletes go on), and
delete both objects; the whole session is recorded (`view --record`). The built-in scene at 64 px
with its small trained fixture field (engine/field/fixtures.py), the fallback segmenter, propagation
over PROPAGATION_VIEWS training views.

The two objects are clicked as a user clicks them: on two different objects of the snapped view
(the scene's ground truth places the clicks: the deepest pixel of each, on screen), and the candidate
keys pick the segmenter's candidate that matches the object best, as a user picks the one that looks
right. Clicking fixed screen points instead (the flight, timed by the frame clock, ends elsewhere
at every load) hit the same object twice in most cycles, or a sliver candidate: the second object's
lift then took the first one's voxels (SegmentationSettings.exclusive), and the export refused the
emptied object (a 30-minute run: 202 of 304 exports).

Frame times are split by whether the segmentation systems (systems/segmentation/plugin.py) spent
SEGMENTATION_STEP_MS or more in the frame (a lift, a self-prompt's render; a view's weights and the
segmenter's calls run in the viewer's background worker): the target "no frame over 1 s" is for the
other frames; the largest time
any frame spent outside the segmentation systems (rendering, input, recording) is reported too.
RSS (VmRSS) is sampled every second; growth is measured from the first minute's sample to the end,
and between the starts of the first cycle after a minute and of the last (the same point of the
session, so the heap's transient temporaries weigh alike). Each cycle start also notes where the
memory is (engine.memory.resident_parts: anonymous or file-backed pages, the C heap's chunks in use
and free, blocks mapped on their own, Python's blocks) and what the view cache holds, and the JSON
gives each part's growth between those two cycle starts; frames over SLOW_MS are listed with the
systems that took the time.

Usage: python bench/bench_soak.py [--minutes 10] [--size 640x360] [--out bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PROPAGATION_VIEWS = 4
SEGMENTATION_STEP_MS = 50.0
SLOW_MS = 500.0          # frames over this are listed with the systems that took the time
MIN_OBJECT_PIXELS = 40   # objects the session clicks cover at least this many on-screen pixels of the view


def rss_mb() -> float:
    """This process's resident set size in MB (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def view_cache_mb(app) -> float:
    """MB the ViewCache holds in memory (every entry's weights, depth and image)."""
    from components.resources import ViewCache

    entries = app.resource(ViewCache).entries.values()
    return sum(e.weights.nbytes() + np.asarray(e.depth).nbytes + e.image.nbytes for e in entries) / 1e6


def slow_frame(app, t: float, ms: float, seg_ms: float) -> dict:
    """A frame over SLOW_MS: when, how long, and the three systems that spent the most of it."""
    top = sorted(app.system_seconds.items(), key=lambda item: -item[1])[:3]
    return {"t_s": round(t, 1), "ms": round(ms, 1), "segmentation_ms": round(seg_ms, 1),
            "systems": {name.rsplit(".", 1)[-1]: round(1000.0 * sec, 1) for name, sec in top}}


def object_clicks(app, truth, k: int) -> list[tuple[float, float, int]]:
    """Viewer pixels (x, y) on two different objects of the training view the camera is snapped to,
    with their ids in `truth` (engine/scenes/builtin.BuiltinTruth): the objects covering at least
    MIN_OBJECT_PIXELS on-screen pixels of the view, largest first, from the k-th on; each clicked at
    its pixel farthest from its outline (the same object twice when the view shows only one)."""
    from scipy import ndimage

    from components.camera import Camera
    from components.resources import SceneData
    from systems.camera.system import ViewerCamera

    cam = app.resource(ViewerCamera)
    ids = truth.instance_masks[cam.view]                                       # [h, w]
    to_viewer = cam.K @ np.linalg.inv(Camera.of_view(app.resource(SceneData).scene, cam.view).K)
    rows, cols = np.indices(ids.shape)
    centres = np.stack([cols + 0.5, rows + 0.5, np.ones(ids.shape)]).reshape(3, -1)   # view pixel centres
    x, y, _ = (to_viewer @ centres).reshape(3, *ids.shape)
    on_screen = (x >= 0) & (x < cam.W) & (y >= 0) & (y < cam.H)
    pixels = np.bincount(ids[on_screen].ravel())                               # on-screen pixels per id
    objects = sorted((i for i in range(1, pixels.size) if pixels[i] >= MIN_OBJECT_PIXELS), key=lambda i: -pixels[i])
    clicks = []
    for i in (objects[k % len(objects)], objects[(k + 1) % len(objects)]):
        depth = ndimage.distance_transform_edt((ids == i) & on_screen)
        r, c = np.unravel_index(int(np.argmax(depth)), ids.shape)
        clicks.append((float(x[r, c]), float(y[r, c]), i))
    return clicks


def candidate_key(app, truth, object_id: int) -> str:
    """The key ("1" to "3") of the active object's candidate that matches object `object_id` of
    `truth` best (IoU on its prompted view); "1" when the segmenter gave none (the key does nothing)."""
    import esper

    from components.segmentation import Candidates, Prompts
    from systems.segmentation.objects import resolve_object

    with app.active():
        entity, _ = resolve_object(app, None)
        if not esper.has_component(entity, Candidates):
            return "1"
        masks = esper.component_for_entity(entity, Candidates).masks                       # [C, h, w]
        target = truth.instance_masks[esper.component_for_entity(entity, Prompts).view] == object_id
    ious = [(m & target).sum() / max(1, (m | target).sum()) for m in masks]
    return str(int(np.argmax(ious)) + 1)


def cycle_steps(W: int, H: int, k: int, truth) -> list:
    """One cycle of the session (module docstring): script steps (a part that is a function of the
    App is made when the loop reaches it), then "export" (sent by the loop, as the panel's button
    would), then the deletes; `k` varies the free camera's click and the objects clicked."""
    cx, cy = W / 2 + (k % 3 - 1) * W / 40, H / 2 + (k % 2) * H / 40
    clicked = []                                         # [(x, y, truth id)] of the two objects

    def first_object(app) -> list:
        clicked[:] = object_clicks(app, truth, k)
        return [{"click": list(clicked[0][:2])}, {"wait": "segmented"}]

    def second_object(app) -> list:
        return [{"key": candidate_key(app, truth, clicked[0][2])}, {"wait": "segmented"},
                {"key": "N"}, {"click": list(clicked[1][:2])}, {"click": [cx + W / 8, cy - H / 8], "mods": ["shift"]},
                {"wait": "segmented"}, {"key": "Z"}, {"wait": "segmented"}]

    def views(app) -> list:
        return [{"key": candidate_key(app, truth, clicked[1][2])}, {"wait": "segmented"},
                {"key": "M"}, {"key": "M", "after": 4}, {"key": "V", "after": 4}, {"key": "V", "after": 4},
                {"key": "V", "after": 4}, {"wait": "segmented"}]

    return [
        [{"key": "W", "hold": 12}, {"key": "A", "hold": 8, "after": 14}, {"drag": [W / 10, H / 30], "frames": 8},
         {"key": "TAB", "after": 10}, {"scroll": 1.0}, {"drag": [-W / 12, 0], "frames": 6}, {"key": "TAB", "after": 8},
         {"wait": "still"}, {"click": [cx, cy]}, {"wait": "segmented"}, {"key": "C"}, {"wait": "segmented"},
         {"key": "RIGHT_BRACKET"}, {"key": "F", "after": 2}, {"wait": "still"}],
        first_object, second_object, views,
        "export",
        [{"key": "DELETE", "after": 4}, {"key": "DELETE", "after": 2}, {"wait": "segmented"}],
    ]


def soak(minutes: float, *, W: int = 640, H: int = 360, folder: Path | None = None) -> dict:
    """Run the scripted session for `minutes`; returns the figures (see the module docstring)."""
    import esper
    import torch

    from components.resources import SegmentationSettings
    from components.segmentation import SegObject
    from engine.field.checkpoint import save_field
    from engine.field.fixtures import trained_builtin_field
    from engine.memory import resident_parts
    from engine.scenes.builtin import builtin_truth
    from systems.export.export import ExportOptions
    from systems.export.system import ExportFinished, ExportRequested
    from systems.record.recorder import RecordingSettings, start_recording, stop_recording
    from systems.render.gl_present import GLPresenter, offscreen_presenter
    from systems.sam.factory import make_segmenter
    from systems.segmentation.plugin import SYSTEMS
    from systems.viewer.plugin import build_viewer
    from systems.viewer.run import stop_workers
    from systems.viewer.script import ScriptPlayer
    from systems.viewer.session import SessionFiles

    torch.set_num_threads(1)                                    # as the viewer: llvmpipe needs a core
    folder = Path(folder or tempfile.mkdtemp(prefix="sa3d-soak-"))
    scene, field = trained_builtin_field()
    truth = builtin_truth(scene.H)
    field_path = folder / "field.pt"
    save_field(field_path, field, scene_hash=scene.content_hash())
    views = tuple(scene.train_ids[::max(1, len(scene.train_ids) // PROPAGATION_VIEWS)][:PROPAGATION_VIEWS])
    app = build_viewer(scene, field, make_segmenter("fallback"), H=H, W=W, gl=True, ui=False, script=[],
                       settings=SegmentationSettings(views=views), recording=True,
                       files=SessionFiles(field_path=str(field_path)))
    with offscreen_presenter(H, W) as presenter:
        app.insert_resource(presenter)
        recording = folder / "session.jsonl"
        start_recording(app, RecordingSettings(recording, overwrite=True, field_path=str(field_path)))
        player, queue = app.resource(ScriptPlayer), []
        segmentation = {f"{fn.__module__}.{fn.__qualname__}" for fn in SYSTEMS}
        quiet_ms, busy_ms, rss, outside_ms = [], [], [], 0.0        # frame times; (seconds, MB) samples
        slow, cycle_rss = [], []             # frames over SLOW_MS and who took it; RSS and view cache per cycle
        cycles, exports, max_objects, load_before = 0, 0, 0, os.getloadavg()[0]
        exported = []                        # ExportFinished: the exports written (or refused, with why)
        start = next_sample = time.perf_counter()
        try:
            while time.perf_counter() - start < minutes * 60.0:
                if player.finished:
                    if not queue:
                        queue, cycles = cycle_steps(W, H, cycles, truth), cycles + 1
                        cycle_rss.append({"t_s": round(time.perf_counter() - start, 1), **resident_parts(),
                                          "view_cache_mb": round(view_cache_mb(app), 1)})
                    part = queue.pop(0)
                    if part == "export":
                        app.send(ExportRequested(str(folder / "export.npz"), ExportOptions(format="npz")))
                        exports += 1
                    else:                       # the steps played are dropped: the script stays one part long
                        player.steps, player.index, player.countdown = part(app) if callable(part) else part, 0, 1
                began = time.perf_counter()
                app.step()
                ms = (time.perf_counter() - began) * 1000.0
                seg_ms = 1000.0 * sum(t for name, t in app.system_seconds.items() if name in segmentation)
                (busy_ms if seg_ms >= SEGMENTATION_STEP_MS else quiet_ms).append(ms)
                if ms > SLOW_MS:
                    slow.append(slow_frame(app, began - start, ms, seg_ms))
                outside_ms = max(outside_ms, ms - seg_ms)
                exported += app.messages.read(ExportFinished, "bench")
                with app.active():
                    max_objects = max(max_objects, len(esper.get_component(SegObject)))
                if began >= next_sample:
                    rss.append((began - start, rss_mb()))
                    next_sample += 1.0
        finally:
            stop_recording(app)
            stop_workers(app)                                   # writes an export still queued
            exported += app.messages.read(ExportFinished, "bench")
            app.remove_resource(GLPresenter)
    return summarise(minutes, quiet_ms, busy_ms, rss, frame_ms_max_outside_segmentation_systems=round(outside_ms, 1),
                     cycles=cycles, exports=exports, exports_written=sum(e.error is None for e in exported),
                     exports_refused=sum(e.error is not None for e in exported),
                     export_errors=sorted({e.error for e in exported if e.error}), max_objects=max_objects,
                     cycle_starts=cycle_rss, slow_frames=slow,
                     recording_bytes=recording.stat().st_size, load_before=load_before, size=f"{W}x{H}")


def summarise(minutes: float, quiet_ms: list[float], busy_ms: list[float], rss: list[tuple[float, float]],
              **extra) -> dict:
    """The JSON figures of a soak from its frame times (ms) and RSS samples (seconds, MB)."""
    every = np.asarray(quiet_ms + busy_ms)
    after_1min = next((mb for t, mb in rss if t >= 60.0), rss[-1][1])
    end = rss[-1][1]
    late = [c for c in extra["cycle_starts"] if c["t_s"] >= 60.0]
    starts = [c["rss_mb"] for c in late] or [end]
    return {
        "minutes": minutes, "frames": int(every.size), "cycles": extra.pop("cycles"),
        "rss_mb_start": round(rss[0][1], 1), "rss_mb_after_1min": round(after_1min, 1),
        "rss_mb_end": round(end, 1), "rss_mb_peak": round(max(mb for _, mb in rss), 1),
        "rss_growth_after_1min_percent": round(100.0 * (end - after_1min) / after_1min, 2),
        "rss_growth_between_cycle_starts_after_1min_percent": round(100.0 * (starts[-1] - starts[0]) / starts[0], 2),
        "growth_between_cycle_starts_after_1min": {part: round(late[-1][part] - late[0][part], 1) for part in late[0]
                                                   if part != "t_s"} if late else {},
        "frame_ms_p50": round(float(np.percentile(every, 50)), 1),
        "frame_ms_p99": round(float(np.percentile(every, 99)), 1),
        "frame_ms_max_outside_segmentation_steps": round(max(quiet_ms, default=0.0), 1),
        "frames_over_1s_outside_segmentation_steps": int(sum(ms > 1000.0 for ms in quiet_ms)),
        "frame_ms_max_segmentation_step": round(max(busy_ms, default=0.0), 1),
        "segmentation_step_frames": len(busy_ms),
        "load_average_before": round(extra.pop("load_before"), 2), "load_average_after": round(os.getloadavg()[0], 2),
        **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the session runs (default 10)")
    parser.add_argument("--size", default="640x360", help="viewer size WxH (default 640x360)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"), help="results file")
    args = parser.parse_args()
    W, H = (int(v) for v in args.size.split("x"))
    results = soak(args.minutes, W=W, H=H)
    from engine.io import atomic_write

    atomic_write(args.out, json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        if key not in ("cycle_starts", "slow_frames"):
            print(f"{key:<38} {value}")
    for frame in results["slow_frames"]:
        print(f"slow frame at {frame['t_s']:>7} s: {frame['ms']:>7} ms, segmentation {frame['segmentation_ms']} ms, "
              f"{frame['systems']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
