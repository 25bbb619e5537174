"""A tiny numpy z-buffer rasteriser for looking at exported meshes (docs/mesh.png), and its test.

`python tests/test_export_picture.py FIELD.pt docs/mesh.png` meshes every object of the built-in
scene (64 px) from its ground-truth 3D mask and draws them, vertex-coloured and Lambert-shaded,
from an orbit camera of the scene at 4x the resolution.
"""

import sys
from pathlib import Path

import numpy as np


def rasterise(vertices, faces, colors, K, T_world_camera, H, W, background=(245, 245, 245)) -> np.ndarray:
    """uint8 [H, W, 3] picture of a mesh: vertices [V, 3] world, faces [F, 3], colors [V, 3] uint8.

    OpenCV camera (T_world_camera [4, 4], K [3, 3]); per-pixel depth test, colours interpolated
    barycentrically and shaded by |normal . view ray| (two-sided) with some ambient light.
    """
    R, t = T_world_camera[:3, :3], T_world_camera[:3, 3]
    cam = (vertices - t) @ R                                                  # [V, 3] camera coords
    pix = cam @ K.T
    xy = pix[:, :2] / pix[:, 2:3]                                             # [V, 2] pixels
    image = np.tile(np.array(background, np.float64), (H, W, 1))
    depth = np.full((H, W), np.inf)
    tri_cam = cam[faces]                                                      # [F, 3, 3]
    normals = np.cross(tri_cam[:, 1] - tri_cam[:, 0], tri_cam[:, 2] - tri_cam[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    centres = tri_cam.mean(1)
    shade = 0.35 + 0.65 * np.abs((normals * centres).sum(1)) / np.linalg.norm(centres, axis=1)  # [F]
    for f, (a, b, c) in enumerate(faces):
        p = xy[[a, b, c]]                                                     # [3, 2]
        x0, y0 = np.floor(p.min(0)).astype(int)
        x1, y1 = np.ceil(p.max(0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W - 1), min(y1, H - 1)
        if x0 > x1 or y0 > y1 or (cam[[a, b, c], 2] <= 0).any():
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1] + 0.5
        d = (p[1, 1] - p[2, 1]) * (p[0, 0] - p[2, 0]) + (p[2, 0] - p[1, 0]) * (p[0, 1] - p[2, 1])
        if abs(d) < 1e-12:
            continue
        l0 = ((p[1, 1] - p[2, 1]) * (xs - p[2, 0]) + (p[2, 0] - p[1, 0]) * (ys - p[2, 1])) / d
        l1 = ((p[2, 1] - p[0, 1]) * (xs - p[2, 0]) + (p[0, 0] - p[2, 0]) * (ys - p[2, 1])) / d
        l2 = 1.0 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        z = l0 * cam[a, 2] + l1 * cam[b, 2] + l2 * cam[c, 2]
        rows, cols = np.nonzero(inside & (z < depth[y0:y1 + 1, x0:x1 + 1]))
        if len(rows) == 0:
            continue
        lam = np.stack([l0[rows, cols], l1[rows, cols], l2[rows, cols]], 1)  # [P, 3]
        depth[y0 + rows, x0 + cols] = z[rows, cols]
        image[y0 + rows, x0 + cols] = shade[f] * (lam @ colors[[a, b, c]].astype(np.float64))
    return np.clip(image, 0, 255).astype(np.uint8)


def test_rasterise_draws_a_triangle_in_front_of_another():
    K = np.array([[10.0, 0, 5], [0, 10.0, 5], [0, 0, 1]])
    vertices = np.array([[-1, -1, 4], [1, -1, 4], [0, 1, 4], [-1, -1, 5], [1, -1, 5], [0, 1, 5]], float)
    colors = np.array([[255, 0, 0]] * 3 + [[0, 0, 255]] * 3, np.uint8)
    image = rasterise(vertices, np.array([[3, 4, 5], [0, 1, 2]]), colors, K, np.eye(4), 10, 10)
    assert image[5, 5, 0] > 200 and image[5, 5, 2] == 0     # the near red triangle wins
    assert (image[0, 0] == 245).all()                       # background


def main(field_path: str, out: str) -> None:
    from PIL import Image

    from engine.field.checkpoint import load_field
    from engine.scenes.builtin import builtin_scene, builtin_truth
    from systems.export.export import ExportOptions, object_mesh

    scene, truth = builtin_scene(64), builtin_truth(64)
    field = load_field(field_path, scene_hash=scene.content_hash())
    parts = []
    offset = 0
    for k in range(1, len(truth.object_names) + 1):
        mesh = object_mesh(field, truth.voxel_truth(k, field.bbox.numpy(), field.resolution),
                           ExportOptions(format="obj"))
        parts.append((mesh.vertices, mesh.faces + offset, mesh.colors))
        offset += len(mesh.vertices)
    vertices, faces, colors = (np.concatenate(p) for p in zip(*parts))
    view = 27                                                                  # upper orbit ring
    K = scene.K[view].astype(np.float64) * np.array([[4], [4], [1]])
    image = rasterise(vertices, faces, colors, K, scene.T_world_camera[view].astype(np.float64), 256, 256)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(out)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1], sys.argv[2])
