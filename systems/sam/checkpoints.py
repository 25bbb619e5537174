"""Where SAM checkpoints are looked for, and the one-line messages when none or a wrong one is found."""

from __future__ import annotations

import os
from pathlib import Path

OFFICIAL_FILES = {                      # model type -> official checkpoint file name
    "vit_h": "sam_vit_h_4b8939.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_b": "sam_vit_b_01ec64.pth",
}
DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/segment_anything/{}"
ENV_CHECKPOINT = "SA3D_SAM_CHECKPOINT"


def model_type_from_name(path: str | Path) -> str | None:
    """"vit_h" | "vit_l" | "vit_b" when the file name says so (e.g. sam_vit_b_01ec64.pth), else None."""
    name = Path(path).name.lower()
    return next((t for t in OFFICIAL_FILES if t in name or t.replace("_", "") in name), None)


def expected_file_line(model_type: str | None) -> str:
    """'<official file> from <url>' for a model type (vit_b, the smallest, when unknown)."""
    file = OFFICIAL_FILES.get(model_type or "vit_b", OFFICIAL_FILES["vit_b"])
    return f"{file} from {DOWNLOAD_URL.format(file)}"


def missing_checkpoint_line(model_type: str | None, folder: Path) -> str:
    """One line saying where a checkpoint was looked for and which file to download."""
    return (f"no SAM checkpoint: download {expected_file_line(model_type)} into {folder}/ "
            f"or pass --sam-checkpoint PATH (or set ${ENV_CHECKPOINT})")


def find_sam_checkpoint(checkpoint: str | None, model_type: str | None, folder: Path) -> Path | None:
    """The checkpoint to use: `checkpoint`, else $SA3D_SAM_CHECKPOINT, else the first official file
    (vit_h, vit_l, vit_b; only model_type's when given) in `folder`; None when none is found.

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
    types = [model_type] if model_type in OFFICIAL_FILES else list(OFFICIAL_FILES)
    return next((folder / OFFICIAL_FILES[t] for t in types if (folder / OFFICIAL_FILES[t]).is_file()), None)
