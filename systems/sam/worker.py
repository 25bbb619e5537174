"""A background worker for long jobs (image-encoder runs; in the viewer, also a view's weights and the
segmenter's answer to a click): one daemon thread that runs posted jobs in order.

The caller posts (key, job) pairs and polls the finished ones without ever waiting (the viewer's
frame), or waits for one key (a replay, a headless command). An urgent job (the view the user just
clicked) goes to the front of the queue; a job that has not started can be cancelled. torch (and
numba's compiled marcher, scipy's sparse solver) release the GIL inside their kernels, so a frame
loop keeps running while a job computes (torch's intra-op thread count is process-wide: the worker
runs with whatever the process set). The encoder's thread runs at a lower scheduling priority
(`nice`, where the OS allows it per thread, as Linux does), so the frame loop gets the cores first
and the encoder the rest. A job that raises is delivered as its exception, never lost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

NICE = 10                                   # the worker thread's niceness above the frame loop's


@dataclass(frozen=True)
class Finished:
    key: Hashable
    result: object = None                  # the job's return value
    error: BaseException | None = None     # what it raised, if it raised
    seconds: float = 0.0                   # its wall time in the worker


class EncoderWorker:
    """post / poll / wait of keyed jobs run on one thread (see the module docstring)."""

    def __init__(self, nice: int = NICE) -> None:
        self.nice = nice
        self._queue: deque[tuple[Hashable, Callable[[], object]]] = deque()
        self._finished: OrderedDict[Hashable, Finished] = OrderedDict()   # done, not polled yet
        self._known: set[Hashable] = set()                                # queued, running or done
        self._running: Hashable | None = None
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="sa3d-encoder", daemon=True)
        self._thread.start()

    def post(self, key: Hashable, job: Callable[[], object], *, urgent: bool = False) -> bool:
        """Queue job() under key unless that key was posted before (an urgent post of a queued key
        moves it to the front); returns whether it is new."""
        with self._cv:
            if key in self._known:
                if urgent and any(k == key for k, _ in self._queue):
                    entry = next(e for e in self._queue if e[0] == key)
                    self._queue.remove(entry)
                    self._queue.appendleft(entry)
                return False
            self._known.add(key)
            (self._queue.appendleft if urgent else self._queue.append)((key, job))
            self._cv.notify_all()
            return True

    def poll(self) -> list[Finished]:
        """The jobs finished since the last poll, in the order they finished; never blocks."""
        with self._cv:
            done = list(self._finished.values())
            self._finished.clear()
            return done

    def wait(self, key: Hashable, timeout: float | None = None) -> Finished | None:
        """Block until the job under key finishes and return it (taken out of the next poll); None
        when it was never posted, was polled already, or the timeout passed."""
        with self._cv:
            self._cv.wait_for(lambda: key in self._finished or key not in self._known or self._closed,
                              timeout=timeout)
            return self._finished.pop(key, None)

    def cancel(self, key: Hashable) -> bool:
        """Drop the job under key if it has not started (and allow the key again); returns whether it
        was dropped (a running or finished job is not: its result still comes)."""
        with self._cv:
            entry = next((e for e in self._queue if e[0] == key), None)
            if entry is None:
                return False
            self._queue.remove(entry)
            self._known.discard(key)
            self._cv.notify_all()
            return True

    def forget(self, key: Hashable) -> None:
        """Allow key to be posted again (after its result was used, or to retry after an error)."""
        with self._cv:
            self._known.discard(key)
            self._finished.pop(key, None)

    @property
    def queued(self) -> int:
        """Jobs waiting or running."""
        with self._cv:
            return len(self._queue) + (self._running is not None)

    @property
    def native_id(self) -> int | None:
        """The worker thread's OS id (its CPU time can be read from /proc on Linux)."""
        return self._thread.native_id

    @property
    def running(self) -> Hashable | None:
        """The key being computed now, if any."""
        return self._running

    def close(self, timeout: float = 10.0) -> None:
        """Drop the queued jobs and wait (at most timeout s) for the thread to end after the job it
        runs: a process must not exit while the thread is inside a torch kernel."""
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        import os
        import time

        try:
            thread = threading.get_native_id()                 # this thread only, on Linux; relative
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + self.nice))
        except (AttributeError, OSError):
            pass                            # no per-thread priority here: the encoder shares the cores evenly
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                key, job = self._queue.popleft()
                self._running = key
            start = time.perf_counter()
            try:
                done = Finished(key, result=job())
            except Exception as error:  # delivered to the caller, who reports it
                done = Finished(key, error=error)
            with self._cv:
                self._running = None
                self._finished[key] = Finished(done.key, done.result, done.error, time.perf_counter() - start)
                self._cv.notify_all()
