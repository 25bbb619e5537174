"""Each SAM-family architecture (SAM, HQ-SAM ViT, Light HQ-SAM TinyViT, MobileSAM) with random weights,
through a checkpoint file and the real predictor path; names, the registry and `auto`'s choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("segment_anything")
pytest.importorskip("segment_anything_hq")
import torch

from systems.sam import SegmenterError, make_segmenter
from systems.sam.checkpoints import CHECKPOINTS, find_sam_checkpoint, model_type_from_name
from systems.sam.models import MODEL_CONFIGS, _model_type_from_state, build_sam, load_sam
from systems.sam.sam import SamSegmenter

H, W = 48, 64
TEST_TYPES = ("tiny", "tiny_hq", "tiny_hq_tinyvit", "tiny_mobile")


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for i, kind in enumerate(TEST_TYPES):
        torch.manual_seed(i)
        model = build_sam(kind)
        for p in model.parameters():        # random everywhere (TinyViT starts its attention biases at 0)
            p.data.normal_(0.0, 0.05)
        paths[kind] = folder / f"{kind}.pth"
        torch.save(model.state_dict(), paths[kind])
    return paths


@pytest.mark.parametrize("kind", TEST_TYPES)
def test_each_architecture_runs_the_predictor_from_a_checkpoint(kind, checkpoints, tmp_path):
    seg = make_segmenter("sam", checkpoint=str(checkpoints[kind]), model_type=kind, cache_dir=tmp_path)
    assert seg.model_type == kind and seg.hq == (MODEL_CONFIGS[kind].family == "hq")
    seg.set_view(image())
    out = seg.predict(points=np.array([[10.0, 20.0], [40.0, 5.0]]), labels=np.array([1, 0]), multimask=True)
    assert out.masks.shape == ((1 if seg.hq else 3), H, W) and out.masks.dtype == bool
    assert np.isfinite(out.scores).all()
    # the loaded weights are the saved ones, and so is what they compute (TinyViT's cached attention
    # biases are rebuilt after loading): the embedding equals the saved model's own
    reference = build_sam(kind)
    reference.load_state_dict(torch.load(checkpoints[kind], weights_only=True))
    reference.eval()
    direct = SamSegmenter(reference, model_type=kind)
    mine, theirs = seg.embed(image()), direct.embed(image())
    assert torch.equal(mine["features"], theirs["features"])
    assert not torch.equal(mine["features"], SamSegmenter(build_sam(kind), model_type=kind).embed(image())["features"])
    if seg.hq:
        assert mine["interm"].ndim == 4 and torch.equal(mine["interm"], theirs["interm"])


@pytest.mark.parametrize("kind", ("tiny_hq", "tiny_mobile"))
def test_cached_embedding_predicts_what_a_fresh_one_does(kind, checkpoints, tmp_path):
    first = SamSegmenter.from_checkpoint(checkpoints[kind], model_type=kind, cache_dir=tmp_path)
    first.set_view(image(1))
    fresh = first.predict(points=np.array([[30.0, 20.0]]), multimask=False)
    again = SamSegmenter.from_checkpoint(checkpoints[kind], model_type=kind, cache_dir=tmp_path)
    again.set_view(image(1))                                          # from disk: no encoder run
    cached = again.predict(points=np.array([[30.0, 20.0]]), multimask=False)
    assert again.encoder_runs == 0 and first.encoder_runs == 1
    assert (cached.masks == fresh.masks).all() and np.array_equal(cached.scores, fresh.scores)


def test_official_names_give_their_model_type():
    for model, c in CHECKPOINTS.items():
        assert model_type_from_name(c.file) == model
        assert c.model in MODEL_CONFIGS
    assert model_type_from_name("my_weights.pth") is None


def test_the_model_type_is_read_from_the_weights(checkpoints):
    hq_tinyvit = torch.load(checkpoints["tiny_hq_tinyvit"], weights_only=True)
    mobile = torch.load(checkpoints["tiny_mobile"], weights_only=True)
    assert _model_type_from_state(hq_tinyvit) == "hq_vit_tiny"
    assert _model_type_from_state(mobile) == "mobile_sam"
    vit_b_like = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
                  "mask_decoder.hf_token.weight": torch.zeros(1, 256)}
    assert _model_type_from_state(vit_b_like) == "hq_vit_b"


def test_a_checkpoint_of_another_architecture_is_one_line(checkpoints):
    with pytest.raises(SegmenterError) as exc:
        load_sam(checkpoints["tiny_mobile"], "tiny_hq_tinyvit")      # no HQ decoder weights
    message = str(exc.value)
    assert "\n" not in message and "does not fit a tiny_hq_tinyvit model" in message and "missing" in message


def test_auto_takes_the_lightest_on_cpu_and_the_largest_on_cuda(tmp_path, monkeypatch):
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    for model in ("vit_b", "hq_vit_tiny", "hq_vit_h"):
        (tmp_path / CHECKPOINTS[model].file).write_bytes(b"x")
    assert find_sam_checkpoint(None, None, tmp_path).name == "sam_hq_vit_tiny.pth"
    assert find_sam_checkpoint(None, None, tmp_path, device="cuda").name == "sam_hq_vit_h.pth"
    assert find_sam_checkpoint(None, "vit_b", tmp_path, device="cuda").name == "sam_vit_b_01ec64.pth"


def test_missing_checkpoint_names_the_file_and_url_of_the_model(tmp_path, monkeypatch):
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    for model, c in CHECKPOINTS.items():
        with pytest.raises(SegmenterError) as exc:
            make_segmenter("sam", model_type=model, cache_dir=tmp_path)
        assert c.file in str(exc.value) and c.url in str(exc.value)
    notice = make_segmenter("auto", cache_dir=tmp_path).notice             # the CPU choice by default
    assert "sam_hq_vit_tiny.pth" in notice and CHECKPOINTS["hq_vit_tiny"].url in notice
