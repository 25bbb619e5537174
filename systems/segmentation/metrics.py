"""Mask scores (mIoU, mAcc) of predicted mask folders against ground truth, matched by view name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import UserFacingError
from engine.io import DAMAGED_ARRAY_FILE

SUFFIXES = (".png", ".npy", ".jpg", ".jpeg")


class EvalError(UserFacingError):
    """Missing or unreadable masks or split; the message names the file and what to do."""


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """IoU = TP / (TP + FP + FN) (1 when both are empty) and acc = (TP + TN) / all, for bool [H, W]."""
    tp, fp, fn = int((pred & gt).sum()), int((pred & ~gt).sum()), int((~pred & gt).sum())
    tn = int(pred.size - tp - fp - fn)
    return {"iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0, "acc": (tp + tn) / pred.size,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def read_mask(folder: Path, name: str) -> np.ndarray:
    """bool [H, W]: the mask file `<name>.<suffix>` in folder (> 0 = foreground)."""
    for suffix in SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            try:
                if suffix == ".npy":
                    raw = np.load(path, allow_pickle=False)
                else:
                    from PIL import Image
                    with Image.open(path) as image:
                        raw = np.asarray(image)
            except DAMAGED_ARRAY_FILE as error:
                raise EvalError(f"{path} cannot be read ({error}): replace it with a PNG mask") from None
            return (raw.max(axis=-1) if raw.ndim == 3 else raw) > 0
    raise EvalError(f"no mask {folder / (name + '.png')}: every scored view needs one in {folder}")


def split_views(pred: Path, which: str) -> list[str]:
    """View names to score: from summary.json beside the masks folder, or every mask for 'all'."""
    summary = pred.parent / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        train, test = list(data.get("train_views", [])), list(data.get("test_views", []))
        return {"train": train, "test": test, "all": sorted(train + test)}[which]
    if which != "all":
        raise EvalError(f"no {summary} to read the {which} split from: pass --views all or score "
                        f"the masks folder written by `main.py segment`")
    return sorted(p.stem for p in pred.iterdir() if p.suffix in SUFFIXES)


def evaluate_folders(pred: Path, gt: Path, names: list[str]) -> dict:
    """Scores per view (pred resized nearest to the GT size) and their means mIoU / mAcc."""
    if not names:
        raise EvalError(f"no views to score in {pred}")
    views = {}
    for name in names:
        truth = read_mask(gt, name)
        guess = read_mask(pred, name)
        if guess.shape != truth.shape:
            H, W = truth.shape
            guess = guess[(np.arange(H) * guess.shape[0] // H)[:, None], (np.arange(W) * guess.shape[1] // W)[None, :]]
        views[name] = mask_scores(guess, truth)
    return {"views": views, "mIoU": float(np.mean([v["iou"] for v in views.values()])),
            "mAcc": float(np.mean([v["acc"] for v in views.values()]))}
