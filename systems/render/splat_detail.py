"""How much a moving splat frame can afford: its internal resolution and splat stride, from frame times (pure).

A splat frame costs vertex work (llvmpipe shades vertices on one thread: proportional to the splats
drawn, 1 / stride of them) plus fill (proportional to the pixels: a thinned draw keeps the covered
area, see systems/render/gl_splats.py). LEVELS orders (internal scale, stride) pairs from the finest
to the coarsest; after each moving frame the level moves one step coarser when the frame took over
1.5x the budget and one step finer when it took under a third of it, the same hysteresis as the ray
marcher's resolution (systems/render/progressive.py). A still view is drawn at level 0.
"""

from __future__ import annotations

LEVELS: tuple[tuple[float, int], ...] = (
    (1.0, 1), (1.0, 2), (1.0, 4), (0.5, 4), (0.5, 8), (0.5, 16), (0.25, 16), (0.25, 32), (0.125, 32),
    (0.125, 64))


def next_level(level: int, seconds: float, budget_s: float) -> int:
    """The LEVELS index for the next moving frame after one that took `seconds` at `level`."""
    if seconds > 1.5 * budget_s:
        return min(level + 1, len(LEVELS) - 1)
    if seconds < budget_s / 3:
        return max(level - 1, 0)
    return level
