"""`main.py segment` on splat scenes: builtin-gs end to end with one mask value per Gaussian, a 3DGS
output folder, and the error lines of a bad splat scene."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import plyfile

ROOT = Path(__file__).resolve().parents[1]


def _main(*args, cache=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    if cache is not None:
        env["SA3D_CACHE"] = str(cache)
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


def test_segment_builtin_gs_lifts_one_value_per_gaussian(tmp_path):
    from engine.scenes.builtin import builtin_truth
    from engine.splats.scene import load_splat_scene

    splats = load_splat_scene("builtin-gs-64")
    truth = builtin_truth(64)
    out = tmp_path / "out"
    done = _main("segment", "builtin-gs-64", "--view", "view_001", "--point", "20,34", "--segmenter", "gt",
                 "--name", "sphere", "--views", "16", "--out", out)
    assert done.returncode == 0, done.stderr
    grid = np.load(out / "mask_grid.npz")
    assert grid["votes"].shape == (1, len(splats.cloud))                       # one value per Gaussian
    chosen = grid["votes"][0] > 0
    solid = splats.cloud.opacity.numpy() > 0.1
    assert ((chosen == (splats.instance_ids == 1)) | ~solid).mean() > 0.97      # the sphere's Gaussians
    ious = []
    for i in splats.scene.test_ids:
        from PIL import Image
        pred = np.asarray(Image.open(out / "masks" / f"{splats.scene.view_names[i]}.png")) > 0
        exact = truth.instance_masks[i] == 1
        ious.append((pred & exact).sum() / (pred | exact).sum())
    assert np.mean(ious) > 0.85                                                 # at 64 px: edges weigh


def test_segment_reads_a_3dgs_output_folder_and_names_a_bad_property(tmp_path):
    from engine.splats.builtin_gs import generate
    from engine.splats.plyio import write_splats

    cloud, _ = generate(32, 0.04)
    output = tmp_path / "output"
    write_splats(output / "point_cloud" / "iteration_30000" / "point_cloud.ply", cloud)
    done = _main("segment", output, "--downscale", "4", "--view", "orbit_000", "--point", "62,47", "--segmenter",
                 "fallback", "--views", "3", "--out", tmp_path / "out", cache=tmp_path / "cache")
    assert done.returncode in (0, 2), done.stderr                              # ran; may find no object
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out" / "summary.json").is_file() or done.stderr.startswith("error:")
    table = plyfile.PlyData.read(str(output / "point_cloud" / "iteration_30000" / "point_cloud.ply"))["vertex"].data
    names = [n for n in table.dtype.names if n != "scale_1"]
    broken = np.zeros(len(table), [(n, table.dtype[n]) for n in names])
    for n in names:
        broken[n] = table[n]
    newer = output / "point_cloud" / "iteration_40000"                         # the last iteration is read
    newer.mkdir()
    plyfile.PlyData([plyfile.PlyElement.describe(broken, "vertex")]).write(str(newer / "point_cloud.ply"))
    done = _main("segment", output, "--downscale", "4", "--view", "orbit_000", "--point", "62,47",
                 "--out", tmp_path / "out2")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: ") and "property 'scale_1' is missing" in done.stderr


def test_a_field_for_a_splat_scene_is_refused(tmp_path):
    done = _main("segment", "builtin-gs-32", "--field", tmp_path / "field.pt", "--view", "view_001", "--point", "10,17",
                 "--segmenter", "gt", "--out", tmp_path / "out")
    assert done.returncode == 2 and "is a splat scene" in done.stderr and "Traceback" not in done.stderr


def test_export_writes_the_segmented_gaussians_with_the_input_properties(tmp_path, capsys):
    """In process (main.main): each command's process start and imports cost more than its work here."""
    from engine.splats.scene import load_splat_scene
    from main import main

    out = tmp_path / "out"
    assert main(["segment", "builtin-gs-32", "--view", "view_001", "--point", "10,17", "--segmenter", "gt",
                 "--views", "6", "--out", str(out)]) == 0
    votes = np.load(out / "mask_grid.npz")["votes"][0]
    splats = load_splat_scene("builtin-gs-32")
    source = plyfile.PlyData.read(str(splats.ply))["vertex"].data
    for fmt, rows in (("splats", votes > 0), ("splats-removed", votes <= 0)):
        assert main(["export", str(out / "mask_grid.npz"), "--scene", "builtin-gs-32", "--format", fmt,
                     "--out", str(tmp_path / f"{fmt}.ply")]) == 0
        written = plyfile.PlyData.read(str(tmp_path / f"{fmt}.ply"))["vertex"].data
        assert written.dtype == source.dtype and written.tobytes() == source[rows].tobytes()
    assert main(["export", str(out / "mask_grid.npz"), "--scene", "builtin-gs-32", "--format", "masks",
                 "--out", str(tmp_path / "masks")]) == 0
    assert len(list((tmp_path / "masks").glob("*.png"))) == 60
    capsys.readouterr()
    assert main(["export", str(out / "mask_grid.npz"), "--scene", "builtin-32", "--format", "splats",
                 "--out", str(tmp_path / "x.ply")]) == 2
    err = capsys.readouterr().err
    assert "writes Gaussians" in err and "Traceback" not in err
