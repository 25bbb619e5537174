"""Opening splat scenes: the 3DGS output layout, cameras.json with or without the source photos, an
orbit when there are no cameras, builtin-gs with its truth."""

import json
import shutil

import numpy as np
import pytest

from engine.splats.builtin_gs import generate
from engine.splats.cloud import SplatError
from engine.splats.plyio import write_splats
from engine.splats.scene import find_ply, load_splat_scene


@pytest.fixture(scope="module")
def coarse():
    return generate(32, 0.04)


def cameras_json(path, scene, views):
    """A 3DGS cameras.json of some built-in views (INRIA's keys)."""
    entries = [{"id": i, "img_name": scene.view_names[i], "width": scene.W, "height": scene.H,
                "position": scene.T_world_camera[i, :3, 3].tolist(),
                "rotation": scene.T_world_camera[i, :3, :3].tolist(),
                "fx": float(scene.K[i, 0, 0]), "fy": float(scene.K[i, 1, 1])} for i in views]
    path.write_text(json.dumps(entries))


def test_the_output_folder_gives_the_last_iteration_and_its_cameras(tmp_path, coarse):
    from engine.scenes.builtin import builtin_scene

    cloud, _ = coarse
    builtin = builtin_scene(32)
    for iteration in (7000, 30000, 900):
        write_splats(tmp_path / "point_cloud" / f"iteration_{iteration}" / "point_cloud.ply", cloud)
    cameras_json(tmp_path / "cameras.json", builtin, range(0, 60, 6))
    assert find_ply(tmp_path)[0].parent.name == "iteration_30000"
    opened = load_splat_scene(str(tmp_path))
    assert opened.cameras_from == "cameras.json" and len(opened.scene) == 10
    assert np.allclose(opened.scene.T_world_camera, builtin.T_world_camera[::6], atol=1e-6)
    assert opened.scene.images.shape == (10, 32, 32, 3) and opened.scene.images.std() > 10   # rendered views
    assert opened.scene.test_ids == (0, 8)


def test_cameras_json_takes_the_source_photos_by_name(tmp_path, coarse):
    from engine.scenes.builtin import builtin_scene, ensure_builtin

    cloud, _ = coarse
    builtin = builtin_scene(32)
    write_splats(tmp_path / "point_cloud.ply", cloud)
    cameras_json(tmp_path / "cameras.json", builtin, [5, 1, 40])
    (tmp_path / "cfg_args").write_text(f"Namespace(eval=False, source_path='{ensure_builtin(32)}', sh_degree=3)")
    opened = load_splat_scene(str(tmp_path / "point_cloud.ply"))
    assert np.array_equal(opened.scene.images, builtin.images[[5, 1, 40]])     # the photos, in cameras.json order
    assert opened.scene.view_names == ("view_005", "view_001", "view_040")


def test_without_cameras_the_views_orbit_the_splats(tmp_path, coarse, monkeypatch):
    monkeypatch.setattr("engine.splats.cameras.ORBIT_SIZE", (48, 64))          # small renders, same geometry
    cloud, _ = coarse
    write_splats(tmp_path / "scene.ply", cloud)
    opened = load_splat_scene(str(tmp_path / "scene.ply"))
    scene = opened.scene
    assert opened.cameras_from == "orbit" and len(scene) == 36
    centre = np.median(cloud.means.numpy()[cloud.opacity.numpy() > 0.1], axis=0)
    for K, T in zip(scene.K, scene.T_world_camera):
        c = np.linalg.inv(T) @ np.append(centre, 1.0)                            # camera coords
        assert c[2] > 0 and np.allclose((K @ (c[:3] / c[2]))[:2], [scene.W / 2, scene.H / 2], atol=1e-2)
        assert T[2, 3] > centre[2]                                               # above: +Z is up here
    assert (scene.images.reshape(len(scene), -1, 3).max(1) > 100).any(1).all()  # every view sees splats


def test_a_folder_without_splats_and_a_re_centred_source_are_refused(tmp_path, coarse):
    with pytest.raises(SplatError, match="no point_cloud.ply"):
        load_splat_scene(str(tmp_path))
    cloud, _ = coarse
    write_splats(tmp_path / "point_cloud.ply", cloud)
    llff = tmp_path / "llff"
    llff.mkdir()
    shutil.copy(__file__, llff / "poses_bounds.npy")                             # a loader picks it up
    with pytest.raises(Exception, match="poses_bounds|llff|LLFF"):
        load_splat_scene(str(tmp_path), source=str(llff))


def test_builtin_gs_has_the_built_in_views_and_truth():
    opened = load_splat_scene("builtin-gs-32")
    assert opened.cameras_from == "builtin" and opened.scene.H == 32 and len(opened.scene) == 60
    assert opened.instance_ids is not None and len(opened.instance_ids) == len(opened.cloud)
    with pytest.raises(SplatError, match="unknown built-in splat scene"):
        load_splat_scene("builtin-gs-x")


def test_a_view_s_depth_puts_the_backdrop_share_at_the_far_depth():
    """As a voxel field's (its box's exit): the fallback segmenter then sees a silhouette's faint rim
    between the object's depth and the far one, not at the object's."""
    from components.camera import Camera
    from engine.splats.raster import render_splats
    from systems.inverse.splats import open_splat_model

    splats = load_splat_scene("builtin-gs-32")
    scene, (model, _) = splats.scene, open_splat_model(splats, None)
    camera = Camera.of_view(scene, 3)
    depth = model.view_samples(camera, weight_cutoff=0.01, min_entry=0.001).depth          # [H, W]
    r = render_splats(splats.cloud, camera.K, camera.T_world_camera, camera.H, camera.W, with_weights=False)
    opacity, surface, far = r.opacity.numpy(), r.depth.numpy(), float(r.depth.max())
    sky, solid, rim = opacity < 1e-4, opacity > 0.999, (opacity > 0.05) & (opacity < 0.5)
    assert sky.any() and solid.any() and rim.any()
    assert np.allclose(depth[sky], far, atol=1e-3) and np.allclose(depth[solid], surface[solid], atol=1e-2)
    assert (depth[rim] > surface[rim] + 0.3 * (far - surface[rim])).all()           # pulled towards far
