"""App: one esper world, typed resources, messages and a schedule, stepped one frame at a time.

The same App runs windowed (a platform resource drives the loop) or headless (tests, batch
commands): it never opens a window itself. Each App owns a fresh esper world, so Apps (and tests)
never share entities.

Change detection is one mechanism: the App stamps a version on a type (a resource's, or a
component's) when a resource of it is inserted or replaced, or when a writer calls
`mark_changed(kind)` after changing one in place; a system asks `changed(kind)` ("has it changed
since I last asked?"; each system has its own cursor, as with messages).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import esper

from engine.messages import Messages
from engine.schedule import STAGE_ORDER, Entry, Schedule, Stage

T = TypeVar("T")
_world_ids = itertools.count()


class MissingResource(KeyError):
    """A system asked for a resource that was never inserted."""


class App:
    def __init__(self, schedule: Schedule | None = None) -> None:
        self.schedule = schedule or Schedule()
        self.world = f"app-{next(_world_ids)}"
        self.messages = Messages()
        self.frame = 0
        self._resources: dict[type, object] = {}
        self._versions: dict[type, int] = {}                # kind -> version stamped last
        self._seen: dict[tuple[str, type], int] = {}        # (system, kind) -> version it saw last
        self._stamps = itertools.count(1)
        self._running_system = "outside"
        self._started = False
        self.exit_requested = False
        self.system_seconds: dict[str, float] = {}   # last frame's time per system
        with self.active():
            esper.clear_database()

    # ---- world -------------------------------------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[App]:
        """Make this App's esper world the current one for the duration of the block."""
        previous = esper.current_world
        esper.switch_world(self.world)
        try:
            yield self
        finally:
            esper.switch_world(previous)

    def close(self) -> None:
        """Drop this App's world (entities, components, processors)."""
        if esper.current_world == self.world:
            esper.switch_world("default")
        esper.delete_world(self.world)

    # ---- resources ---------------------------------------------------------------------------
    def insert_resource(self, value: object) -> None:
        """Store a global value by its type (one per type); replaces an earlier one. Stamps its type changed."""
        self._resources[type(value)] = value
        self.mark_changed(type(value))

    def resource(self, kind: type[T]) -> T:
        """The resource of type `kind`; raises MissingResource if none was inserted."""
        try:
            return self._resources[kind]  # type: ignore[return-value]
        except KeyError:
            raise MissingResource(f"resource {kind.__name__} was never inserted") from None

    def try_resource(self, kind: type[T]) -> T | None:
        return self._resources.get(kind)  # type: ignore[return-value]

    def remove_resource(self, kind: type) -> None:
        self._resources.pop(kind, None)
        self.mark_changed(kind)

    # ---- change detection --------------------------------------------------------------------
    def mark_changed(self, kind: type) -> None:
        """Stamp `kind` (a resource or component type) changed: its writer changed one in place."""
        self._versions[kind] = next(self._stamps)

    def version(self, kind: type) -> int:
        """The version last stamped on `kind` (0: never)."""
        return self._versions.get(kind, 0)

    def changed(self, kind: type) -> bool:
        """Whether `kind` was stamped since the running system last asked (True on its first ask
        once anything was stamped)."""
        key = (self._running_system, kind)
        version = self._versions.get(kind, 0)
        last = self._seen.get(key, 0)
        self._seen[key] = version
        return version != last

    def has_resource(self, kind: type) -> bool:
        return kind in self._resources

    # ---- messages ----------------------------------------------------------------------------
    def send(self, message: object) -> None:
        self.messages.send(message)

    def read(self, kind: type[T]) -> list[T]:
        """Unread messages of `kind` for the system that is running now."""
        return self.messages.read(kind, self._running_system)

    # ---- frames ------------------------------------------------------------------------------
    def step(self) -> None:
        """Run one frame: startup once, then every stage in order; then swap messages."""
        with self.active():
            stages = STAGE_ORDER if not self._started else STAGE_ORDER[1:]
            self._started = True
            for stage in stages:
                for entry in self.schedule.stages[stage]:
                    self._run(entry)
            esper.clear_dead_entities()
        self.messages.swap()
        self.frame += 1

    def run(self, *, max_frames: int | None = None, until: Callable[[App], bool] | None = None) -> int:
        """Step until exit is requested, `until(app)` holds or `max_frames` ran; returns frames run."""
        ran = 0
        while not self.exit_requested and (max_frames is None or ran < max_frames):
            if until is not None and until(self):
                break
            self.step()
            ran += 1
        return ran

    def _run(self, entry: Entry) -> None:
        if any(kind not in self._resources for kind in entry.requires):
            return
        self._running_system = entry.name
        start = time.perf_counter()
        try:
            entry.system(self)
        finally:
            self.system_seconds[entry.name] = time.perf_counter() - start
            self._running_system = "outside"


__all__ = ["App", "MissingResource", "Schedule", "Stage"]
