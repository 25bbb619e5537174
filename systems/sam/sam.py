"""The "sam" segmenter: a SAM-family predictor (SAM, HQ-SAM, MobileSAM) behind the Segmenter protocol.

The costly step is split from the cheap one so that a worker thread can run it: `embedding_key`
names an image's embedding, `embed` returns it (the disk / memory cache, else one image-encoder run,
then cached by the image bytes, the model type and the checkpoint identity), `use_embedding` points
the predictor at it; `set_view` is the three in a row. predict runs the prompt encoder and the mask
decoder (HQ-SAM's also takes the encoder's early features, cached with the embedding; its
multimask output is one mask: SAM's best of three refined by the HQ token). A soft mask prior is
passed as SAM's mask_input (low-resolution logits, see mask_prior_logits); SAM is unreliable with a
mask alone, so a mask-only prompt also sends the box of the prior's confident region.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from systems.sam.embed_cache import EmbeddingCache
from systems.sam.errors import PromptError
from systems.sam.protocol import SegmentResult, check_image, check_prompt


def checkpoint_identity(path: Path) -> str:
    """A cheap content identity of a checkpoint file: name, size and sha256 of its first MiB."""
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return f"{path.name}:{path.stat().st_size}:{head}"


def model_identity(sam) -> str:
    """sha256 of every parameter and buffer of a model (for models that were not read from a file)."""
    h = hashlib.sha256()
    for name, tensor in sam.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def mask_prior_logits(mask: np.ndarray, input_size: tuple[int, int], img_size: int,
                      low_res: tuple[int, int], max_logit: float = 8.0) -> np.ndarray:
    """SAM's mask_input [1, h, w] float32 from a soft prior mask [H, W] (values clipped to [0, 1]).

    SAM's low-res frame is the image resized to input_size (long side img_size), padded at the
    bottom/right to img_size x img_size and downsampled to low_res (4x the embedding grid). The
    prior takes the same path (bilinear resize, zero padding, area downsampling) and becomes
    logits log(p / (1 - p)) with p clipped to +-max_logit.
    """
    import torch
    import torch.nn.functional as F
    p = torch.from_numpy(np.clip(mask, 0.0, 1.0).astype(np.float32))[None, None]    # [1, 1, H, W]
    p = F.interpolate(p, size=input_size, mode="bilinear", align_corners=False)
    p = F.pad(p, (0, img_size - input_size[1], 0, img_size - input_size[0]))        # [1, 1, S, S]
    p = F.interpolate(p, size=low_res, mode="area")[0]                              # [1, h, w]
    eps = 1.0 / (1.0 + np.exp(max_logit))
    p = p.clamp(eps, 1.0 - eps)
    return torch.log(p / (1.0 - p)).numpy()


class EncodingStopped(RuntimeError):
    """An image-encoder run that stop_encoding interrupted."""


class SamSegmenter:
    """A SAM-family predictor behind the Segmenter protocol (see the module docstring)."""

    name = "sam"
    rendered_box = False     # the reference passes SAM the self-prompts alone
    rendered_prior = False
    background = True        # set_view may run ahead in a worker: embedding_key / embed / use_embedding

    def __init__(self, sam, *, model_type: str, identity: str | None = None,
                 cache_dir: str | Path | None = None, device: str = "cpu", notice: str | None = None):
        from systems.sam.models import is_hq
        self.model_type = model_type
        self.hq = is_hq(model_type)
        if self.hq:
            from segment_anything_hq import SamPredictor
        else:
            from segment_anything import SamPredictor
        self.notice = notice
        self.identity = identity or model_identity(sam)
        self.predictor = SamPredictor(sam.to(device).eval())
        self.cache = EmbeddingCache(cache_dir)
        self.encoder_runs = 0                       # how many images ran the image encoder
        self._stop = threading.Event()
        for name, block in self.predictor.model.image_encoder.named_modules():
            if name.split(".")[-2:-1] in (["blocks"], ["layers"]):    # ViT blocks, TinyViT stages and blocks
                block.register_forward_pre_hook(self._check_stop)

    def stop_encoding(self) -> None:
        """Make a running and every later image-encoder run raise EncodingStopped at its next block
        (a viewer that quits does not wait for a whole encoder run)."""
        self._stop.set()

    def _check_stop(self, module, inputs) -> None:
        if self._stop.is_set():
            raise EncodingStopped("the image encoder was stopped")

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, model_type: str | None = None, device: str = "cpu",
                        cache_dir: str | Path | None = None) -> SamSegmenter:
        """Load a checkpoint (see models.load_sam, raises SegmenterError) and wrap it."""
        from systems.sam.models import load_sam
        sam, kind = load_sam(path, model_type)
        return cls(sam, model_type=kind, identity=checkpoint_identity(Path(path).expanduser()),
                   cache_dir=cache_dir, device=device)

    def embedding_key(self, image: np.ndarray) -> str:
        """The cache key of an image's embedding (its bytes and shape, the model type and identity)."""
        return hashlib.sha256(image.tobytes() + str(image.shape).encode()
                              + f"|{self.model_type}|{self.identity}".encode()).hexdigest()[:32]

    def embed(self, image: np.ndarray) -> dict:
        """The embedding entry of image [H, W, 3] uint8 (see embed_cache), from the cache or one
        image-encoder run (then cached). Leaves the predictor's state alone: safe in a worker thread
        while the main thread runs predict."""
        import torch
        image, _ = check_image(image, None)
        key = self.embedding_key(image)
        entry = self.cache.get(key)
        if entry is not None:
            return entry
        p = self.predictor
        resized = p.transform.apply_image(image)                                # SamPredictor.set_image's steps
        pixels = torch.as_tensor(resized, device=p.device).permute(2, 0, 1).contiguous()[None]
        with torch.inference_mode():
            out = p.model.image_encoder(p.model.preprocess(pixels))
        features, early = out if self.hq else (out, None)
        entry = {"features": features.detach().cpu(), "original_size": torch.tensor(image.shape[:2]),
                 "input_size": torch.tensor(pixels.shape[-2:])}
        if early is not None:
            entry["interm"] = early[0].detach().cpu()                           # the only one HQ's decoder reads
        self.encoder_runs += 1
        self.cache.put(key, entry)
        return entry

    def use_embedding(self, entry: dict) -> None:
        """Point the predictor at an embedding entry (cheap)."""
        p = self.predictor
        p.reset_image()
        p.features = entry["features"].to(p.device)                             # [1, C, h, w]
        if self.hq:
            p.interm_features = [entry["interm"].to(p.device)]                  # [1, h, w, C_vit]
        p.original_size = tuple(int(v) for v in entry["original_size"])
        p.input_size = tuple(int(v) for v in entry["input_size"])
        p.is_image_set = True

    def set_view(self, image: np.ndarray, *, view_name: str | None = None,
                 depth: np.ndarray | None = None) -> None:
        """Embed image [H, W, 3] uint8 (cached by content); depth and view_name are not used by SAM."""
        check_image(image, depth)
        self.use_embedding(self.embed(image))

    def predict(self, *, points=None, labels=None, box=None, mask=None, multimask: bool = False) -> SegmentResult:
        """The predictor's predict on the checked prompt: masks [C, H, W] bool, scores [C] float32
        (the predicted IoU; C = 1 for HQ-SAM). Raises PromptError for an invalid prompt or when no
        view is set."""
        import torch
        p = self.predictor
        if not p.is_image_set:
            raise PromptError("no view set: call set_view(image) before predict")
        prompt = check_prompt(*p.original_size, points, labels, box, mask)
        box_in = prompt.box
        mask_in = None
        if prompt.mask is not None:
            enc = p.model.prompt_encoder
            mask_in = mask_prior_logits(prompt.mask, p.input_size, p.model.image_encoder.img_size,
                                        tuple(enc.mask_input_size))
            inside = np.argwhere(prompt.mask > 0.5)                 # [M, 2] (row, col)
            if box_in is None and not len(prompt.points) and len(inside):
                box_in = np.array([*inside.min(0)[::-1], *(inside.max(0)[::-1] + 1)], np.float32)
        if not len(prompt.points) and box_in is None:
            raise PromptError("the mask prior has no pixel above 0.5: add a point or a box")
        with torch.inference_mode():
            masks, scores, _ = p.predict(
                point_coords=prompt.points if len(prompt.points) else None,
                point_labels=prompt.labels if len(prompt.points) else None,
                box=box_in, mask_input=mask_in, multimask_output=multimask)
        return SegmentResult(masks.astype(bool), scores.astype(np.float32))
