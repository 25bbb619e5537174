"""Build a SAM-family model from its type and load a checkpoint into it, with one-line errors.

Every model is built from its authors' package: SAM (`segment_anything`) vit_b / vit_l / vit_h;
HQ-SAM (`segment_anything_hq`) hq_vit_b / hq_vit_l / hq_vit_h and hq_vit_tiny (Light HQ-SAM:
TinyViT encoder); MobileSAM's checkpoint (TinyViT encoder + SAM's own decoder) goes into
`segment_anything`'s Sam with the TinyViT definition of the HQ-SAM package (the same modules and
parameter names as MobileSAM's; HQ-SAM's forward also returns its intermediate features, which
MobileSAM's decoder does not take, so `TinyViTFeatures` returns the embedding alone).

The "tiny*" types are random-weight test models of each architecture (small widths and depths;
TinyViT's input stays 1024 px: its layers are written for a 64x64 token grid). They run the real
predictor code path in milliseconds but their masks mean nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from systems.sam.checkpoints import CHECKPOINTS, expected_file_line, model_type_from_name
from systems.sam.errors import SegmenterError


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int                           # ViT width
    depth: int                               # ViT blocks
    num_heads: int                           # attention heads per block
    global_attn: tuple[int, ...]             # blocks with global (not windowed) attention
    img_size: int = 1024                     # encoder input side (px)
    window_size: int = 14                    # windowed-attention side (tokens)


@dataclass(frozen=True)
class TinyViTConfig:
    embed_dims: tuple[int, int, int, int] = (64, 128, 160, 320)   # stage widths (the last must stay 320)
    depths: tuple[int, int, int, int] = (2, 2, 6, 2)
    num_heads: tuple[int, int, int, int] = (2, 4, 5, 10)
    window_sizes: tuple[int, int, int, int] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class ModelConfig:
    family: str                              # "sam" (SAM's decoder) | "hq" (HQ-SAM's decoder)
    encoder: ViTConfig | TinyViTConfig
    prompt_dim: int = 256                    # prompt / mask-decoder width (TinyViT's neck fixes 256)
    decoder_depth: int = 2                   # two-way transformer blocks
    decoder_mlp: int = 2048                  # two-way transformer MLP width


_VIT = {"vit_h": ViTConfig(1280, 32, 16, (7, 15, 23, 31)), "vit_l": ViTConfig(1024, 24, 16, (5, 11, 17, 23)),
        "vit_b": ViTConfig(768, 12, 12, (2, 5, 8, 11))}
_TINY_VIT = ViTConfig(32, 2, 2, (1,), img_size=64, window_size=2)
_TINY_TINYVIT = TinyViTConfig((8, 16, 16, 320), (1, 1, 1, 1), (1, 1, 1, 1), (7, 7, 7, 7), mlp_ratio=1.0)
_TINY_DECODER = {"decoder_depth": 1, "decoder_mlp": 64}

MODEL_CONFIGS = {
    **{name: ModelConfig("sam", vit) for name, vit in _VIT.items()},
    **{f"hq_{name}": ModelConfig("hq", vit) for name, vit in _VIT.items()},
    "hq_vit_tiny": ModelConfig("hq", TinyViTConfig()),
    "mobile_sam": ModelConfig("sam", TinyViTConfig()),
    "tiny": ModelConfig("sam", _TINY_VIT, prompt_dim=32, **_TINY_DECODER),
    "tiny_hq": ModelConfig("hq", _TINY_VIT, prompt_dim=32, **_TINY_DECODER),
    "tiny_hq_tinyvit": ModelConfig("hq", _TINY_TINYVIT, **_TINY_DECODER),
    "tiny_mobile": ModelConfig("sam", _TINY_TINYVIT, **_TINY_DECODER),
}
UNUSED_KEYS = ("image_encoder.head.", "image_encoder.norm_head.")   # TinyViT's classifier: never run, may be absent


def is_hq(model_type: str) -> bool:
    """Whether the model has HQ-SAM's decoder (it also takes the encoder's early features)."""
    return MODEL_CONFIGS[model_type].family == "hq"


def _modeling(family: str):
    if family == "hq":
        with warnings.catch_warnings():       # HQ-SAM's TinyViT imports timm names that timm 1.0 deprecates
            warnings.simplefilter("ignore")
            import segment_anything_hq.modeling as modeling
    else:
        import segment_anything.modeling as modeling
    return modeling


def _tinyvit(c: TinyViTConfig, hq: bool):
    """TinyViT from the HQ-SAM package: as is for HQ-SAM, returning the embedding alone for SAM's Sam."""
    TinyViT = _modeling("hq").TinyViT

    class TinyViTFeatures(TinyViT):
        """MobileSAM's encoder: the embedding [B, 256, 64, 64] without HQ-SAM's intermediate features."""

        def forward(self, x):
            return super().forward(x)[0]

    cls = TinyViT if hq else TinyViTFeatures
    return cls(img_size=1024, in_chans=3, num_classes=1000, embed_dims=list(c.embed_dims), depths=list(c.depths),
               num_heads=list(c.num_heads), window_sizes=list(c.window_sizes), mlp_ratio=c.mlp_ratio, drop_rate=0.0,
               drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3,
               layer_lr_decay=0.8)


def build_sam(model_type: str):
    """A randomly initialised model of a type in MODEL_CONFIGS, in eval mode (segment_anything's Sam
    for the "sam" family, segment_anything_hq's for "hq")."""
    import torch
    c = MODEL_CONFIGS[model_type]
    m = _modeling(c.family)
    hq = c.family == "hq"
    if isinstance(c.encoder, ViTConfig):
        e = c.encoder
        encoder = m.ImageEncoderViT(
            depth=e.depth, embed_dim=e.embed_dim, img_size=e.img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=e.num_heads, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=e.global_attn, window_size=e.window_size,
            out_chans=c.prompt_dim)
        img_size, vit_dim = e.img_size, e.embed_dim
    else:
        encoder, img_size, vit_dim = _tinyvit(c.encoder, hq), 1024, c.encoder.embed_dims[2]
    grid = img_size // 16
    transformer = m.TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.prompt_dim, mlp_dim=c.decoder_mlp,
                                      num_heads=8)
    decoder_args = dict(num_multimask_outputs=3, transformer=transformer, transformer_dim=c.prompt_dim,
                        iou_head_depth=3, iou_head_hidden_dim=c.prompt_dim)
    decoder = m.MaskDecoderHQ(**decoder_args, vit_dim=vit_dim) if hq else m.MaskDecoder(**decoder_args)
    sam = m.Sam(
        image_encoder=encoder,
        prompt_encoder=m.PromptEncoder(embed_dim=c.prompt_dim, image_embedding_size=(grid, grid),
                                       input_image_size=(img_size, img_size), mask_in_chans=16),
        mask_decoder=decoder, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def _model_type_from_state(state: dict) -> str | None:
    """The official type whose encoder and decoder the state dict's keys and widths match, else None."""
    hq = "mask_decoder.hf_token.weight" in state
    if "image_encoder.patch_embed.seq.0.c.weight" in state:           # TinyViT
        return "hq_vit_tiny" if hq else "mobile_sam"
    weight = state.get("image_encoder.patch_embed.proj.weight")
    width = getattr(weight, "shape", (None,))[0]
    name = next((t for t, v in _VIT.items() if v.embed_dim == width), None)
    return None if name is None else ("hq_" + name if hq else name)


def load_sam(path: str | Path, model_type: str | None = None):
    """Load a SAM-family checkpoint (a state dict) into a model of its type; returns (sam, model_type).

    The type comes from model_type, else the file name, else the weights' keys and shapes. Raises
    SegmenterError (one line naming the expected file and its download URL) when the file is
    missing, truncated or not a PyTorch file, not a state dict, or has the wrong keys or shapes.
    """
    import pickle
    import zipfile

    import torch
    path = Path(path).expanduser()
    kind = model_type or model_type_from_name(path)
    if kind is not None and kind not in MODEL_CONFIGS:
        raise SegmenterError(f"unknown SAM model type '{kind}': choose one of {', '.join(CHECKPOINTS)}")
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
        result = sam.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(UNUSED_KEYS)]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"Error(s) in loading state_dict:\n{len(missing)} missing key(s) {missing[:2]}, "
                               f"{len(result.unexpected_keys)} unexpected key(s) {result.unexpected_keys[:2]}")
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")[:100]
        raise SegmenterError(f"SAM checkpoint {path} does not fit a {kind} model ({first}): "
                             f"download {expected_file_line(kind)} or pass the matching --sam-model") from None
    return sam.eval(), kind      # eval() again: TinyViT caches its attention biases when it leaves training mode
