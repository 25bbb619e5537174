"""Scene loading: `load_scene("builtin" | folder, downscale)` -> Scene, format detected.

Formats: Blender/nerfstudio/instant-ngp `transforms*.json` (transforms_json.py), LLFF
`poses_bounds.npy` + `images_N/` (llff.py), COLMAP text `cameras.txt` + `images.txt` or binary
`cameras.bin` + `images.bin` in the folder, `sparse/0/` or `sparse/` (colmap.py, colmap_bin.py),
and the generated built-in scene (builtin.py).
"""

from __future__ import annotations

from pathlib import Path

from engine.memory import check_builtin
from engine.scenes.checks import check_region
from engine.scenes.scene import Scene, SceneError

__all__ = ["Scene", "SceneError", "load_scene"]

BUILTIN_SIZE = 128
FORMATS = ("'builtin', or a folder with transforms.json / transforms_train.json, "
           "poses_bounds.npy + images_N/, or a COLMAP model: cameras.txt + images.txt or cameras.bin + "
           "images.bin (also under sparse/0)")


def load_scene(path_or_name: str, downscale: int | None = None) -> Scene:
    """Load "builtin" (or "builtin-<size>"; downscale N divides the 128 px default) or a scene
    folder / transforms JSON file, detecting its format. Raises SceneError naming the path and
    the formats expected when nothing fits, or what is wrong with the files."""
    name = str(path_or_name)
    if downscale is not None and downscale < 1:
        raise SceneError(f"--downscale must be a positive integer, not {downscale}")
    if name == "builtin" or name.startswith("builtin-"):
        from engine.scenes.builtin import builtin_scene
        size = name.removeprefix("builtin-").removeprefix("builtin")
        if size and not size.isdigit():
            raise SceneError(f"unknown built-in scene '{name}': use 'builtin' or 'builtin-<size>'")
        pixels = int(size or BUILTIN_SIZE) // (downscale or 1)
        if pixels < 8:
            raise SceneError(f"the built-in scene '{name}' with --downscale {downscale or 1} is {pixels} px wide: "
                             "use at least 8 pixels")
        check_builtin(pixels)
        return builtin_scene(pixels)
    path = Path(name).expanduser()
    if not path.exists():
        raise SceneError(f"scene '{name}' does not exist; give {FORMATS}")
    folder = path if path.is_dir() else path.parent
    scene = _load_folder(folder, downscale)
    check_region(scene.bbox, scene.near, scene.far, folder)
    return scene


def _load_folder(folder: Path, downscale: int | None) -> Scene:
    """The scene in `folder`, by the first format whose files are there."""
    if (folder / "transforms.json").is_file() or (folder / "transforms_train.json").is_file():
        from engine.scenes.transforms_json import load_transforms
        return load_transforms(folder, downscale)
    if (folder / "poses_bounds.npy").is_file():
        from engine.scenes.llff import load_llff
        return load_llff(folder, downscale)
    for sub in (folder, folder / "sparse" / "0", folder / "sparse"):
        if (sub / "cameras.txt").is_file() or (sub / "cameras.bin").is_file():
            from engine.scenes.colmap import load_colmap
            return load_colmap(folder, sub, downscale)
    raise SceneError(f"no scene found in {folder}: expected {FORMATS}")
