"""Background work state (plain data): the long work of a click (a view's weights, the segmenter's
answer), run in a worker thread while frames go on.

One per viewer App (systems/segmentation/work.py writes it; the panel reads it). Without it (headless
`segment`, a replay of a session recorded before the worker) that work runs inside the frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(slots=True)
class BackgroundWork:
    worker: object                                  # systems.sam.worker.EncoderWorker (a thread of its own)
    wanted: dict = field(default_factory=dict)      # job key -> what the panel says while it computes (or None)
    owners: dict = field(default_factory=dict)      # owner -> the one key it wants (a newer prompt drops the older)
    results: dict = field(default_factory=dict)     # job key -> systems.sam.worker.Finished, arrived and wanted
    ready: set = field(default_factory=set)         # keys announced by WorkDone: their results may be used
    replayed: bool = False                          # WorkDone comes from a recording (collect_work sends none)
    inline: bool = False                            # run jobs inside the frame (replaying a session recorded so)
    seconds: float = 0.0                            # worker time of the jobs finished
    segmenter_lock: threading.Lock = field(default_factory=threading.Lock)   # held while a thread uses the segmenter
