"""Double-buffered typed messages: what one system tells others, named as facts or requests.

A message sent in frame N can be read during frame N (by systems that run after the sender) and
during frame N + 1 (by every system); then it is dropped. Each reader has its own cursor, so a
system sees every message once, whatever its place in the schedule.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeVar

T = TypeVar("T")


class Messages:
    def __init__(self) -> None:
        self._previous: dict[type, list[tuple[int, Any]]] = defaultdict(list)
        self._current: dict[type, list[tuple[int, Any]]] = defaultdict(list)
        self._cursors: dict[tuple[str, type], int] = {}
        self._next_id = 0

    def send(self, message: Any) -> None:
        """Queue `message` for readers of its type during this frame and the next."""
        self._current[type(message)].append((self._next_id, message))
        self._next_id += 1

    def read(self, kind: type[T], reader: str) -> list[T]:
        """Messages of `kind` that `reader` has not seen yet, oldest first."""
        seen = self._cursors.get((reader, kind), -1)
        fresh = [(i, m) for i, m in self._previous[kind] + self._current[kind] if i > seen]
        if fresh:
            self._cursors[(reader, kind)] = fresh[-1][0]
        return [m for _, m in fresh]

    def pending(self, kind: type) -> int:
        """How many messages of `kind` are alive (this frame's and last frame's)."""
        return len(self._previous[kind]) + len(self._current[kind])

    def swap(self) -> None:
        """End of frame: last frame's messages are dropped, this frame's become last frame's."""
        self._previous = self._current
        self._current = defaultdict(list)
