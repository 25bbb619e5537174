"""Command-line helpers of `segment`: parse and check prompts, views and prompt files, find the field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import UserFacingError
from systems.sam.errors import PromptError


class FieldMissingError(UserFacingError):
    """No field checkpoint for a scene that has no cached default field."""


class PropagationError(UserFacingError):
    """A propagation that rejected every view; the message says why and what to try."""


class PromptsFileError(UserFacingError):
    """A --prompts file that cannot be read or holds a bad entry (the line names the entry)."""


@dataclass(frozen=True, eq=False)
class ObjectPrompt:
    """One object to segment: its name, prompted view and prompts (pixels of that view)."""
    name: str
    view: int                                         # scene view index
    points: tuple = ()                                # ((x, y, label), ...)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None                    # bool [H, W]
    gt_masks: str | None = None                       # ground-truth folder (gt segmenter)
    given: dict = field(default_factory=dict)         # the prompts as the user wrote them (summary.json)


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
    """bool [H, W] from a mask image (any value > 0 is the object). A mask N times the view's size on
    both sides (drawn on the full-resolution photo of a --downscale N scene) is shrunk nearest; any
    other size is refused."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            raw = np.asarray(image.convert("L"))
    except (OSError, ValueError) as error:
        raise PromptError(f"--mask {path} cannot be read ({error}): give a PNG mask") from None
    factor = raw.shape[0] // H if raw.shape[0] >= H and raw.shape[0] % H == 0 else 0
    if raw.shape != (H, W) and (factor < 2 or raw.shape != (H * factor, W * factor)):
        raise PromptError(f"--mask {path} is {raw.shape[1]}x{raw.shape[0]} pixels but the view is {W}x{H}: "
                          f"give a mask of the view's size (or an integer multiple of it)")
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


def parse_views(text: str | None, scene) -> tuple[int, ...] | None:
    """--views: N (that many training views, evenly spaced, like the viewer's --propagation-views)
    or a comma-separated list of view names / indices; None without the option."""
    if text is None:
        return None
    if text.strip().lstrip("-").isdigit() and text.strip() not in scene.view_names:
        n = int(text)
        if n < 1:
            raise UserFacingError("--views must be a count >= 1 or a list of view names")
        ids = list(scene.train_ids)
        step = max(1, len(ids) // n)
        return tuple(ids[::step][:n])
    views = tuple(scene.view_index(part.strip()) for part in text.split(",") if part.strip())
    if not views:
        raise UserFacingError("--views is empty: give a count or view names separated by commas")
    return views


def object_name(name: str, where: str) -> str:
    """`name` when it can name the object's mask folder; PromptError naming `where` otherwise."""
    if not name.strip() or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise PromptError(f"{where} {name!r} cannot name a folder: use letters, digits and spaces")
    return name


def object_from_flags(args, scene) -> ObjectPrompt:
    """The one object of --view with --point / --box / --mask."""
    if args.view is None:
        raise PromptError("no prompted view: give --view NAME with a prompt, or --prompts FILE.json")
    view = scene.view_index(args.view)
    name = scene.view_names[view]
    points = tuple(parse_point(p, scene.H, scene.W, name) for p in args.point)
    box = parse_box(args.box, scene.H, scene.W, name) if args.box else None
    mask = read_mask_png(args.mask, scene.H, scene.W) if args.mask else None
    if not (points or box or mask is not None):
        raise PromptError("no prompt: give --point X,Y (repeatable), --box X0,Y0,X1,Y1 or --mask PNG")
    return ObjectPrompt(object_name("object 1" if args.name is None else args.name, "--name"),
                        view, points, box, mask, args.gt_masks,
                        {"points": args.point, "box": args.box, "mask": args.mask})


def read_prompts_file(path: str, scene, gt_masks: str | None = None) -> list[ObjectPrompt]:
    """--prompts FILE.json: a list of objects {"name", "view", and "points" [[x, y(, label)], ...]
    and/or "box" [x0, y0, x1, y1] and/or "mask" "PNG" (relative to the file), optional "gt_masks"
    DIR}. Raises PromptsFileError naming the file and entry."""
    file = Path(path)
    try:
        entries = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PromptsFileError(f"--prompts {file} cannot be read as JSON ({error}): give a list of objects, "
                               'e.g. [{"name": "cup", "view": "0", "points": [[120, 80]]}]') from None
    if not isinstance(entries, list) or not entries:
        raise PromptsFileError(f"--prompts {file} must hold a non-empty JSON list of objects")
    objects = []
    for i, entry in enumerate(entries):
        where = f"--prompts {file} entry {i}"
        try:
            objects.append(_object_entry(entry, i, scene, file.parent, gt_masks))
        except (PromptError, UserFacingError) as error:
            raise PromptsFileError(f"{where}: {error}") from None
        except (TypeError, ValueError, KeyError):
            raise PromptsFileError(f"{where} is not an object with a name, a view and points / box / mask "
                                   '(e.g. {"name": "cup", "view": "0", "points": [[120, 80]]})') from None
    names = [o.name for o in objects]
    if len(set(names)) != len(names):
        raise PromptsFileError(f"--prompts {file}: object names must differ (they name the mask folders)")
    return objects


def _object_entry(entry: dict, i: int, scene, folder: Path, gt_masks: str | None) -> ObjectPrompt:
    if not isinstance(entry, dict) or "view" not in entry:
        raise ValueError
    unknown = set(entry) - {"name", "view", "points", "box", "mask", "gt_masks"}
    if unknown:
        raise PromptsFileError(f"unknown keys {sorted(unknown)}: use name, view, points, box, mask, gt_masks")
    name = object_name(str(entry.get("name", f"object {i + 1}")), "name")
    view = scene.view_index(str(entry["view"]))
    label = scene.view_names[view]
    points = []
    for p in entry.get("points", []):
        if not isinstance(p, (list, tuple)) or any(isinstance(v, (bool, str)) for v in p):
            raise ValueError
        points.append(parse_point(",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in p),
                                  scene.H, scene.W, label))
    box = entry.get("box")
    if box is not None:
        if not isinstance(box, (list, tuple)) or any(isinstance(v, (bool, str)) for v in box):
            raise ValueError
        box = parse_box(",".join(str(v) for v in box), scene.H, scene.W, label)
    mask = None
    if entry.get("mask") is not None:
        mask = read_mask_png(str(folder / str(entry["mask"])), scene.H, scene.W)
    if not (points or box or mask is not None):
        raise PromptsFileError("no prompt: give points, a box or a mask")
    gt = entry.get("gt_masks")
    gt = str(folder / str(gt)) if gt is not None else gt_masks
    given = {k: entry[k] for k in ("points", "box", "mask") if k in entry}
    return ObjectPrompt(name, view, tuple(points), box, mask, gt, given)
