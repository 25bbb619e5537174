"""The built-in scene: layout, exact masks vs the 3D indicator, determinism and the cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from engine.scenes import builtin_render as br
from engine.scenes import load_scene
from engine.scenes.builtin import builtin_scene, builtin_truth, cache_dir


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache folder, generated once for this module (SA3D_CACHE restored after)."""
    old = os.environ.get("SA3D_CACHE")
    os.environ["SA3D_CACHE"] = str(tmp_path_factory.mktemp("sa3d_cache"))
    yield builtin_scene(), builtin_truth()
    if old is None:
        del os.environ["SA3D_CACHE"]
    else:
        os.environ["SA3D_CACHE"] = old


def test_layout_views_and_split(cache):
    scene, truth = cache
    assert scene.images.shape == (60, 128, 128, 3) and scene.kind == "builtin"
    assert scene.test_ids == tuple(range(0, 60, 8))
    assert sorted(scene.train_ids + scene.test_ids) == list(range(60))
    assert len(truth.object_names) >= 5 and len(set(truth.object_names)) == len(truth.object_names)
    assert truth.instance_masks.shape == (60, 128, 128)
    assert scene.background == br.BACKGROUND
    for k in range(1, len(truth.object_names) + 1):
        visible_in = (truth.instance_masks == k).any((1, 2))
        assert visible_in.sum() > 40, truth.object_names[k - 1]
    # the ground is textured, not one colour
    ground = scene.images[truth.instance_masks == 0]
    assert ground.std(0).max() > 20


def _pixel_rays(scene, i):
    yc, xc = np.meshgrid(np.arange(scene.H) + 0.5, np.arange(scene.W) + 0.5, indexing="ij")
    return br._rays(scene.K[i].astype(np.float64), scene.T_world_camera[i].astype(np.float64),
                    xc, yc)


@pytest.mark.parametrize("view", [3, 29, 55])
def test_instance_ids_backproject_inside_their_object(cache, view):
    scene, truth = cache
    o, d = _pixel_rays(scene, view)
    t, ids, _ = br.trace(o, d)
    assert np.array_equal(np.maximum(ids, 0).reshape(128, 128), truth.instance_masks[view])
    for k in range(1, len(truth.object_names) + 1):
        rows = np.flatnonzero(ids == k)
        points = o[rows] + (t[rows] * (1 + 1e-6))[:, None] * d[rows]  # just past the surface
        assert truth.inside(k, points).mean() > 0.99
        others = [j for j in range(1, len(truth.object_names) + 1) if j != k]
        assert not any(truth.inside(j, points).mean() > 0.01 for j in others)


def test_object_centres_project_into_their_masks(cache):
    scene, truth = cache
    hits = 0
    for k, obj in enumerate(br.OBJECTS, start=1):
        centre, _ = br.bounding_sphere(obj.shape)  # an interior point of every shape here
        assert truth.inside(k, centre[None])[0]
        for i in range(len(scene)):
            T_camera_world = np.linalg.inv(scene.T_world_camera[i].astype(np.float64))
            p = T_camera_world[:3, :3] @ centre + T_camera_world[:3, 3]     # [3] camera coords
            x, y = (scene.K[i] @ p)[:2] / p[2]
            label = truth.instance_masks[i, int(y), int(x)]
            if label == k:
                hits += 1
            else:  # hidden behind another object, never behind the ground or the sky
                assert label != 0, (obj.name, i)
    assert hits > 0.6 * len(br.OBJECTS) * len(scene)


def test_deterministic_and_cached_files(cache):
    scene, truth = cache
    for i in (0, 37):
        rgb, ids, _ = br.render_view(scene.K[i].astype(np.float64),
                                     br.camera_poses()[i], 128, 128)
        assert np.array_equal(rgb, scene.images[i])
        assert np.array_equal(ids, truth.instance_masks[i])
    folder = cache_dir(128)
    stamp = (folder / "transforms.json").stat().st_mtime_ns
    again = builtin_scene()
    assert (folder / "transforms.json").stat().st_mtime_ns == stamp
    assert again.content_hash() == scene.content_hash()
    objects = json.loads((folder / "objects.json").read_text())
    assert [o["name"] for o in objects] == list(truth.object_names)
    mask = np.asarray(Image.open(truth.mask_dir("sphere") / "view_010.png"))
    assert np.array_equal(mask, np.where(truth.instance_masks[10] == 1, 255, 0))
    assert (truth.instance_dir() / "view_010.png").is_file()


def test_generic_loader_reads_the_cache(cache):
    scene, _ = cache
    generic = load_scene(str(cache_dir(128)))
    assert generic.kind == "blender" and generic.test_ids == scene.test_ids
    np.testing.assert_allclose(generic.T_world_camera, br.camera_poses(), atol=1e-6)
    np.testing.assert_allclose(generic.bbox, br.BBOX)
    assert load_scene("builtin").content_hash() == scene.content_hash()


def test_voxel_truth_matches_inside(cache):
    _, truth = cache
    grid = truth.voxel_truth(1, br.BBOX, (9, 21, 21))                     # sphere, [Z, Y, X]
    assert grid.shape == (9, 21, 21) and grid.any()
    z, y, x = np.argwhere(grid)[0]
    point = br.BBOX[0] + np.array([x / 20, y / 20, z / 8]) * (br.BBOX[1] - br.BBOX[0])
    assert truth.inside(1, point[None])[0]
    assert not truth.voxel_truth(1, br.BBOX, (9, 21, 21))[0].any()        # z = -0.05 slab


def test_everything_is_inside_the_bbox():
    lo, hi = br.BBOX.astype(np.float64)
    for obj in br.OBJECTS:
        centre, radius = br.bounding_sphere(obj.shape)
        rng = np.random.default_rng(0)
        points = centre + rng.uniform(-radius, radius, (20000, 3))
        inside = points[obj.shape.inside(points)]
        assert (inside >= lo).all() and (inside <= hi).all(), obj.name
    assert br.GROUND_HALF < hi[0] and br.GROUND_HALF < hi[1] and lo[2] < 0
