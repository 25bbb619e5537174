"""Progressive splat frames (pure): a cheap preview while the view moves, refined to every splat when still.

A splat frame costs vertex work (llvmpipe sets up primitives on one thread: proportional to the
splats drawn) plus fill (proportional to the pixels). Each frame the presenter reports one event,
as to the ray marcher's state machine (systems/render/progressive.py, the same TRANSITIONS):
- "moved" / "changed": draw a whole preview at LEVELS[level] (internal scale, splat stride: 1 /
  stride of the splats, each stride times larger, see systems/render/gl_splats.py); after each
  preview the level moves one step coarser when the frame took over 1.5x `budget_s` and one step
  finer when it took under a third of it;
- "still": refine: draw every splat at full resolution into a second target, a slice of the
  back-to-front order per frame sized so a frame spends about `refine_budget_s` (seconds per splat
  are measured as frames go); the preview stays on screen until the last slice is drawn (a partly
  blended frame would show the scene's back layers only), then the full frame is shown (DONE).
"""

from __future__ import annotations

from dataclasses import dataclass

from systems.render.progressive import TRANSITIONS, Phase, running_cost, units_in_budget

LEVELS: tuple[tuple[float, int], ...] = (
    (1.0, 1), (1.0, 2), (1.0, 4), (0.5, 4), (0.5, 8), (0.5, 16), (0.25, 16), (0.25, 32), (0.125, 32),
    (0.125, 64))


@dataclass(frozen=True)
class SplatDetailConfig:
    start_level: int = 4           # the first preview's LEVELS index (then adapted)
    budget_s: float = 0.050        # drawing time per preview frame
    refine_budget_s: float = 0.080   # drawing time per refining frame
    min_chunk: int = 2048          # never draw fewer splats per refining frame


@dataclass(frozen=True)
class SplatWork:
    """What to draw this frame: a preview at LEVELS[level], or the sorted splats [start, stop) at full
    detail (`restart`: into a cleared target), or nothing (level None and stop 0)."""
    level: int | None = None
    start: int = 0
    stop: int = 0
    restart: bool = False
    finished: bool = False         # this slice completes the full frame: show it


def next_level(level: int, seconds: float, budget_s: float) -> int:
    """The LEVELS index for the next moving frame after one that took `seconds` at `level`."""
    if seconds > 1.5 * budget_s:
        return min(level + 1, len(LEVELS) - 1)
    if seconds < budget_s / 3:
        return max(level - 1, 0)
    return level


@dataclass
class SplatProgress:
    phase: Phase = Phase.MOVING
    level: int | None = None               # the preview's LEVELS index (None: config.start_level)
    next_splat: int = 0                    # refining: the sorted splats before this one are drawn
    seconds_per_splat: float | None = None  # measured cost of one splat at full detail

    def plan(self, event: str, total: int, config: SplatDetailConfig) -> SplatWork:
        """Advance with this frame's event ("moved" | "changed" | "still") and say what to draw of
        `total` sorted splats. Raises KeyError on an unknown event."""
        previous = self.phase
        self.phase = TRANSITIONS[(previous, event)]
        if self.phase is Phase.MOVING:
            self.level = config.start_level if self.level is None else self.level
            return SplatWork(level=self.level)
        if self.phase is Phase.DONE:
            return SplatWork()
        restart = previous is not Phase.REFINING
        if restart:
            self.next_splat = 0
        count = units_in_budget(self.seconds_per_splat, config.refine_budget_s, config.min_chunk)
        start, stop = self.next_splat, min(self.next_splat + count, total)
        self.next_splat = stop
        if stop >= total:
            self.phase = Phase.DONE
        return SplatWork(start=start, stop=stop, restart=restart, finished=self.phase is Phase.DONE)

    def measured(self, work: SplatWork, seconds: float, config: SplatDetailConfig) -> None:
        """Record that drawing `work` took `seconds`: a preview adapts the level (next_level), a
        refining slice updates the running cost per splat."""
        if work.level is not None:
            self.level = next_level(work.level, seconds, config.budget_s)
        elif work.stop > work.start:
            self.seconds_per_splat = running_cost(self.seconds_per_splat, seconds / (work.stop - work.start))
