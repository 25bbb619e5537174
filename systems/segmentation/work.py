"""The viewer's long work in a worker thread: a view's weights, the segmenter's answers (to a click,
and to each view of a propagation) and exports (systems/export/system.py).

    collect_work (finished jobs -> WorkDone) -> [recorder: tap_requests] -> mark_work_done
    (WorkDone -> BackgroundWork.ready) -> the segmentation systems (result_of takes the results)

A system that needs such a result calls `result_of(app, key, job, ...)`: without BackgroundWork
(headless `segment`, a replay of a session recorded before the worker) the job runs at once,
inside the frame; with it, the job is posted once and the system asks again on later frames until
WorkDone said the result is there. WorkDone is recorded like a click (as ViewEncoded is), and a
replay feeds it back at the same point of the session, waiting for its own worker there: the
worker changes when work happens, not what is computed. A newer request of the same owner (an
object whose prompts changed before its answer came) drops the older job.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext

from components.messages import WorkDone
from components.work import BackgroundWork
from systems.sam.worker import EncoderWorker

WORKER_NICE = 0     # the user waits for this work: it shares the cores evenly with the frame loop
                    # (the encoder's speculative work runs niced, systems/sam/worker.py)


def insert_background_work(app, *, replayed: bool = False) -> None:
    """Insert BackgroundWork with its worker thread (the viewer does, and a replay of a session that
    did; headless `segment` does not). replayed: a recording feeds the WorkDone messages back."""
    app.insert_resource(BackgroundWork(EncoderWorker(nice=WORKER_NICE), replayed=replayed))


def in_background(app) -> BackgroundWork | None:
    """The App's BackgroundWork when its jobs run in the worker, else None (they run in the frame)."""
    work = app.try_resource(BackgroundWork)
    return None if work is None or work.inline else work


def result_of(app, key: tuple, job: Callable[[], object], *, label: str | None, owner: Hashable = None,
              urgent: bool = True) -> tuple[bool, object]:
    """(True, job's result) when it is there, else (False, None) while the worker computes it (the
    job is posted on the first ask; `label` is what the panel says meanwhile, None for a job whose
    system lists it itself; a job of `owner` under another key is dropped). A job that raised
    raises here. Without a worker: (True, job())."""
    work = in_background(app)
    if work is None:
        return True, job()
    if key in work.ready:
        done = _take(work, key)
        if done is None:                     # announced by a recording, never computed here
            return True, job()
        if done.error is not None:
            raise done.error
        return True, done.result
    if owner is not None:
        older = work.owners.get(owner)
        if older is not None and older != key:
            _drop(work, older)
        work.owners[owner] = key
    if key not in work.wanted:
        work.wanted[key] = label
        work.worker.post(key, job, urgent=urgent)
    return False, None


def keep_only(app, kind: str, owners: set) -> None:
    """Drop the jobs of the owners ("kind", ...) not in `owners` (e.g. objects cleared or deleted
    while their answer was computed)."""
    work = in_background(app)
    if work is not None:
        for owner in [o for o in work.owners if o[0] == kind and o not in owners]:
            _drop(work, work.owners[owner])


def _take(work: BackgroundWork, key: tuple):
    work.ready.discard(key)
    work.wanted.pop(key, None)
    for owner in [o for o, k in work.owners.items() if k == key]:
        del work.owners[owner]
    work.worker.forget(key)
    return work.results.pop(key, None)


def _drop(work: BackgroundWork, key: tuple) -> None:
    """No one wants key any more: cancel its job if it has not started, forget its result."""
    _take(work, key)
    work.worker.cancel(key)


def segmenter_lock(app) -> AbstractContextManager:
    """What a thread holds while it uses the segmenter: BackgroundWork's lock, or nothing without one."""
    work = app.try_resource(BackgroundWork)
    return nullcontext() if work is None else work.segmenter_lock


def collect_work(app) -> None:
    """Reads the worker's finished jobs; writes BackgroundWork (results of the wanted ones, seconds);
    sends WorkDone for each, unless a recording feeds them back (BackgroundWork.replayed)."""
    work = app.resource(BackgroundWork)
    for done in work.worker.poll():
        work.seconds += done.seconds
        if done.key in work.wanted:
            work.results[done.key] = done
            if not work.replayed:
                app.send(WorkDone(done.key))


def mark_work_done(app) -> None:
    """Reads WorkDone; writes BackgroundWork.ready. A result announced before its job came back here
    (a replay runs ahead of its worker) is waited for."""
    work = app.try_resource(BackgroundWork)
    for message in app.read(WorkDone):
        if work is None or message.key not in work.wanted:
            continue
        if message.key not in work.results:
            done = work.worker.wait(message.key)
            if done is not None:
                work.seconds += done.seconds
                work.results[message.key] = done
        work.ready.add(message.key)


def announce_from_now(app) -> None:
    """A replay fed the App up to here: from now on the worker's results are announced as they come
    (and those that came during the replay without a recorded WorkDone are announced now)."""
    work = app.try_resource(BackgroundWork)
    if work is None:
        return
    if work.replayed:
        for key in [k for k in work.results if k not in work.ready]:
            app.send(WorkDone(key))
    work.replayed = work.inline = False


def stop_work(app) -> None:
    """End the worker of an App that is closing: drop its queue, wait for the job it runs (no-op
    without BackgroundWork). The jobs still wanted, and any asked later, then run in the frame."""
    work = app.try_resource(BackgroundWork)
    if work is not None:
        work.worker.close()
        work.inline = True


def work_lines(app) -> list[str]:
    """What the panel shows: each result being computed that has a label (exports list themselves:
    systems/export/system.export_lines)."""
    work = in_background(app)
    if work is None:
        return []
    return list(dict.fromkeys(label for key, label in work.wanted.items()
                              if key not in work.ready and label is not None))


def work_in_flight(app) -> bool:
    """Whether the worker computes a result someone waits for (the presenter leaves it the cores)."""
    work = in_background(app)
    return work is not None and any(key not in work.ready for key in work.wanted)
