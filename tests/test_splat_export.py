"""Exporting a segmented splat scene: the object and the rest keep the input's properties bit for bit."""

import numpy as np
import plyfile
import pytest

from engine.splats.builtin_gs import generate
from engine.splats.plyio import read_splats, write_splats
from systems.export.splats import (
    selected_gaussians,
    view_mask,
    view_render,
    write_object_points,
    write_object_splats,
    write_removed_splats,
)


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    cloud, ids = generate(64, 0.03)
    path = tmp_path_factory.mktemp("splats") / "point_cloud.ply"
    write_splats(path, cloud)
    return path, ids


def test_object_and_rest_round_trip_with_the_input_properties(tmp_path, scene_file):
    path, ids = scene_file
    cloud = read_splats(path)
    votes = np.where(ids == 2, 0.8, -0.3).astype(np.float32)          # the box
    selected = selected_gaussians(votes)
    assert write_object_splats(tmp_path / "box.ply", cloud, selected) == (ids == 2).sum()
    assert write_removed_splats(tmp_path / "rest.ply", cloud, selected) == (ids != 2).sum()
    source = plyfile.PlyData.read(str(path))["vertex"].data
    for name, rows in (("box.ply", ids == 2), ("rest.ply", ids != 2)):
        written = plyfile.PlyData.read(str(tmp_path / name))["vertex"].data
        assert written.dtype == source.dtype                          # same property list and dtypes
        assert written.tobytes() == source[rows].tobytes()            # the same Gaussians, bit for bit
        again = read_splats(tmp_path / name)
        assert len(again) == rows.sum() and again.sh_degree == cloud.sh_degree


def test_min_vote_drops_the_ambiguous_gaussians():
    votes = np.array([0.9, 0.05, -0.2, 0.4, 0.0])
    assert selected_gaussians(votes).tolist() == [True, True, False, True, False]
    assert selected_gaussians(votes, 0.1).tolist() == [True, False, False, True, False]


def test_object_points_are_the_centres_in_their_colours(tmp_path, scene_file):
    path, ids = scene_file
    cloud = read_splats(path)
    count = write_object_points(tmp_path / "sphere_points.ply", cloud, ids == 1)
    data = plyfile.PlyData.read(str(tmp_path / "sphere_points.ply"))["vertex"].data
    assert count == len(data) == (ids == 1).sum()
    assert np.allclose(data["x"], cloud.means[ids == 1, 0].numpy())
    red = data["red"].astype(int) - data["blue"].astype(int)
    assert np.median(red) > 60                                        # the red sphere


def test_view_masks_and_renders_of_the_object_follow_its_gaussians():
    from engine.scenes import builtin_render as br
    from engine.scenes.builtin import builtin_truth

    cloud, ids = generate(64, 0.015)
    truth = builtin_truth(64)
    K, T = br.intrinsics(64), br.camera_poses()[3]
    sphere = ids == 1
    mask = view_mask(cloud, sphere, K, T, 64, 64)
    exact = truth.instance_masks[3] == 1
    assert (mask & exact).sum() / (mask | exact).sum() > 0.85
    alone = view_render(cloud, sphere, K, T, 64, 64).astype(int)
    removed = view_render(cloud, sphere, K, T, 64, 64, removed=True).astype(int)
    from scipy.ndimage import binary_dilation

    assert alone[~binary_dilation(mask, iterations=2)].max() < 20                  # nothing else drawn
    assert (alone[mask][:, 0] > alone[mask][:, 2] + 60).mean() > 0.9               # the red sphere
    reddish = (removed[..., 0] > removed[..., 2] + 60) & (removed[..., 0] > 120)
    assert reddish[exact].mean() < 0.05                               # what was behind the sphere shows
