"""Forward-facing (NDC) exports land in world coordinates: a hand-made NDC field holding a ball at
world (0, 0, 3), seen by forward-facing cameras (LLFF's frame: +Z along the views, +Y down)."""

import numpy as np
import pytest
import torch
import trimesh

from components.camera import Camera
from engine.field.grid import VoxelField
from systems.export import axes
from systems.export.carving import camera_carving_views, to_world, voxel_centres
from systems.export.export import ExportOptions, ExportScene, export_object
from systems.segmentation.grid_file import MaskGridFile

CENTRE, RADIUS = np.array([0.0, 0.0, 3.0]), 0.5
RES = (40, 40, 40)
SCALE = (1.5, 1.5)      # ndc_scale: NDC x = a x / z


@pytest.fixture(scope="module")
def ndc_world():
    field = VoxelField([[-1.0, -1.0, -1.0], [1.0, 1.0, 0.9]], RES, space="ndc", ndc_near=1.0, ndc_scale=SCALE,
                       near=0.5, far=100.0)
    centres = to_world(field, voxel_centres(field, np.arange(np.prod(RES))))
    inside = (np.linalg.norm(centres - CENTRE, axis=1) <= RADIUS).reshape(RES)
    with torch.no_grad():
        field.density[0, 0] = torch.from_numpy(np.where(inside, 12.0, -12.0)).float()
        field.color[0, 0] = 4.0
    field.update_occupancy()
    K = np.array([[40.0, 0, 24], [0, 40.0, 24], [0, 0, 1]], np.float32)
    cams = []
    for dx in (-0.3, 0.0, 0.3):
        for dy in (-0.3, 0.0, 0.3):
            T = np.eye(4, dtype=np.float32)
            T[:3, 3] = (dx, dy, 0.0)
            cams.append(Camera(K, T, 48, 48))
    votes = np.where(inside, 1.0, -1.0).astype(np.float32)[None]
    grid = MaskGridFile(votes=votes, counts=np.ones_like(votes), names=("ball",),
                        colors=np.array([[255, 0, 0]], np.uint8),
                        bbox=field.bbox.numpy(), space="ndc", scene_hash="s", field_hash="f", path="grid")
    views = camera_carving_views(field, cams)
    up = axes.scene_up(np.stack([c.T_world_camera for c in cams]))
    return field, grid, ExportScene(carving_views=lambda: views, world_up=up), inside


def test_the_mesh_of_an_ndc_field_lands_where_the_cameras_saw_it(ndc_world, tmp_path):
    field, grid, scene, _ = ndc_world
    assert scene.world_up.tolist() == [0.0, -1.0, 0.0]                     # OpenCV cameras: +Y down
    export_object(grid, field, tmp_path / "ball.obj", ExportOptions(format="obj"), scene)
    mesh = trimesh.load(tmp_path / "ball.obj", process=False)
    world = mesh.vertices @ axes.up_rotation(scene.world_up, "y")          # file -> world (R^T)
    front = world[:, 2] <= CENTRE[2]          # the half the cameras see; how deep it goes no view says
    assert np.abs(np.linalg.norm(world[front] - CENTRE, axis=1) - RADIUS).max() < 0.15 and mesh.is_watertight
    assert np.abs(world[:, :2].min(0) + RADIUS).max() < 0.15 and np.abs(world[:, :2].max(0) - RADIUS).max() < 0.15


def test_the_npz_converts_to_world_by_its_documented_formula(ndc_world, tmp_path):
    field, grid, scene, inside = ndc_world
    export_object(grid, field, tmp_path / "ball.npz", ExportOptions(format="npz"), scene)
    with np.load(tmp_path / "ball.npz") as data:
        assert str(data["space"]) == "ndc" and float(data["ndc_near"]) == 1.0
        mask = data["mask"][0].astype(bool)
        k, j, i = np.nonzero(mask)
        p = data["bbox"][0] + np.stack([i, j, k], 1) * data["spacing"]          # field-space centres
        z = 2.0 * data["ndc_near"] / (1.0 - p[:, 2])
        world = np.stack([p[:, 0] * z / data["ndc_scale"][0], p[:, 1] * z / data["ndc_scale"][1], z], 1)
    near = world[:, 2] <= CENTRE[2]
    assert (np.linalg.norm(world[near] - CENTRE, axis=1) <= RADIUS + 0.15).all()
    assert (mask & inside).sum() == pytest.approx(inside.sum(), rel=0.1)       # all of the ball is in it
