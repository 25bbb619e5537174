"""Stages and systems: the order in which a frame runs, written once.

A system is a function `system(app) -> None`. An entry may name resources the system needs
(`requires`): the App skips it while any of them is missing, e.g. GL systems in a headless run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Stage(Enum):
    STARTUP = "startup"    # once, on the first frame
    INPUT = "input"        # window events and scripted input are collected (InputState); replays feed requests
    SIMULATE = "simulate"  # input becomes requests (a click: PromptAdded), then the work: segmentation,
                           # propagation, camera motion
    PRESENT = "present"    # draw the frame
    UI = "ui"              # the overlay on top of the frame
    END = "end"            # bookkeeping: recording, screenshots, frame timing


STAGE_ORDER = (Stage.STARTUP, Stage.INPUT, Stage.SIMULATE, Stage.PRESENT, Stage.UI, Stage.END)

System = Callable[["object"], None]


@dataclass(frozen=True)
class Entry:
    system: System
    requires: tuple[type, ...] = ()   # resources the system needs; skipped while one is missing

    @property
    def name(self) -> str:
        return f"{self.system.__module__}.{self.system.__qualname__}"


def system(fn: System, *, requires: tuple[type, ...] = ()) -> Entry:
    """Wrap a system function with the resources it needs to run."""
    return Entry(fn, tuple(requires))


@dataclass
class Schedule:
    stages: dict[Stage, list[Entry]] = field(default_factory=lambda: {s: [] for s in STAGE_ORDER})

    @classmethod
    def of(cls, **stages: list) -> Schedule:
        """Schedule.of(input=[...], simulate=[...]): plain functions or `system(...)` entries."""
        schedule = cls()
        for stage_name, entries in stages.items():
            stage = Stage(stage_name)
            schedule.stages[stage] = [e if isinstance(e, Entry) else Entry(e) for e in entries]
        return schedule

    def add(self, stage: Stage, *entries) -> Schedule:
        """Append systems to a stage (plugins use this); returns self."""
        self.stages[stage].extend(e if isinstance(e, Entry) else Entry(e) for e in entries)
        return self

    def describe(self) -> str:
        """The schedule as text, stage by stage: the data-flow diagram of the app."""
        lines = []
        for stage in STAGE_ORDER:
            names = [e.name for e in self.stages[stage]]
            lines.append(f"{stage.value:>8}: " + (" -> ".join(names) if names else "-"))
        return "\n".join(lines)
