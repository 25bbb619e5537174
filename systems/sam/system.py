"""Background encoding as systems: the image encoder runs in a worker thread, never in a frame.

    encode_scene_views (once: the training views, the camera's first, then propagation order)
    -> collect_embeddings (finished jobs -> ViewEncoded) -> [recorder: tap_requests]
    -> mark_encoded (ViewEncoded -> Encoding.ready) -> the segmentation systems

A segmentation system asks `embedding_ready(app, view, image)` before it calls the segmenter on a
view: without an Encoding resource (headless `segment`, a segmenter with no encoder) the answer
is always yes and set_view encodes inline, as before; with one, the view's encoding is posted
(to the front of the queue) and the system tries again on a later frame, once ViewEncoded said
the embedding is there. ViewEncoded is recorded like a click, and a replay feeds it back at the
same point of the session (waiting for its own worker there), so a replay computes what the
session computed: the worker changes when work happens, not what is computed.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from components.encoding import Encoding
from components.messages import ViewEncoded
from components.resources import SceneData, SegmentationSettings, SegmenterHandle
from systems.sam.worker import EncoderWorker, Finished


def can_encode_ahead(segmenter) -> bool:
    """Whether a segmenter splits its costly step off (embedding_key / embed / use_embedding)."""
    return bool(getattr(segmenter, "background", False))


def insert_encoding(app, *, first_view: int | None = None, ahead: bool = True, replayed: bool = False) -> bool:
    """Insert Encoding with its worker when the App's segmenter can encode ahead; returns whether it
    did. ahead: encode the scene's views in the background, `first_view` (the one the camera shows)
    first; replayed: a recording feeds the ViewEncoded messages back (collect_embeddings sends none)."""
    if not can_encode_ahead(app.resource(SegmenterHandle).segmenter):
        return False
    views = scene_views_in_order(app.resource(SceneData).scene, app.resource(SegmentationSettings), first_view)
    app.insert_resource(Encoding(EncoderWorker(), background=tuple(views) if ahead else (), replayed=replayed))
    return True


def scene_views_in_order(scene, settings: SegmentationSettings, first: int | None = None) -> list[int]:
    """The views a scene's embeddings are computed for, in the order they are needed: `first`, then
    the propagation's order (settings.views, else the training views)."""
    views = [int(v) for v in (settings.views if settings.views is not None else scene.train_ids)]
    return ([first] if first is not None else []) + [v for v in views if v != first]


def embedding_ready(app, view, image: np.ndarray) -> bool:
    """Whether the segmenter may run on `view` now (see the module docstring); otherwise posts its
    encoding ahead of the background ones, marks it as waited on, and returns False."""
    encoding = app.try_resource(Encoding)
    if encoding is None or view in encoding.ready:
        return True
    _post(app, encoding, view, image, urgent=True)
    encoding.waiting = view
    return False


def _post(app, encoding: Encoding, view, image: np.ndarray, *, urgent: bool) -> None:
    segmenter = app.resource(SegmenterHandle).segmenter
    if encoding.worker.post(view, partial(segmenter.embed, np.ascontiguousarray(image)), urgent=urgent):
        encoding.posted.append(view)


def encode_scene_views(app) -> None:
    """Reads Encoding.background and the scene's photos; posts every background view to the worker
    once (the first frame)."""
    encoding = app.resource(Encoding)
    if encoding.posted and set(encoding.background) <= set(encoding.posted):
        return
    images = app.resource(SceneData).scene.images
    for view in encoding.background:
        _post(app, encoding, view, np.asarray(images[view]), urgent=False)


def collect_embeddings(app) -> None:
    """Reads the worker's finished jobs; writes Encoding (arrived, seconds, errors); sends ViewEncoded
    for each, unless a recording feeds them back (Encoding.replayed)."""
    encoding = app.resource(Encoding)
    for done in encoding.worker.poll():
        _arrived(encoding, done)
        if not encoding.replayed:
            app.send(ViewEncoded(done.key))


def _arrived(encoding: Encoding, done: Finished) -> None:
    encoding.arrived.add(done.key)
    encoding.seconds += done.seconds
    if done.error is not None:             # set_view reruns it inline and reports it on the prompt
        encoding.errors.append(f"encoding view {done.key} failed: {str(done.error).splitlines()[0][:120]}")


def mark_encoded(app) -> None:
    """Reads ViewEncoded; writes Encoding.ready (and clears `waiting` once its view is ready). A view
    announced before its job came back here (a replay runs ahead of its worker) is waited for; a
    scene view that was not posted yet (the session encoded it in the background) is posted first."""
    encoding = app.try_resource(Encoding)
    for message in app.read(ViewEncoded):
        if encoding is None:
            continue
        if message.view not in encoding.arrived:
            if isinstance(message.view, int) and message.view not in encoding.posted:
                _post(app, encoding, message.view, np.asarray(app.resource(SceneData).scene.images[message.view]),
                      urgent=True)
            done = encoding.worker.wait(message.view)
            if done is not None:
                _arrived(encoding, done)
        encoding.ready.add(message.view)
        if encoding.waiting == message.view:
            encoding.waiting = None


def stop_encoding(app) -> None:
    """End the background encoder of an App that is closing: drop its queue, interrupt the run in
    flight, wait for the thread (no-op without Encoding)."""
    encoding = app.try_resource(Encoding)
    if encoding is None:
        return
    segmenter = app.resource(SegmenterHandle).segmenter
    if hasattr(segmenter, "stop_encoding"):
        segmenter.stop_encoding()
    encoding.worker.close()


def encoding_lines(app) -> list[str]:
    """What the panel shows: the view a prompt waits on, the background progress, the last error."""
    encoding = app.try_resource(Encoding)
    if encoding is None:
        return []
    names = app.resource(SceneData).scene.view_names
    lines = []
    if encoding.waiting is not None:
        name = names[encoding.waiting] if isinstance(encoding.waiting, int) else "of the free camera"
        lines.append(f"encoding view {name} ... (answered when it is ready)")
    left = [v for v in encoding.background if v not in encoding.arrived]
    if left:
        done = len(encoding.background) - len(left)
        lines.append(f"encoding views in the background: {done}/{len(encoding.background)}")
    return lines + encoding.errors[-1:]
