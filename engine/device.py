"""The compute device a command runs on: --device auto | cpu | cuda."""

from __future__ import annotations

from engine.errors import UserFacingError


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' without CUDA raises UserFacingError."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UserFacingError("--device cuda was asked for but no CUDA device is available: "
                              "use --device cpu (or auto)")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
