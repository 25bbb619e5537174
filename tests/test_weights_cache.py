"""The view-weights disk cache: hit, miss after the field changes, LRU eviction, damaged files rebuilt;
and the fast marcher's weights against the reference marcher's on a trained field."""

import os

import numpy as np
import pytest
from scipy import sparse

from components.camera import Camera
from components.resources import SceneData, SegmentationSettings, ViewCache
from engine.app import App
from engine.field.fixtures import trained_builtin_field
from engine.schedule import Schedule
from systems.inverse.frozen import frozen_view_weights
from systems.inverse.ops import blocked_rmatvec, coverage_mask, mask_iou
from systems.inverse.weights_cache import SUFFIX, WeightsCache, weights_key
from systems.sam.gt import GtSegmenter
from systems.segmentation.plugin import segmentation_plugin
from systems.segmentation.setup import insert_segmentation
from systems.segmentation.views import scene_view_entry


@pytest.fixture(scope="module")
def trained():
    return trained_builtin_field()


def _app(trained, field_hash, folder):
    scene, field = trained
    app = App(segmentation_plugin(Schedule()))
    insert_segmentation(app, scene, field, GtSegmenter(folder), SegmentationSettings(), field_hash=field_hash)
    return app


def _on_voxels(view):
    """The view's matrix with a column per voxel of the grid (views differ in the voxels they list)."""
    A = view.A.tocoo()
    return sparse.csr_matrix((A.data, (A.row, view.primitives[A.col])),
                             shape=(A.shape[0], int(np.prod(view.mask_shape))))


@pytest.mark.parametrize("marcher", ["compiled", "torch"])
def test_fast_marching_weights_match_the_reference_on_a_trained_field(trained, marcher):
    scene, field = trained
    settings = SegmentationSettings()
    ious = []
    for view in scene.train_ids[:2]:
        camera = Camera.of_view(scene, view)
        fast, _ = frozen_view_weights(field, camera, weight_cutoff=settings.weight_cutoff,
                                      min_entry=settings.min_entry, marcher=marcher)
        ref, _ = frozen_view_weights(field, camera, weight_cutoff=settings.weight_cutoff,
                                     min_entry=settings.min_entry, marcher="reference")
        assert ref.nnz > 5_000 and abs(fast.nnz - ref.nnz) <= 1e-3 * ref.nnz
        assert abs(_on_voxels(fast) - _on_voxels(ref)).max() <= 1e-3
        assert np.abs(fast.pixel_weight - ref.pixel_weight).max() <= 1e-3
        votes = np.zeros((1, *field.resolution), np.float32)   # an object: the voxels of the middle third
        Z = field.resolution[0]
        votes[0, Z // 3: 2 * Z // 3] = 1.0
        ious.append(mask_iou(coverage_mask(fast, votes)[0], coverage_mask(ref, votes)[0]))
    assert min(ious) >= 0.995


def test_a_second_app_on_the_same_field_loads_every_view_and_a_changed_field_builds(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path / "cache"))
    first = _app(trained, "hash-a", tmp_path)
    views = trained[0].train_ids[:2]
    built = [scene_view_entry(first, v) for v in views]
    assert first.resource(ViewCache).built == 2 and first.resource(ViewCache).loaded == 0
    second = _app(trained, "hash-a", tmp_path)
    again = [scene_view_entry(second, v) for v in views]
    cache = second.resource(ViewCache)
    assert cache.built == 0 and cache.loaded == 2
    for a, b in zip(built, again):
        assert (a.weights.A != b.weights.A).nnz == 0 and np.array_equal(a.depth, b.depth)
        assert np.array_equal(a.weights.pixel_weight, b.weights.pixel_weight)
        assert np.array_equal(a.image, b.image)
    changed = _app(trained, "hash-b", tmp_path)          # another field file: nothing reused
    scene_view_entry(changed, views[0])
    assert changed.resource(ViewCache).built == 1
    in_memory = _app(trained, "none", tmp_path)          # a field of no file: no disk cache
    assert in_memory.resource(ViewCache).store is None


def test_the_key_covers_field_device_camera_and_cutoffs():
    K, T = np.eye(3), np.eye(4)
    base = weights_key("f", "cpu", K, T, 8, 8, 1e-2, 1e-3)
    moved = T.copy()
    moved[0, 3] = 0.5
    others = [weights_key("g", "cpu", K, T, 8, 8, 1e-2, 1e-3), weights_key("f", "cuda", K, T, 8, 8, 1e-2, 1e-3),
              weights_key("f", "cpu", K * 2, T, 8, 8, 1e-2, 1e-3), weights_key("f", "cpu", K, moved, 8, 8, 1e-2, 1e-3),
              weights_key("f", "cpu", K, T, 8, 9, 1e-2, 1e-3), weights_key("f", "cpu", K, T, 8, 8, 2e-2, 1e-3),
              weights_key("f", "cpu", K, T, 8, 8, 1e-2, 2e-3)]
    assert base == weights_key("f", "cpu", K, T, 8, 8, 1e-2, 1e-3) and base not in others
    assert len(set(others)) == len(others)


def _entry(trained, view=0):
    scene, field = trained
    camera = Camera.of_view(scene, view).resized(24, 32)
    weights, rendered = frozen_view_weights(field, camera, weight_cutoff=1e-2, min_entry=1e-3)
    return weights, rendered.depth.numpy(), (rendered.rgb.numpy() * 255).astype(np.uint8)


def test_least_recently_used_files_are_evicted_above_the_cap(trained, tmp_path):
    entry = _entry(trained)
    store = WeightsCache(tmp_path, cap=10**9)
    store.put("a", *entry)
    size = store.path("a").stat().st_size
    store.cap = int(2.5 * size)
    store.put("b", *entry)
    for name, age in (("a", 300), ("b", 200)):                 # a is older than b ...
        os.utime(store.path(name), (0, store.path(name).stat().st_mtime - age))
    assert store.get("a") is not None                           # ... until it is read
    store.put("c", *entry)
    assert sorted(p.stem for p in tmp_path.glob(f"*{SUFFIX}")) == ["a", "c"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_damaged_file_is_a_miss_and_is_rebuilt(trained, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path / "cache"))
    app = _app(trained, "hash-d", tmp_path)
    good = scene_view_entry(app, 0)
    (path,) = (tmp_path / "cache" / "view-weights").glob(f"*{SUFFIX}")
    data = path.read_bytes()
    broken = {"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"not a cache file" * 10,
              "flip": data[:2000] + bytes(b ^ 0xFF for b in data[2000:2400]) + data[2400:]}[damage]
    path.write_bytes(broken)
    again = _app(trained, "hash-d", tmp_path)
    rebuilt = scene_view_entry(again, 0)
    assert again.resource(ViewCache).built == 1
    assert (rebuilt.weights.A != good.weights.A).nnz == 0
    assert WeightsCache(path.parent).get(path.stem) is not None   # rewritten whole
    assert again.resource(SceneData).field_hash == "hash-d"


def _mapped(array: np.ndarray) -> bool:
    """Whether `array` views the pages of a memory-mapped file (np.memmap somewhere below it)."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return False


def test_a_hit_is_mapped_from_the_file_and_its_row_blocks_copy_nothing(trained, tmp_path):
    weights, depth, rgb = _entry(trained)
    store = WeightsCache(tmp_path)
    store.put("k", weights, depth, rgb)
    hit, hit_depth, hit_rgb = store.get("k")
    assert all(map(_mapped, (hit.A.data, hit.A.indices, hit.A.indptr, hit.primitives, hit.col_sums, hit_depth)))
    assert not _mapped(weights.A.data)
    assert all(np.shares_memory(block.data, hit.A.data) and np.shares_memory(transposed.indices, hit.A.indices)
               for _, block, transposed in hit.blocks)
    assert (hit.A != weights.A).nnz == 0 and np.array_equal(hit_rgb, rgb)
    s = np.random.default_rng(0).random(hit.A.shape[0], dtype=np.float32)
    assert np.allclose(blocked_rmatvec(hit, s), weights.A.T @ s, rtol=1e-5, atol=1e-6)
