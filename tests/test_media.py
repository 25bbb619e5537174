"""engine/media.py read back by real readers: GIF delays at the asked rate, MP4 frames, file modes."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from engine.media import VideoError, gif_frame_ms, write_png, write_video


def _frames(n=4, H=10, W=14):
    return [np.full((H, W, 3), 40 * i, np.uint8) for i in range(n)]


@pytest.mark.parametrize("fps", [5, 12, 25])
def test_gif_frames_last_one_over_fps_seconds(tmp_path, fps):
    path = write_video(tmp_path / "v.gif", _frames(), fps)
    with Image.open(path) as gif:
        delays = []
        for i in range(gif.n_frames):
            gif.seek(i)
            delays.append(gif.info["duration"])
        assert gif.info.get("loop") == 0                       # loops forever
    assert len(delays) == 4
    assert all(abs(d - 1000.0 / fps) <= 5 for d in delays)     # centisecond rounding
    assert gif_frame_ms(fps) == delays[0]


def test_mp4_reads_back_with_its_frames_and_rate(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    path = write_video(tmp_path / "v.mp4", _frames(6, 16, 18), 10)
    reader = imageio.get_reader(path)
    assert reader.get_meta_data()["fps"] == pytest.approx(10)
    frames = list(reader.iter_data())
    reader.close()
    assert len(frames) == 6 and frames[0].shape == (16, 18, 3)
    assert abs(int(frames[5].mean()) - 200) <= 3


def test_files_get_the_usual_modes(tmp_path):
    old = os.umask(0o022)
    try:
        paths = [write_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8)),
                 write_video(tmp_path / "b.gif", _frames(), 10)]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o644, 0o644]


@pytest.mark.parametrize("name, frames, fps, message", [
    ("v.avi", _frames(), 10, "must end in .mp4 or .gif"),
    ("v.gif", [], 10, "no frames"),
    ("v.gif", [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], 10, "one size"),
    ("v.gif", _frames(), 0, "positive"),
])
def test_bad_videos_are_refused_and_leave_nothing(tmp_path, name, frames, fps, message):
    with pytest.raises(VideoError, match=message):
        write_video(tmp_path / name, frames, fps)
    assert list(tmp_path.iterdir()) == []
