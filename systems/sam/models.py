"""Build a SAM model from a named size and load a checkpoint into it, with one-line errors.

The official sizes mirror segment_anything.build_sam (image 1024, patch 16, 256-d prompts). "tiny"
is a random-weight, 64-pixel model for tests and benchmarks only: it runs the real SamPredictor
code path in milliseconds but its masks mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from systems.sam.checkpoints import expected_file_line, model_type_from_name
from systems.sam.errors import SegmenterError


@dataclass(frozen=True)
class SamConfig:
    embed_dim: int                           # ViT width
    depth: int                               # ViT blocks
    num_heads: int                           # attention heads per block
    global_attn: tuple[int, ...]             # blocks with global (not windowed) attention
    img_size: int = 1024                     # encoder input side (px)
    window_size: int = 14                    # windowed-attention side (tokens)
    prompt_dim: int = 256                    # prompt / mask-decoder width
    decoder_depth: int = 2                   # two-way transformer blocks
    decoder_mlp: int = 2048                  # two-way transformer MLP width


SAM_CONFIGS = {
    "vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11)),
    "tiny": SamConfig(32, 2, 2, (1,), img_size=64, window_size=2, prompt_dim=32, decoder_depth=1,
                      decoder_mlp=64),
}


def build_sam(model_type: str):
    """A randomly initialised segment_anything Sam of a size in SAM_CONFIGS, in eval mode."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    c = SAM_CONFIGS[model_type]
    patch = 16
    grid = c.img_size // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=c.depth, embed_dim=c.embed_dim, img_size=c.img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=c.num_heads, patch_size=patch,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=c.global_attn,
            window_size=c.window_size, out_chans=c.prompt_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=c.prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(c.img_size, c.img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.prompt_dim,
                                          mlp_dim=c.decoder_mlp, num_heads=8),
            transformer_dim=c.prompt_dim, iou_head_depth=3, iou_head_hidden_dim=c.prompt_dim),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def _model_type_from_state(state: dict) -> str | None:
    """The official size whose ViT width matches the state dict's patch embedding, else None."""
    weight = state.get("image_encoder.patch_embed.proj.weight")
    width = getattr(weight, "shape", (None,))[0]
    return next((t for t, c in SAM_CONFIGS.items() if c.embed_dim == width), None)


def load_sam(path: str | Path, model_type: str | None = None):
    """Load a SAM checkpoint (a state dict) into a model of its size; returns (sam, model_type).

    The size comes from model_type, else the file name, else the weights' shapes. Raises
    SegmenterError (one line naming the expected file and its download URL) when the file is
    missing, truncated or not a PyTorch file, not a state dict, or has the wrong keys or shapes.
    """
    import pickle
    import zipfile

    import torch
    path = Path(path).expanduser()
    kind = model_type or model_type_from_name(path)
    if kind is not None and kind not in SAM_CONFIGS:
        raise SegmenterError(f"unknown SAM model type '{kind}': choose one of vit_h, vit_l, vit_b")
    fix = f"download {expected_file_line(kind)}"
    if not path.is_file():
        raise SegmenterError(f"SAM checkpoint {path} does not exist: {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise SegmenterError(
            f"SAM checkpoint {path} is truncated or not a PyTorch file ({reason}): {fix}") from None
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise SegmenterError(f"SAM checkpoint {path} is not a state dict of SAM weights: {fix}")
    kind = kind or _model_type_from_state(state)
    if kind is None:
        raise SegmenterError(f"SAM checkpoint {path} has no SAM image encoder weights: {fix}")
    sam = build_sam(kind)
    try:
        sam.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")[:100]
        raise SegmenterError(f"SAM checkpoint {path} does not fit a {kind} model ({first}): "
                             f"download {expected_file_line(kind)} or pass the matching model type") from None
    return sam.eval(), kind
