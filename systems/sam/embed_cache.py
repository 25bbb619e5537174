"""SAM image-embedding cache: an in-memory LRU in front of one file per image on disk.

An entry is what SamPredictor.set_image computes: `features` [1, C, h, w] float32 (CPU copy),
`original_size` (H, W) and `input_size` (h', w'); HQ-SAM models add `interm` [1, h, w, C_vit], the
encoder's early features. Files are `<key>.pt`, written atomically; an unreadable file is treated
as a miss (and rewritten by the caller). Safe to share between the main thread and a worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from engine.io import atomic_path


class EmbeddingCache:
    """get / put of embedding entries by key; `folder=None` keeps them in memory only."""

    def __init__(self, folder: str | Path | None, max_in_memory: int = 8):
        self.folder = Path(folder).expanduser() if folder is not None else None
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        """The entry stored under key (memory first, then disk), or None."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self.folder is None or not (self.folder / f"{key}.pt").is_file():
            return None
        import torch
        try:
            entry = torch.load(self.folder / f"{key}.pt", map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, ValueError):
            return None
        self._remember(key, entry)
        return entry

    def put(self, key: str, entry: dict) -> None:
        """Store an entry in memory and (atomically) on disk."""
        self._remember(key, entry)
        if self.folder is not None:
            import torch
            with atomic_path(self.folder / f"{key}.pt") as tmp:
                torch.save(entry, tmp)

    def _remember(self, key: str, entry: dict) -> None:
        with self._lock:
            self._memory[key] = entry
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_in_memory:
                self._memory.popitem(last=False)
