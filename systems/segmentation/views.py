"""View entries: a view's sparse pixel->primitive weights, depth and image, built once per scene model.

Rendering a view's weights is one render of the frozen scene (the expensive part of a new view);
they are kept in memory (ViewCache) and, for a field read from a file, on disk
(systems/inverse/weights_cache.py), so another run on the same field renders none.
`ready_view_entry` is what the systems of a viewer frame ask: with a background worker
(systems/segmentation/work.py) a missing entry is built there while frames go on. `prepare_views`
builds the next views a propagation needs: ahead of it in the worker, else one per frame.
"""

from __future__ import annotations

import hashlib
import time
from functools import partial

import esper
import numpy as np

from components.camera import Camera
from components.resources import SceneData, SegmentationSettings, ViewCache, ViewEntry
from components.segmentation import Propagation
from systems.segmentation.work import in_background, result_of

FREE_CAMERAS_KEPT = 4   # free-camera entries kept in memory (the newest); older ones are read again from
                        # the disk store (or rebuilt, bit for bit) when asked for: a long session stays flat
VIEWS_AHEAD = 2         # with a background worker, a propagation's next views built ahead of it


def view_key(camera: Camera, view: int | None) -> int | str:
    """Cache key: the scene view index, or a hash of a free camera's K, pose and size."""
    if view is not None:
        return int(view)
    h = hashlib.sha256(np.ascontiguousarray(camera.K, np.float32).tobytes())
    h.update(np.ascontiguousarray(camera.T_world_camera, np.float32).tobytes())
    h.update(f"{camera.H}x{camera.W}".encode())
    return "camera:" + h.hexdigest()[:16]


def build_entry(data: SceneData, settings: SegmentationSettings, camera: Camera, view: int | None,
                store=None) -> tuple[ViewEntry, bool]:
    """(entry, built): the view's weights from `store` (a WeightsCache) when it holds them, else one
    render of `camera` by the frozen scene (SceneData.representation), stored there.

    The segmenter sees the scene's photo for a scene view at the scene's size (the render's
    colours are then not computed), else the render.
    """
    from systems.inverse.weights_cache import weights_key

    scene = data.scene
    photo = view is not None and (camera.H, camera.W) == (scene.H, scene.W)
    key = hit = None
    if store is not None:
        key = weights_key(data.field_hash, data.device, camera.K, camera.T_world_camera, camera.H, camera.W,
                          settings.weight_cutoff, settings.min_entry)
        hit = store.get(key)
        if hit is not None and not photo and hit[2].size == 0:
            hit = None                                       # stored without the render's colours
    if hit is not None:
        weights, depth, rgb = hit
    else:
        samples = data.representation.view_samples(camera, weight_cutoff=settings.weight_cutoff,
                                                   min_entry=settings.min_entry, color=not photo)
        weights, depth = samples.weights, samples.depth
        rgb = np.zeros((0, 0, 3), np.uint8) if photo else (samples.rgb * 255.0 + 0.5).astype(np.uint8)
        if store is not None:
            store.put(key, weights, depth, rgb)
    if photo:
        image, name = np.asarray(scene.images[view]), scene.view_names[view]
    else:
        image, name = rgb, scene.view_names[view] if view is not None else None
    return ViewEntry(weights=weights, depth=depth, image=image, name=name), hit is None


def timed_build(data: SceneData, settings: SegmentationSettings, camera: Camera, view: int | None,
                store=None) -> tuple[ViewEntry, bool, float]:
    """build_entry and the seconds it took (a job of the background worker)."""
    start = time.perf_counter()
    entry, built = build_entry(data, settings, camera, view, store)
    return entry, built, time.perf_counter() - start


def _keep(cache: ViewCache, key, entry: ViewEntry, built: bool, seconds: float) -> ViewEntry:
    """Store a built (or loaded) entry in ViewCache, dropping the oldest free cameras' beyond FREE_CAMERAS_KEPT."""
    cache.entries[key] = entry
    cache.built += built
    cache.loaded += not built
    cache.seconds += seconds
    free = [k for k in cache.entries if isinstance(k, str)]
    for old in free[:max(0, len(free) - FREE_CAMERAS_KEPT)]:
        del cache.entries[old]
    return entry


def keep_view_entries(app, built: dict) -> None:
    """Writes ViewCache: entries built outside it (view key -> timed_build's result, e.g. by an
    export in the background worker), unless it holds the key by now."""
    cache = app.resource(ViewCache)
    for key, result in built.items():
        if key not in cache.entries:
            _keep(cache, key, *result)


def _job(app, camera: Camera, view: int | None):
    return partial(timed_build, app.resource(SceneData), app.resource(SegmentationSettings), camera, view,
                   app.resource(ViewCache).store)


def view_entry(app, camera: Camera, view: int | None) -> ViewEntry:
    """The cached entry of a view, built (or read from the disk cache) now if missing (ViewCache
    is the only writer's store)."""
    cache = app.resource(ViewCache)
    key = view_key(camera, view)
    if key not in cache.entries:
        _keep(cache, key, *_job(app, camera, view)())
    return cache.entries[key]


def ready_view_entry(app, camera: Camera, view: int | None, *, urgent: bool = True) -> ViewEntry | None:
    """The entry of a view, or None while the background worker builds it (posted on the first ask,
    `urgent`: ahead of the queued work); without a worker, view_entry."""
    cache = app.resource(ViewCache)
    key = view_key(camera, view)
    if key in cache.entries or in_background(app) is None:
        return view_entry(app, camera, view)
    name = app.resource(SceneData).scene.view_names[view] if view is not None else "the free camera"
    done, result = result_of(app, ("weights", key), _job(app, camera, view),
                             label=f"computing the weights of {name} ...", urgent=urgent)
    return _keep(cache, key, *result) if done else None


def scene_view_entry(app, view: int) -> ViewEntry:
    """The entry of scene view `view` at the scene's resolution."""
    return view_entry(app, Camera.of_view(app.resource(SceneData).scene, view), view)


def prepare_views(app) -> None:
    """Reads running Propagations; writes ViewCache: the entries of the first queued views that are
    missing, VIEWS_AHEAD of them built in the background worker, else one built in the frame (so a
    viewer frame stays bounded)."""
    cache = app.resource(ViewCache)
    scene = app.resource(SceneData).scene
    for _, propagation in sorted(esper.get_component(Propagation), key=lambda e: e[0]):
        missing = [v for v in propagation.queue if v not in cache.entries]
        if not propagation.finished and missing:
            ahead = VIEWS_AHEAD if in_background(app) is not None else 1
            for view in missing[:ahead]:
                ready_view_entry(app, Camera.of_view(scene, view), view, urgent=False)
            return
