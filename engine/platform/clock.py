"""Frame time: measured with perf_counter, or fixed (scripted runs are then deterministic).

The readout says what the user sees: the frame rate over the frames that ended in the last second
(at least the last frame), the last frame's time and the slowest of those, so one 26 s frame of
blocking work reads as 0.04 FPS, and not as the rate of the fast frames around it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 1.0          # the readout covers the frames of the last second ...
MAX_FRAMES = 240        # ... and at most this many


@dataclass
class FrameClock:
    fixed_dt: float | None = None        # seconds per frame when set (scripted input), else measured
    dt: float = 1.0 / 30.0               # the last frame's duration as the simulation sees it, seconds
    recent: deque = field(default_factory=lambda: deque(maxlen=MAX_FRAMES))   # measured durations, newest last
    now: object = time.perf_counter      # the time source (tests pass their own)
    _last: float | None = None

    def tick(self) -> None:
        """Start a new frame: measure the previous one, update dt."""
        t = self.now()
        if self._last is not None:
            measured = max(t - self._last, 1e-6)
            self.recent.append(measured)
            self.dt = min(measured, 0.25)
        if self.fixed_dt is not None:
            self.dt = self.fixed_dt
        self._last = t

    def elapsed(self) -> float:
        """Seconds since this frame's tick (0 before the first)."""
        return self.now() - self._last if self._last is not None else 0.0

    def _window(self) -> list[float]:
        """The durations of the frames that ended in the last WINDOW_S (at least the newest one)."""
        frames, ended_ago = [], 0.0
        for seconds in reversed(self.recent):
            if ended_ago >= WINDOW_S:
                break
            frames.append(seconds)
            ended_ago += seconds
        return frames

    @property
    def fps(self) -> float:
        """Frames per second over the frames that ended in the last second; 0 before the first."""
        frames = self._window()
        return len(frames) / sum(frames) if frames else 0.0

    @property
    def frame_ms(self) -> float:
        """The last frame's duration, milliseconds."""
        return self.recent[-1] * 1000.0 if self.recent else 0.0

    @property
    def slowest_ms(self) -> float:
        """The slowest frame of those that ended in the last second, milliseconds."""
        return max(self._window(), default=0.0) * 1000.0

    def readout(self) -> str:
        """'42.0 FPS  frame 23.8 ms  max 31.0 ms' (max: the slowest of the last second's frames),
        seconds for frames over one second."""
        def span(ms: float) -> str:
            return f"{ms / 1000.0:.1f} s" if ms >= 1000.0 else f"{ms:.1f} ms"
        return f"{self.fps:.1f} FPS  frame {span(self.frame_ms)}  max {span(self.slowest_ms)}"
