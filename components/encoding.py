"""Background encoding state (plain data): which views' embeddings the segmenter may use.

One per App whose segmenter can encode ahead (systems/sam/system.py writes it; the panel reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Encoding:
    worker: object                                  # systems.sam.worker.EncoderWorker
    ready: set = field(default_factory=set)         # view keys announced by ViewEncoded: usable now
    arrived: set = field(default_factory=set)       # view keys whose job finished (announced or not)
    posted: list = field(default_factory=list)      # view keys posted to the worker, in order
    background: tuple = ()                          # the views queued when the scene opened (ahead of use)
    waiting: object = None                          # the view a prompt waits on ("encoding view ...")
    replayed: bool = False                          # arrivals come from a recording (ViewEncoded fed back)
    seconds: float = 0.0                            # encoder time of the jobs finished
    errors: list = field(default_factory=list)      # one line per failed job
