"""No stray specks (issue 16, item 10): on the built-in scene, with the no-weights fallback, every
connected piece of an object's held-out mask lies on that object, and a mask has no more pieces than
the object's visible part (one, unless an occluder splits it); a piece on a neighbouring object or
on the ground is a speck."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]


def test_every_piece_of_every_held_out_mask_lies_on_its_object(field_file, tmp_path):
    from engine.scenes.builtin import builtin_scene, builtin_truth

    scene = builtin_scene(64)
    truth = builtin_truth(64)
    train = [int(v) for v in scene.train_ids]
    prompts = []
    for k, name in enumerate(truth.object_names, 1):        # a click where the object is largest
        view = max(train, key=lambda v: int((truth.instance_masks[v] == k).sum()))
        ys, xs = np.nonzero(truth.instance_masks[view] == k)
        i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        prompts.append({"name": name, "view": view, "points": [[int(xs[i]), int(ys[i])]]})
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    env = dict(os.environ, SA3D_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "segment", "builtin-64", "--field", str(field_file),
                           "--prompts", str(tmp_path / "prompts.json"), "--segmenter", "fallback",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    pieces = 0
    for k, name in enumerate(truth.object_names, 1):
        for view in scene.test_ids:
            pred = np.asarray(Image.open(tmp_path / "out" / "masks" / name / f"{scene.view_names[view]}.png")) > 0
            labels, n = ndimage.label(pred)
            on_object = truth.instance_masks[view] == k
            strays = [i for i in range(1, n + 1) if not (on_object & (labels == i)).any()]
            assert not strays, f"{name} in {scene.view_names[view]}: {len(strays)} pieces off the object"
            visible = ndimage.label(on_object)[1]
            assert n <= max(1, visible), f"{name} in {scene.view_names[view]}: {n} pieces, {visible} visible"
            pieces += n
    assert pieces >= len(truth.object_names)                  # the masks are not empty
