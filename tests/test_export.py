"""export_object and the export command on a hand-made field: two spheres, one red, one blue."""

import json
import math

import numpy as np
import plyfile
import pytest
import torch
import trimesh
from PIL import Image

from components.camera import Camera
from engine.field.grid import VoxelField
from engine.scenes.builtin_render import look_at
from systems.export import views
from systems.export.carving import camera_carving_views
from systems.export.export import ExportError, ExportOptions, ExportScene, export_object, object_mesh
from systems.segmentation.grid_file import MaskGridError, MaskGridFile, load_mask_grid, write_mask_grid

BBOX = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
RES = (33, 33, 33)                              # voxel spacing 1/16
CENTRES = {"red": (-0.45, 0.0, 0.0), "blue": (0.45, 0.0, 0.0)}
RADIUS = 0.35


def _points() -> np.ndarray:
    axis = np.linspace(-1.0, 1.0, RES[0])
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([x, y, z], axis=-1)         # [Z, Y, X, 3]


def _inside(name: str) -> np.ndarray:
    return np.linalg.norm(_points() - CENTRES[name], axis=-1) <= RADIUS


@pytest.fixture(scope="module")
def field() -> VoxelField:
    return two_sphere_field()


def two_sphere_field() -> VoxelField:
    """Raw density +10 (alpha ~1 per step) inside the spheres, -10 outside; alpha 0.5 on the sphere."""
    f = VoxelField(BBOX, RES, background=(1.0, 1.0, 1.0), near=0.1, far=10.0)
    # raw whose alpha over one step is 0.5: softplus(raw + shift) * scale * step = ln 2
    level = math.log(math.expm1(math.log(2.0) / (float(f.density_scale) * f.step_size))) - float(f.density_shift)
    d = np.linalg.norm(_points()[None] - np.array(list(CENTRES.values()))[:, None, None, None], axis=-1)
    signed = RADIUS - d.min(0)                                      # [Z, Y, X] > 0 inside
    with torch.no_grad():
        f.density[0, 0] = torch.from_numpy(np.clip(level + signed * 16 * 20, -10, 10)).float()
        red = _points()[..., 0] < 0
        f.color[0, 0] = torch.from_numpy(np.where(red, 4.0, -4.0)).float()
        f.color[0, 1] = -4.0
        f.color[0, 2] = torch.from_numpy(np.where(red, -4.0, 4.0)).float()
    return f


def _grid(votes=None, names=("red", "blue"), **changes) -> MaskGridFile:
    if votes is None:
        votes = np.stack([np.where(_inside(n), 1.0, -1.0) for n in names]).astype(np.float32)
    values = {"votes": votes, "names": tuple(names), "colors": np.array([[255, 0, 0], [0, 0, 255]], np.uint8),
              "bbox": np.array(BBOX, np.float32), "space": "world", "scene_hash": "scene", "field_hash": "field",
              "path": "mask_grid.npz"}
    values.update(changes)
    values.setdefault("counts", np.ones_like(values["votes"]))
    return MaskGridFile(**values)


def _camera(H=48, W=64, shift=0.0) -> Camera:
    """Looks along +Y at the origin from y = -3 (OpenCV: x right, y down = world -z)."""
    T = np.eye(4, dtype=np.float32)
    T[:3, :3] = np.stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]], axis=1)
    T[:3, 3] = (shift, -3.0, 0.0)
    K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]], np.float32)
    return Camera(K, T, H, W)


def orbit_cameras(H=48, W=64, count=10) -> list[Camera]:
    """Cameras around the two spheres: a ring at 30 degrees above and one below, looking at the origin."""
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]], np.float32)
    cams = []
    for i in range(count):
        a, e = 2 * math.pi * i / count, math.radians(30.0 if i % 2 else -30.0)
        eye = 3.5 * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        cams.append(Camera(K, look_at(eye, np.zeros(3)).astype(np.float32), H, W))
    return cams


@pytest.fixture(scope="module")
def scene(field) -> ExportScene:
    carving = camera_carving_views(field, orbit_cameras())
    return ExportScene(carving_views=lambda: carving, world_up=np.array([0.0, 0.0, 1.0]))


def test_obj_and_mesh_ply_are_the_red_sphere(field, scene, tmp_path):
    for fmt, name in (("obj", "red.obj"), ("mesh-ply", "red.ply")):
        export_object(_grid(), field, tmp_path / name, ExportOptions(format=fmt, object="red", up="z"), scene)
        mesh = trimesh.load(tmp_path / name, process=False)
        assert mesh.is_watertight
        assert mesh.volume == pytest.approx(4 / 3 * math.pi * RADIUS ** 3, rel=0.1)
        assert np.allclose(mesh.bounds.mean(0), CENTRES["red"], atol=0.03)
        assert (mesh.visual.vertex_colors[:, 0] > 200).mean() > 0.95


def test_the_mesh_holds_a_fog_faced_cube_the_views_see():
    # a trained face can be a fog: a cube 12 voxels wide whose outer layer stops only 3% of the light
    # a step (the views still see it: more than SegmentationSettings.weight_cutoff), inside 50%.
    # The mesh holds the fog layer's voxel centres (a cube over 11 voxels wide); at alpha 0.05 it
    # would run inside them, the fog layer lost
    f = VoxelField(BBOX, RES, background=(1.0, 1.0, 1.0), near=0.1, far=10.0)

    def raw(alpha: float) -> float:        # the raw density whose alpha over one step is `alpha`
        sigma = -math.log1p(-alpha) / f.step_size
        return math.log(math.expm1(sigma / float(f.density_scale))) - float(f.density_shift)

    mask = np.zeros(RES, bool)
    mask[10:22, 10:22, 10:22] = True
    density = np.full(RES, -10.0, np.float32)
    density[10:22, 10:22, 10:22] = raw(0.03)
    density[11:21, 11:21, 11:21] = raw(0.5)
    with torch.no_grad():
        f.density[0, 0] = torch.from_numpy(density)
    voxel_volume = (2.0 / 32) ** 3
    volumes = {}
    for alpha in (None, 0.05):
        options = ExportOptions(format="obj") if alpha is None else ExportOptions(format="obj", alpha_iso=alpha)
        mesh = object_mesh(f, mask, options)
        volumes[alpha] = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).volume / voxel_volume
    assert 11 ** 3 < volumes[None] < 12 ** 3 and volumes[0.05] < 11 ** 3, volumes

def test_point_cloud_lies_on_the_red_sphere(field, scene, tmp_path):
    export_object(_grid(), field, tmp_path / "red.ply", ExportOptions(format="ply", object="red", points=5000), scene)
    vertex = plyfile.PlyData.read(tmp_path / "red.ply")["vertex"]
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1)
    assert len(points) == 5000
    assert np.abs(np.linalg.norm(points - CENTRES["red"], axis=1) - RADIUS).max() < 1.5 / 16
    assert (vertex["red"] > 200).mean() > 0.95 and (vertex["blue"] < 50).mean() > 0.95


def test_npz_holds_every_object_or_the_chosen_one(field, scene, tmp_path):
    export_object(_grid(), field, tmp_path / "all.npz", ExportOptions(format="npz"), scene)
    export_object(_grid(), field, tmp_path / "blue.npz", ExportOptions(format="npz", object="blue"), scene)
    everything, blue = np.load(tmp_path / "all.npz"), np.load(tmp_path / "blue.npz")
    assert list(everything["names"]) == ["red", "blue"] and list(blue["names"]) == ["blue"]
    assert list(blue["resolution"]) == list(RES) and str(blue["space"]) == "world"
    truth = _inside("blue")
    iou = (blue["mask"][0].astype(bool) & truth).sum() / (blue["mask"][0].astype(bool) | truth).sum()
    assert iou > 0.75 and (everything["mask"][1] == blue["mask"][0]).all()      # a 5.6-voxel radius, 10 views


def test_masks_renders_and_video_along_a_camera_path(field, scene, tmp_path):
    cameras = [views.NamedCamera(f"f{i}", _camera(shift=0.1 * i)) for i in range(2)]
    scene = ExportScene(carving_views=scene.carving_views, world_up=scene.world_up, cameras=cameras)
    grid = _grid()
    masks = export_object(grid, field, tmp_path / "masks", ExportOptions(format="masks", object="red"), scene)
    mask = np.asarray(Image.open(masks[0]))                          # [H, W] 0 / 255
    assert set(np.unique(mask)) == {0, 255}
    assert mask[:, :32].mean() > 20 and mask[:, 32:].max() == 0      # red sphere is on the left

    options = ExportOptions(format="removed-renders", object="red", video=tmp_path / "removed.gif")
    written = export_object(grid, field, tmp_path / "removed", options, scene)
    removed = np.asarray(Image.open(written[0])).astype(int)       # [H, W, 3]
    reddish = (removed[..., 0] > 150) & (removed[..., 1] < 100) & (removed[..., 2] < 100)
    blueish = (removed[..., 2] > 150) & (removed[..., 0] < 100)
    assert not reddish[mask > 0].any() and blueish.sum() > 100
    assert Image.open(tmp_path / "removed.gif").n_frames == 2

    options = ExportOptions(format="object-renders", object="red", video=tmp_path / "alone.mp4")
    alone = np.asarray(Image.open(export_object(grid, field, tmp_path / "alone", options, scene)[0]))
    assert not ((alone[..., 2] > 150) & (alone[..., 0] < 100)).any()  # no blue left
    assert ((alone[..., 0] > 150) & (alone[..., 2] < 100)).sum() > 100
    assert (tmp_path / "alone.mp4").stat().st_size > 0


@pytest.mark.parametrize("change, message", [
    ({"names": ("red", "blue")}, "choose one of red, blue"),
    ({"votes": -np.ones((2,) + RES, np.float32)}, "empty 3D mask"),
    ({"votes": np.ones((2, 9, 9, 9), np.float32)}, "resolution"),
    ({"bbox": np.zeros((2, 3), np.float32)}, "box"),
    # what an object keeps when one segmented later took its voxels: it carved "to nothing" before
    ({"votes": np.stack([np.where(_inside("red") & (np.indices(RES) % 4 == 0).all(0), 1.0, -1.0),
                         np.where(_inside("blue"), 1.0, -1.0)]).astype(np.float32)}, "only specks: none of its"),
])
def test_bad_requests_are_refused_with_one_line(field, scene, tmp_path, change, message):
    grid = _grid(**{k: v for k, v in change.items() if k != "names"})
    with pytest.raises((ExportError, MaskGridError), match=message) as error:
        export_object(grid, field, tmp_path / "x.obj", ExportOptions(format="obj", object="green"
                                                                      if "names" in change else "red"), scene)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "x.obj").exists()


def test_other_field_hash_and_broken_camera_paths_are_refused(field, scene, tmp_path):
    with pytest.raises(MaskGridError, match="another field"):
        export_object(_grid(), field, tmp_path / "x.npz", ExportOptions(format="npz"), scene, field_hash="other")
    (tmp_path / "path.json").write_text(json.dumps([{"K": [[1, 0, 0]], "H": 2, "W": 2}]))
    with pytest.raises(views.CameraPathError, match="camera 0"):
        views.load_camera_path(tmp_path / "path.json")


def test_mask_grid_file_round_trip(tmp_path):
    grid = _grid()
    write_mask_grid(tmp_path / "mask_grid.npz", grid)
    loaded = load_mask_grid(tmp_path / "mask_grid.npz")
    assert loaded.names == ("red", "blue") and loaded.resolution == RES and loaded.field_hash == "field"
    assert (loaded.votes == grid.votes).all() and (loaded.counts == grid.counts).all()
    with pytest.raises(MaskGridError, match="no mask grid"):
        load_mask_grid(tmp_path / "none.npz")
    with np.load(tmp_path / "mask_grid.npz") as data:
        damaged = {k: data[k] for k in data.files if k != "names"}
    np.savez(tmp_path / "damaged.npz", **damaged)
    with pytest.raises(MaskGridError, match="not a readable mask grid"):
        load_mask_grid(tmp_path / "damaged.npz")


def test_camera_path_round_trip(tmp_path):
    cam = _camera()
    (tmp_path / "path.json").write_text(json.dumps([
        {"K": cam.K.tolist(), "T_world_camera": cam.T_world_camera.tolist(), "H": 48, "W": 64, "name": "a"},
        {"K": cam.K.tolist(), "T_world_camera": cam.T_world_camera.tolist(), "H": 48, "W": 64}]))
    loaded = views.load_camera_path(tmp_path / "path.json")
    assert [c.name for c in loaded] == ["a", "path_0001"]
    assert np.allclose(loaded[1].camera.T_world_camera, cam.T_world_camera) and loaded[1].camera.W == 64
