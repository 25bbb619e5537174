"""The SAM-family checkpoints: official file names, where to download them, how to recognise them,
where they are looked for, and the one-line messages when none or a wrong one is found.

This is the one registry of SAM-family models (systems/sam/models.py builds each name listed here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Checkpoint:
    model: str          # the model type (--sam-model): vit_h, hq_vit_tiny, mobile_sam, ...
    file: str           # the official checkpoint file name
    url: str            # where the authors publish it
    megabytes: int      # download size
    package: str        # the PyPI package whose model code it needs


_SAM = "https://dl.fbaipublicfiles.com/segment_anything/"
_HQ = "https://huggingface.co/lkeab/hq-sam/resolve/main/"
_MOBILE = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/"

# Lightest first: `auto` takes the first one found on a CPU, the last one found on CUDA.
CHECKPOINTS = {c.model: c for c in (
    Checkpoint("mobile_sam", "mobile_sam.pt", _MOBILE + "mobile_sam.pt", 39, "segment-anything-hq"),
    Checkpoint("hq_vit_tiny", "sam_hq_vit_tiny.pth", _HQ + "sam_hq_vit_tiny.pth", 43, "segment-anything-hq"),
    Checkpoint("vit_b", "sam_vit_b_01ec64.pth", _SAM + "sam_vit_b_01ec64.pth", 375, "segment-anything"),
    Checkpoint("hq_vit_b", "sam_hq_vit_b.pth", _HQ + "sam_hq_vit_b.pth", 379, "segment-anything-hq"),
    Checkpoint("vit_l", "sam_vit_l_0b3195.pth", _SAM + "sam_vit_l_0b3195.pth", 1250, "segment-anything"),
    Checkpoint("hq_vit_l", "sam_hq_vit_l.pth", _HQ + "sam_hq_vit_l.pth", 1250, "segment-anything-hq"),
    Checkpoint("vit_h", "sam_vit_h_4b8939.pth", _SAM + "sam_vit_h_4b8939.pth", 2560, "segment-anything"),
    Checkpoint("hq_vit_h", "sam_hq_vit_h.pth", _HQ + "sam_hq_vit_h.pth", 2570, "segment-anything-hq"),
)}
CPU_CHOICE = "hq_vit_tiny"        # what a CPU user should download (README: SAM on a laptop)
ENV_CHECKPOINT = "SA3D_SAM_CHECKPOINT"


def model_type_from_name(path: str | Path) -> str | None:
    """The model type a checkpoint file name names (sam_hq_vit_tiny.pth -> hq_vit_tiny,
    mobile_sam.pt -> mobile_sam, sam_vit_b_01ec64.pth -> vit_b), else None."""
    name = Path(path).name.lower().replace("_", "").replace("-", "")
    if "mobilesam" in name:
        return "mobile_sam"
    size = next((s for s in ("tiny", "h", "l", "b") if f"vit{s}" in name), None)
    if size is None:
        return None
    return f"hq_vit_{size}" if "hq" in name else (f"vit_{size}" if size != "tiny" else None)


def expected_file_line(model_type: str | None) -> str:
    """'<official file> (<size>) from <url>' for a model type (the CPU choice when unknown)."""
    c = CHECKPOINTS.get(model_type or CPU_CHOICE, CHECKPOINTS[CPU_CHOICE])
    return f"{c.file} ({c.megabytes} MB) from {c.url}"


def missing_checkpoint_line(model_type: str | None, folder: Path) -> str:
    """One line saying where a checkpoint was looked for and which file to download."""
    return (f"no SAM checkpoint: download {expected_file_line(model_type)} into {folder}/ "
            f"or pass --sam-checkpoint PATH (or set ${ENV_CHECKPOINT})")


def find_sam_checkpoint(checkpoint: str | None, model_type: str | None, folder: Path,
                        device: str = "cpu") -> Path | None:
    """The checkpoint to use: `checkpoint`, else $SA3D_SAM_CHECKPOINT, else an official file in
    `folder` (only model_type's when given; else the lightest found on a CPU, the largest on CUDA);
    None when none is found.

    Raises SegmenterError when an explicitly named file (argument or environment) does not exist.
    """
    from systems.sam.errors import SegmenterError
    explicit = checkpoint or os.environ.get(ENV_CHECKPOINT)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            kind = model_type or model_type_from_name(path)
            raise SegmenterError(f"SAM checkpoint {path} does not exist: download "
                                 f"{expected_file_line(kind)} and pass its path")
        return path
    types = [model_type] if model_type in CHECKPOINTS else list(CHECKPOINTS)
    found = [folder / CHECKPOINTS[t].file for t in types if (folder / CHECKPOINTS[t].file).is_file()]
    if not found:
        return None
    return found[-1] if device == "cuda" else found[0]
