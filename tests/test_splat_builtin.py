"""`builtin-gs`: Gaussians on the built-in scene's surfaces, their instance ids, and their renders
against the built-in scene's exact images and instance masks."""

import numpy as np
import pytest
import torch

from engine.scenes import builtin_render as br
from engine.splats.builtin_gs import builtin_splats, generate, quaternions_to
from engine.splats.project import rotation_matrices
from engine.splats.raster import render_splats

SPACING = 0.03


@pytest.fixture(scope="module")
def coarse():
    return generate(64, SPACING)


def test_quaternions_turn_z_onto_the_normals():
    normals = np.array([[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0], [0.6, 0, 0.8], [0, -0.8, 0.6]])
    R = rotation_matrices(torch.from_numpy(quaternions_to(normals)))
    assert np.allclose(R[:, :, 2].numpy(), normals, atol=1e-6)


def test_each_gaussian_lies_on_the_surface_of_its_instance(coarse):
    cloud, ids = coarse
    means = cloud.means.numpy().astype(np.float64)
    normals = rotation_matrices(cloud.quats)[:, :, 2].numpy()
    assert set(np.unique(ids)) == set(range(len(br.OBJECTS) + 1))
    for k, obj in enumerate(br.OBJECTS, start=1):
        on = ids == k
        inset = 1.25 * 3.2 / br.intrinsics(64)[0, 0]                              # 1.25 px at 64 px
        assert obj.shape.inside(means[on] + (inset - 1e-3) * normals[on]).mean() > 0.98   # just under
        assert not obj.shape.inside(means[on] + (inset + 1e-3) * normals[on]).any()       # and beyond
    ground = ids == 0
    assert np.abs(means[ground, 2] + inset).max() < 1e-3                         # 1.25 px under the ground
    assert (np.abs(means[ground, :2]) <= br.GROUND_HALF + 1e-6).all()


def test_renders_match_the_built_in_images_and_instance_masks(coarse):
    from engine.scenes.builtin import builtin_scene, builtin_truth

    cloud, ids = generate(64, 0.015)
    scene, truth = builtin_scene(64), builtin_truth(64)
    for view in (1, 30, 50):
        r = render_splats(cloud, scene.K[view], scene.T_world_camera[view], 64, 64, background=br.BACKGROUND)
        error = np.abs(r.rgb.numpy() * 255 - scene.images[view]).mean(-1)        # [H, W] in 0..255
        assert np.median(error) < 3.0                          # surfaces: the same colours
        assert (error > 30).mean() < 0.2                       # edges: point samples against 2x2 box filtered
        onehot = np.eye(len(br.OBJECTS) + 1, dtype=np.float32)[ids]                   # [N, K + 1]
        votes = r.weights @ onehot                                                     # [H*W, K + 1]
        label = np.where(votes.max(1) > 0.5, votes.argmax(1), 0).reshape(64, 64)
        assert (label == truth.instance_masks[view]).mean() > 0.97


def test_the_cache_holds_the_same_cloud_and_ids(tmp_path, monkeypatch, coarse):
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path))
    first = builtin_splats(64, SPACING)
    assert (first.folder / "point_cloud.ply").is_file()
    again = builtin_splats(64, SPACING)
    assert torch.equal(first.cloud.means, coarse[0].means) and np.array_equal(again.instance_ids, coarse[1])
    assert again.cloud.vertex.tobytes() == first.cloud.vertex.tobytes()
