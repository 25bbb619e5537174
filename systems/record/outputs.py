"""What a replay leaves behind besides mask_grid.npz (systems/segmentation/grid_file.py):
OUT/masks/<view>.png and the video of the recorded camera path with the mask overlay.

masks/<view>.png: uint8 instance ids, 0 = no object, k = channel k - 1
(systems.inverse.ops.instance_ids), the format of the built-in scene's truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.camera import Camera
from components.resources import MaskGrid, SceneData, SegmentationSettings
from engine.media import VIDEO_SUFFIXES, write_png, write_video
from systems.record.fileformat import RecordingError
from systems.segmentation.objects import objects_by_channel


def write_masks(app, folder: str | Path, views: list[int]) -> list[Path]:
    """Write masks/<view name>.png (instance ids, see the module docstring) for scene `views`,
    reusing the segmentation's per-view weights (built for views it did not use)."""
    from systems.inverse.ops import instance_ids
    from systems.segmentation.views import scene_view_entry

    scene, votes = app.resource(SceneData).scene, app.resource(MaskGrid).votes
    folder = Path(folder)
    written = []
    for view in views:
        with app.active():
            entry = scene_view_entry(app, view)
        ids = instance_ids(entry.weights, votes)
        path = folder / f"{scene.view_names[view]}.png"
        write_png(path, ids)
        written.append(path)
    return written


class VideoCapture:
    """Collects overlay frames of the recorded camera path (Replay.capture); `size` is the longest
    side of a frame in pixels."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.frames: list[np.ndarray] = []       # each [H, W, 3] uint8

    def __call__(self, app, pose: dict) -> None:
        camera = Camera(np.asarray(pose["K"], np.float32), np.asarray(pose["T_world_camera"], np.float32),
                        int(pose["H"]), int(pose["W"]))
        scale = self.size / max(camera.H, camera.W)
        camera = camera.resized(max(2, round(camera.H * scale)) // 2 * 2, max(2, round(camera.W * scale)) // 2 * 2)
        self.frames.append(overlay_frame(app, camera))

    def write(self, path: str | Path, fps: int = 10) -> Path:
        """Write the frames as .mp4 or .gif (engine/media.py); RecordingError if there are none."""
        path = Path(path)
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise RecordingError(f"video {path} must end in .mp4 or .gif")
        if not self.frames:
            raise RecordingError("the recording holds no camera path to make a video of: record with the "
                                 "viewer (it writes the camera as it moves)")
        return write_video(path, self.frames, fps)


def overlay_frame(app, camera: Camera) -> np.ndarray:
    """uint8 [H, W, 3]: the scene rendered in `camera`, objects tinted with their colours."""
    from systems.inverse.ops import instance_ids
    from systems.render.ops import tint_pixels

    votes, settings = app.resource(MaskGrid).votes, app.resource(SegmentationSettings)
    samples = app.resource(SceneData).representation.view_samples(
        camera, weight_cutoff=settings.weight_cutoff, min_entry=settings.min_entry)
    rgb = samples.rgb                                                  # [H, W, 3] float in [0, 1]
    ids = instance_ids(samples.weights, votes)                         # [H, W]
    colors = np.array([[0, 0, 0]] + [o.color for o in objects_by_channel(app)], np.float32) / 255.0
    rgb = tint_pixels(rgb, ids, colors)
    return (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)
