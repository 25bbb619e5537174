"""Training on a tiny synthetic scene, the train command, and the cached fixture field."""

import json
import math

import numpy as np
import pytest
import torch

from engine.field.checkpoint import load_field
from engine.field.grid import VoxelField
from engine.field.render import render_view
from engine.field.train import TrainConfig, evaluate_psnr, train_field
from engine.scenes.scene import Scene


def _look_at(position, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """T_world_camera [4, 4] (OpenCV axes) of a camera at `position` looking at `target`."""
    z = np.asarray(target, np.float64) - position
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = position
    return T.astype(np.float32)


def _tiny_scene(size: int = 24, views: int = 16) -> Scene:
    """Views of a coloured ball (a ground-truth VoxelField) on a white background."""
    truth = VoxelField([[-1, -1, -1], [1, 1, 1]], (20, 20, 20), background=(1.0, 1.0, 1.0))
    axis = torch.linspace(-1, 1, 20)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    with torch.no_grad():
        truth.density.copy_(torch.where(xx**2 + yy**2 + zz**2 < 0.5, 8.0, -20.0)[None, None])
        truth.color.copy_(torch.stack([4 * xx, 4 * yy, 4 * zz])[None])
    K = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], np.float32)
    poses, images = [], []
    for i in range(views):
        angle = 2 * math.pi * i / views
        T = _look_at(np.array([3 * math.cos(angle), 3 * math.sin(angle), 1.0 + 0.5 * (i % 2)]))
        rgb = render_view(truth, K, T, size, size).rgb
        poses.append(T)
        images.append((rgb.numpy() * 255).round().astype(np.uint8))
    test = tuple(range(0, views, 8))
    return Scene(name="tiny", source="test", kind="builtin", images=np.stack(images),
                 K=np.repeat(K[None], views, 0), T_world_camera=np.stack(poses),
                 view_names=tuple(f"v{i}" for i in range(views)),
                 train_ids=tuple(i for i in range(views) if i not in test), test_ids=test,
                 bbox=np.array([[-1, -1, -1], [1, 1, 1]], np.float32), near=0.5, far=6.0,
                 background=(1.0, 1.0, 1.0))


def test_training_improves_held_out_psnr():
    scene = _tiny_scene()
    untrained = VoxelField(scene.bbox, (12, 12, 12), background=scene.background, near=0.5, far=6.0)
    before = evaluate_psnr(untrained, scene, scene.test_ids)
    config = TrainConfig(resolution=20, batch_rays=1024, max_iterations=300, stage_starts=(0.0, 0.1, 0.3))
    result = train_field(scene, max_seconds=10.0, config=config)
    assert result.iterations > 50
    assert result.test_psnr > before + 6.0
    assert result.test_psnr > 20.0


def test_train_command_writes_checkpoint_and_report(tmp_path, monkeypatch):
    import main

    monkeypatch.setenv("SA3D_CACHE", str(tmp_path / "cache"))
    scene = _tiny_scene(size=16, views=10)
    monkeypatch.setattr("engine.scenes.load_scene", lambda name, downscale=None: scene)
    code = main.main(["train", "tiny", "--out", str(tmp_path / "out"), "--max-minutes", "0.05",
                      "--resolution", "12", "--device", "cpu"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "train.json").read_text())
    assert report["scene_hash"] == scene.content_hash() and report["iterations"] > 0
    assert {"test_psnr", "seconds", "resolution", "device", "scene"} <= report.keys()
    field = load_field(tmp_path / "out" / "field.pt", scene_hash=scene.content_hash())
    assert list(field.resolution) == report["resolution"]
    from engine.device import resolve_device

    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_train_command_refuses_cuda_without_cuda(tmp_path, capsys):
    import main

    code = main.main(["train", "builtin", "--out", str(tmp_path), "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "no CUDA device" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_training_on_cuda():
    scene = _tiny_scene(size=16, views=10)
    config = TrainConfig(resolution=16, batch_rays=1024, max_iterations=50)
    result = train_field(scene, device="cuda", max_seconds=20.0, config=config)
    assert result.field.density.is_cuda and result.test_psnr > 10


def test_fixture_field_is_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path))
    from engine.field.fixtures import trained_builtin_field

    scene, field = trained_builtin_field(size=32, iterations=40, resolution=16)
    assert len(list((tmp_path / "fields").glob("*.pt"))) == 1
    scene2, field2 = trained_builtin_field(size=32, iterations=40, resolution=16)
    assert scene2.content_hash() == scene.content_hash()
    assert torch.equal(field.density, field2.density)
    monkeypatch.setenv("SA3D_CACHE", str(tmp_path / "again"))     # retrained: the same field
    _, field3 = trained_builtin_field(size=32, iterations=40, resolution=16)
    assert torch.equal(field.density, field3.density) and torch.equal(field.occupancy, field3.occupancy)
