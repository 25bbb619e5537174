"""Command-line helpers of `segment`: parse and check prompts, find the field, drive the App."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UserFacingError
from systems.sam.errors import PromptError


class FieldMissingError(UserFacingError):
    """No field checkpoint for a scene that has no cached default field."""


class PropagationError(UserFacingError):
    """A propagation that rejected every view; the message says why and what to try."""


def parse_point(text: str, H: int, W: int, view_name: str) -> tuple[float, float, int]:
    """'X,Y[,LABEL]' pixels -> (x, y, label); raises PromptError for bad syntax or a point off the image."""
    parts = text.split(",")
    try:
        x, y = float(parts[0]), float(parts[1])
        label = int(parts[2]) if len(parts) == 3 else 1
        if len(parts) not in (2, 3) or label not in (0, 1):
            raise ValueError
    except (ValueError, IndexError):
        raise PromptError(f"--point '{text}' is not X,Y or X,Y,LABEL "
                          "(pixels; LABEL 1 = object, 0 = background)") from None
    if not (0 <= x < W and 0 <= y < H):
        raise PromptError(f"--point {x:g},{y:g} is outside view '{view_name}' ({W}x{H} pixels): "
                          f"use 0 <= x < {W} and 0 <= y < {H}")
    return x, y, label


def parse_box(text: str, H: int, W: int, view_name: str) -> tuple[float, float, float, float]:
    """'X0,Y0,X1,Y1' -> box; raises PromptError for bad syntax, an empty box or one off the image."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise PromptError(f"--box '{text}' is not X0,Y0,X1,Y1 (pixels)") from None
    if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
        raise PromptError(f"--box {text} must satisfy 0 <= x0 < x1 <= {W} and 0 <= y0 < y1 <= {H} "
                          f"on view '{view_name}'")
    return x0, y0, x1, y1


def read_mask_png(path: str, H: int, W: int) -> np.ndarray:
    """bool [H, W] from a mask image (any value > 0 is the object; resized nearest if needed)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            raw = np.asarray(image.convert("L"))
    except (OSError, ValueError) as error:
        raise PromptError(f"--mask {path} cannot be read ({error}): give a PNG mask") from None
    if raw.shape != (H, W):
        raw = raw[(np.arange(H) * raw.shape[0] // H)[:, None], (np.arange(W) * raw.shape[1] // W)[None, :]]
    mask = raw > 0
    if not mask.any():
        raise PromptError(f"--mask {path} is empty (no pixel > 0): give a mask of the object")
    return mask


def load_or_default_field(scene, field_arg: str | None, device: str):
    """(field, field_hash): --field FILE or DIR/field.pt; for the built-in scene without --field,
    its default field (engine/field/cache.py, trained once). Raises FieldMissingError /
    FieldCheckpointError."""
    from engine.field.cache import default_field
    from engine.field.checkpoint import load_field
    from engine.field.progress import training_bar
    from engine.io import file_sha256

    if field_arg is None:
        if scene.kind != "builtin":
            raise FieldMissingError(f"no --field given for scene '{scene.name}': train it first with "
                                    f"`python main.py train {scene.source} --out DIR`, then pass --field DIR/field.pt")
        with training_bar(f"training the default field of {scene.name} (once)") as progress:
            field, path = default_field(scene, device=device, progress=progress)
        return field, file_sha256(path)
    path = Path(field_arg)
    path = path / "field.pt" if path.is_dir() else path
    field = load_field(path, scene_hash=scene.content_hash(), device=device)
    return field, file_sha256(path)


def gt_mask_folder(scene, view: int, points, gt_masks: str | None) -> str | None:
    """--gt-masks, or for the built-in scene the mask folder of the object under the first click."""
    if gt_masks is not None or scene.kind != "builtin" or not points:
        return gt_masks
    from engine.scenes.builtin import builtin_truth

    truth = builtin_truth(scene.H)
    x, y = points[0][:2]
    k = int(truth.instance_masks[view][int(y), int(x)])
    if k == 0:
        raise PromptError(f"the first --point {x:g},{y:g} is on no object of the built-in scene: "
                          f"click inside an object (or pass --gt-masks DIR)")
    return str(truth.mask_dir(truth.object_names[k - 1]))
