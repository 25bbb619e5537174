"""Progressive rendering: low resolution while the view moves, refined to full resolution when still.

A pure state machine (no GL). Each frame the presenter reports one event:
- "moved":   the camera moved (or the window was resized): draw the whole frame at 1/low_scale size;
- "changed": what is drawn changed (mask, overlay, object view) but not the camera: as "moved", a
             whole low-resolution frame in the new state first, then the refinement restarts over it
             (refining bands over the old full-resolution image showed a seam between old and new);
- "still":   nothing changed: continue refining, or do nothing once the full image is done.
Refining draws bands of rows from the top, sized so a frame spends about `refine_budget_s` ray marching
(seconds per row are measured as frames go), the way nerfstudio's viewer refines a still view.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Phase(Enum):
    MOVING = "moving"       # showing a low-resolution frame
    REFINING = "refining"   # drawing full-resolution bands over the shown image
    DONE = "done"           # the full-resolution image is shown; nothing to draw


# (phase, event) -> next phase; REFINING -> DONE happens when its last band is drawn.
TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.MOVING, "moved"): Phase.MOVING,
    (Phase.MOVING, "changed"): Phase.MOVING,
    (Phase.MOVING, "still"): Phase.REFINING,
    (Phase.REFINING, "moved"): Phase.MOVING,
    (Phase.REFINING, "changed"): Phase.MOVING,
    (Phase.REFINING, "still"): Phase.REFINING,
    (Phase.DONE, "moved"): Phase.MOVING,
    (Phase.DONE, "changed"): Phase.MOVING,
    (Phase.DONE, "still"): Phase.DONE,
}


def units_in_budget(seconds_per_unit: float | None, budget_s: float, minimum: int) -> int:
    """How many units (rows, splats) fit in `budget_s` at the measured cost per unit; at least
    `minimum` (also before anything was measured)."""
    if seconds_per_unit is None:
        return minimum
    return max(int(budget_s / max(seconds_per_unit, 1e-12)), minimum)


def running_cost(previous: float | None, measured: float) -> float:
    """The running cost per unit: a new measurement averaged half and half with the previous one."""
    return measured if previous is None else 0.5 * previous + 0.5 * measured


@dataclass(frozen=True)
class ProgressiveConfig:
    low_scale: int = 4          # the first moving frame is (H / low_scale, W / low_scale) ...
    max_low_scale: int = 16     # ... then the scale adapts so a moving frame fits in budget_s
    budget_s: float = 0.030     # ray-marching time per moving frame
    refine_budget_s: float = 0.080   # ray-marching time per refining frame (fewer, larger bands)
    min_rows: int = 8           # never draw fewer rows per refining frame


@dataclass(frozen=True)
class FrameWork:
    """What to draw this frame: the low-res frame, or full-res rows [row, row + rows), or nothing."""
    low: bool = False
    row: int = 0
    rows: int = 0
    upscale_first: bool = False  # copy the low-res frame into the full-res image before the band


@dataclass
class ProgressiveState:
    phase: Phase = Phase.MOVING
    next_row: int = 0                      # refining: rows above this one are at full resolution
    seconds_per_row: float | None = None   # measured cost of one full-resolution row
    low_scale: int | None = None           # current moving-frame divisor (None: config.low_scale)

    def plan(self, event: str, H: int, config: ProgressiveConfig) -> FrameWork:
        """Advance with this frame's event ("moved" | "changed" | "still") and say what to draw for
        a full-resolution height H. Raises KeyError on an unknown event."""
        previous = self.phase
        self.phase = TRANSITIONS[(previous, event)]
        if self.phase is Phase.MOVING:
            self.low_scale = self.low_scale or config.low_scale
            return FrameWork(low=True)
        if self.phase is Phase.DONE:
            return FrameWork()
        restart = previous is not Phase.REFINING
        if restart:
            self.next_row = 0
        rows = min(units_in_budget(self.seconds_per_row, config.refine_budget_s, config.min_rows), H - self.next_row)
        work = FrameWork(row=self.next_row, rows=rows, upscale_first=restart and previous is Phase.MOVING)
        self.next_row += rows
        if self.next_row >= H:
            self.phase = Phase.DONE
        return work

    def measured(self, work: FrameWork, seconds: float, config: ProgressiveConfig) -> None:
        """Record that drawing `work` took `seconds`: a low frame over 1.5x the budget raises the
        low scale by one (under a third of it lowers it, down to 1: full resolution while moving,
        which a GPU affords); full-resolution rows update the running cost per row."""
        if work.low:
            if seconds > 1.5 * config.budget_s:
                self.low_scale = min(self.low_scale + 1, config.max_low_scale)
            elif seconds < config.budget_s / 3:
                self.low_scale = max(self.low_scale - 1, 1)
        if work.rows > 0:
            self.seconds_per_row = running_cost(self.seconds_per_row, seconds / work.rows)
