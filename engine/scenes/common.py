"""Helpers shared by the scene loaders: reading images, splits, missing files and a default bbox."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from engine.scenes.scene import SceneError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def find_image(path: Path) -> Path | None:
    """`path` itself if it is a file, else `path` + one of IMAGE_SUFFIXES, else None."""
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_image(path: Path, downscale: int = 1,
               background: tuple[float, float, float] | None = None) -> tuple[np.ndarray, bool]:
    """Read an image file as uint8 [H, W, 3], shrunk by `downscale` (box filter, sizes floored).
    An alpha channel is composited over `background` (white when None). Returns the image and
    whether it had alpha. Raises SceneError when the file cannot be decoded."""
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
            if downscale > 1:
                if im.width < downscale or im.height < downscale:
                    raise SceneError(f"--downscale {downscale} shrinks {path} ({im.width}x{im.height}) "
                                     "to nothing; use a smaller factor")
                im = im.resize((im.width // downscale, im.height // downscale), Image.BOX)
            pixels = np.asarray(im)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SceneError(f"cannot read image {path} ({exc}); replace or remove the file") from exc
    if not has_alpha:
        return pixels, False
    alpha = pixels[..., 3:].astype(np.float32) / 255.0                         # [H, W, 1]
    back = np.asarray(background if background is not None else (1.0, 1.0, 1.0)) * 255.0
    rgb = pixels[..., :3].astype(np.float32) * alpha + back * (1.0 - alpha)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8), True


def stack_images(images: list[np.ndarray], names: list[str], where: Path) -> np.ndarray:
    """[N, H, W, 3] from equally sized images; SceneError naming the first odd one otherwise."""
    if not images:
        raise SceneError(f"{where} lists no images; add views to the scene")
    for image, name in zip(images, names):
        if image.shape != images[0].shape:
            raise SceneError(
                f"images in {where} differ in size: {names[0]} is {images[0].shape[1]}x"
                f"{images[0].shape[0]} but {name} is {image.shape[1]}x{image.shape[0]}; "
                "resize them to one size")
    return np.stack(images)


def warn_missing(missing: list[str], total: int, where: Path) -> None:
    """Warn that `missing` of `total` listed images are absent and will be skipped; raise
    SceneError when all of them are."""
    if not missing:
        return
    shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
    if len(missing) == total:
        raise SceneError(f"none of the {total} images listed in {where} exist (e.g. {shown}); "
                         "check the file paths or copy the images")
    warnings.warn(f"{where}: skipping {len(missing)} of {total} listed images that do not exist "
                  f"({shown})", stacklevel=3)


def every_8th_split(n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train_ids, test_ids): views 0, 8, 16, ... are held out for testing, the rest train."""
    test = tuple(range(0, n, 8))
    return tuple(i for i in range(n) if i % 8), test


def scale_K(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """[..., 3, 3] intrinsics of images resized by sx (width) and sy (height)."""
    K = np.array(K, dtype=np.float64)
    K[..., 0, :] *= sx
    K[..., 1, :] *= sy
    return K


def bbox_from_cameras(K: np.ndarray, T_world_camera: np.ndarray, H: int, W: int
                      ) -> tuple[np.ndarray, float, float]:
    """Default region for inward-facing captures: a cube around the point nearest to all
    optical axes, half as wide as the median camera sees at that distance. Returns bbox [2, 3],
    near, far (camera depths bounding the cube from every camera)."""
    origins, axes = T_world_camera[:, :3, 3], T_world_camera[:, :3, 2]        # [N, 3] each
    projectors = np.eye(3) - axes[:, :, None] * axes[:, None, :]               # [N, 3, 3]
    centre = np.linalg.lstsq(projectors.sum(0), (projectors @ origins[:, :, None]).sum(0),
                             rcond=None)[0][:, 0]                              # [3]
    dist = np.linalg.norm(origins - centre, axis=1)                            # [N]
    half_fov = np.minimum(np.arctan(0.5 * W / K[:, 0, 0]), np.arctan(0.5 * H / K[:, 1, 1]))
    radius = float(np.median(dist * np.tan(half_fov)))
    bbox = np.stack([centre - radius, centre + radius]).astype(np.float32)
    reach = radius * np.sqrt(3.0)
    return bbox, float(max(0.05, dist.min() - reach)), float(dist.max() + reach)
