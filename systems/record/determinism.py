"""The settings that change a replay's bits, stated in the recording header and applied by replay.

Header key "determinism": {"torch_threads", "dtype", "torch", "numpy", "scipy"}. The thread count
matters wherever torch splits an elementwise operation over threads (its vectorised and scalar
paths round differently at the split points); the library versions are compared, and a
difference is a notice (the grids may differ), since replay cannot change them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import scipy
import torch

DTYPE = "float32"   # the mask grid, the view weights and the votes


def current_settings() -> dict:
    """This process's settings that change the bits of a session."""
    return {"torch_threads": torch.get_num_threads(), "dtype": DTYPE, "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__}


def differences(recorded: dict | None) -> list[str]:
    """One notice per library version that differs from the recording's (none for old files)."""
    if not isinstance(recorded, dict):
        return []
    now = current_settings()
    return [f"recorded with {name} {recorded[name]}, replaying with {now[name]}: the grids may differ in "
            f"their last bits" for name in ("torch", "numpy", "scipy", "dtype")
            if name in recorded and recorded[name] != now[name]]


@contextlib.contextmanager
def recorded_threads(recorded: dict | None) -> Iterator[int]:
    """Run the block with torch on the recorded thread count (this process's own when the file
    states none), then restore the previous count. Yields the count in force."""
    before = torch.get_num_threads()
    wanted = recorded.get("torch_threads") if isinstance(recorded, dict) else None
    threads = wanted if isinstance(wanted, int) and wanted >= 1 else before
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
