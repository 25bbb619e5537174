"""Frame time: measured with perf_counter, or fixed (scripted runs are then deterministic)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class FrameClock:
    fixed_dt: float | None = None        # seconds per frame when set (scripted input), else measured
    dt: float = 1.0 / 30.0               # the last frame's duration, seconds
    fps: float = 0.0                     # frames per second, smoothed
    _last: float = field(default_factory=time.perf_counter)

    def tick(self) -> None:
        """Start a new frame: update dt and the smoothed fps."""
        now = time.perf_counter()
        measured, self._last = max(now - self._last, 1e-6), now
        self.fps = 1.0 / measured if self.fps == 0.0 else 0.9 * self.fps + 0.1 / measured
        self.dt = self.fixed_dt if self.fixed_dt is not None else min(measured, 0.25)
