"""The soak benchmark's scripted session, run for the CI's one minute: every action of the cycle
happens, the session is recorded and deleted objects do not pile up. (Its RSS and frame-time
targets are the benchmark's: bench/bench_soak.py, bench/results/soak.json.)"""

import collections
import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gl, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CI_MINUTES = 1.0


def _bench():
    spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "bench_soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_one_minute_soak_runs_every_action(tmp_path):
    from engine.platform.gl import GLUnavailableError, headless_context

    try:
        headless_context().release()
    except GLUnavailableError as error:
        pytest.skip(f"no EGL OpenGL context: {error}")
    import torch

    threads = torch.get_num_threads()
    try:
        result = _bench().soak(CI_MINUTES, W=320, H=180, folder=tmp_path)
    finally:
        torch.set_num_threads(threads)
    lines = (tmp_path / "session.jsonl").read_text().splitlines()
    kinds = collections.Counter(json.loads(line)["data"]["type"].split(".")[-1] if json.loads(line)["kind"] ==
                                "message" else json.loads(line)["kind"] for line in lines[1:])
    for kind in ("camera", "PromptAdded", "CandidatePicked", "UndoRequested", "ClearRequested", "PropagationFinished",
                 "ObjectDeleted", "NewObjectRequested", "grids"):
        assert kinds[kind] >= 1, (kind, kinds)
    assert result["cycles"] >= 1 and result["exports"] >= 1 and (tmp_path / "export.npz").is_file()
    assert result["exports_written"] >= 1 and result["exports_written"] + result["exports_refused"] == result["exports"]
    assert not [f for f in result["slow_frames"] if "export_requested" in f["systems"]]   # the worker carves
    assert result["max_objects"] <= 2                          # each cycle deletes what it made
    assert set(result) >= {"minutes", "rss_mb_after_1min", "rss_mb_end", "rss_mb_peak", "frame_ms_p50",
                           "frame_ms_p99"}


def test_free_camera_view_weights_are_not_kept_without_bound():
    import numpy as np

    from components.camera import Camera
    from components.resources import ViewCache
    from engine.app import App
    from engine.field.fixtures import trained_builtin_field
    from engine.schedule import Schedule
    from systems.sam.factory import make_segmenter
    from systems.segmentation.setup import insert_segmentation
    from systems.segmentation.views import FREE_CAMERAS_KEPT, view_entry

    scene, field = trained_builtin_field()
    app = App(Schedule())
    insert_segmentation(app, scene, field, make_segmenter("fallback"))
    cameras = [Camera.of_view(scene, v).resized(24, 24) for v in range(FREE_CAMERAS_KEPT + 2)]
    first = view_entry(app, cameras[0], None).weights
    for camera in cameras[1:]:
        view_entry(app, camera, None)
    cache = app.resource(ViewCache)
    assert sum(isinstance(k, str) for k in cache.entries) == FREE_CAMERAS_KEPT
    again = view_entry(app, cameras[0], None).weights               # evicted: read again or rebuilt
    assert np.array_equal(again.A.data, first.A.data) and np.array_equal(again.A.indices, first.A.indices)


def test_release_free_heap_returns_the_pages_freed_arrays_kept():
    import numpy as np

    from engine.memory import release_free_heap

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    big = np.ones(1 << 20)                      # 8 MB, mmapped; freeing it raises glibc's mmap threshold
    del big
    arrays = [np.ones(1 << 17) for _ in range(100)]    # 1 MB each, now carved from the heap
    keep = arrays[-1]                           # the newest stays alive: the heap cannot shrink from its top
    del arrays
    before = rss_mb()
    if not release_free_heap():
        pytest.skip("not glibc: no malloc_trim")
    assert before - rss_mb() > 50 and keep.sum() == len(keep)
