"""The one image and video writer: PNG files, MP4 and looping GIF videos, all written atomically.

GIF frame delays are whole centiseconds in the file; Pillow (behind imageio's GIF writer) takes
`duration` in milliseconds, so a frame lasts round(100 / fps) centiseconds (12 fps: 80 ms, as
browsers, Pillow and ffmpeg read it back). MP4 goes through ffmpeg (imageio-ffmpeg), any even or
odd frame size (no macro-block resizing).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import UserFacingError
from engine.io import atomic_path, atomic_write

VIDEO_SUFFIXES = (".mp4", ".gif")


class VideoError(UserFacingError):
    """A video that cannot be written as asked; the message says what to change."""


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of image [H, W] or [H, W, 3] uint8."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write image [H, W] or [H, W, 3] uint8 to `path` as PNG (atomically)."""
    atomic_write(path, png_bytes(image))
    return Path(path)


def gif_frame_ms(fps: float) -> int:
    """The delay of one GIF frame in milliseconds: 1000 / fps rounded to the file's centiseconds."""
    return 10 * max(1, round(100.0 / fps))


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write frames (each [H, W] or [H, W, 3] uint8, one size) as .mp4 or looping .gif at `fps`.

    Raises VideoError for another suffix, no frames, frames of several sizes or fps <= 0.
    """
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(f"video {path} must end in .mp4 or .gif")
    if not frames:
        raise VideoError(f"no frames to write to {path}")
    if len({f.shape for f in frames}) != 1:
        raise VideoError(f"video {path} needs frames of one size: give cameras of one H x W")
    if not fps > 0:
        raise VideoError(f"video {path}: frames per second must be positive, got {fps}")
    with atomic_path(path) as tmp:
        if suffix == ".gif":
            imageio.mimwrite(tmp, list(frames), format="GIF", duration=gif_frame_ms(fps), loop=0)
        else:
            imageio.mimwrite(tmp, list(frames), format="FFMPEG", fps=fps, macro_block_size=1)
    return path
