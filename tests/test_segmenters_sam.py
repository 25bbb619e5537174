"""The SAM backend on a tiny random-weight SAM: real SamPredictor path, embedding cache, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("segment_anything")
import torch

from systems.sam import SegmenterError, make_segmenter
from systems.sam.models import build_sam, load_sam
from systems.sam.sam import SamSegmenter, mask_prior_logits

H, W = 48, 64


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_sam.pth"
    torch.save(build_sam("tiny").state_dict(), path)
    return path


def test_checkpoint_round_trip_through_make_segmenter(tiny_checkpoint, tmp_path):
    seg = make_segmenter("sam", checkpoint=str(tiny_checkpoint), model_type="tiny", cache_dir=tmp_path)
    assert seg.name == "sam" and seg.notice is None
    seg.set_view(image())
    out = seg.predict(points=np.array([[10.0, 20.0], [40.0, 5.0]]), labels=np.array([1, 0]), multimask=True)
    assert out.masks.shape == (3, H, W) and out.masks.dtype == bool
    assert out.scores.dtype == np.float32 and np.isfinite(out.scores).all()
    reference = build_sam("tiny")
    reference.load_state_dict(torch.load(tiny_checkpoint, weights_only=True))
    for name, value in reference.state_dict().items():
        assert torch.equal(value, seg.predictor.model.state_dict()[name]), name


def test_second_set_view_skips_the_encoder(tiny_checkpoint, tmp_path):
    seg = SamSegmenter.from_checkpoint(tiny_checkpoint, model_type="tiny", cache_dir=tmp_path)
    calls = []
    seg.predictor.model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    seg.set_view(image(0))
    first = seg.predict(points=np.array([[10.0, 20.0]]), multimask=True)
    seg.set_view(image(1))
    seg.set_view(image(0))                                       # memory hit
    assert len(calls) == 2 and seg.encoder_runs == 2
    again = seg.predict(points=np.array([[10.0, 20.0]]), multimask=True)
    assert (again.masks == first.masks).all() and np.allclose(again.scores, first.scores)
    fresh = SamSegmenter.from_checkpoint(tiny_checkpoint, model_type="tiny", cache_dir=tmp_path)
    fresh.predictor.model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    fresh.set_view(image(0))                                     # disk hit, new process-like state
    assert len(calls) == 2 and fresh.encoder_runs == 0
    assert np.allclose(fresh.predict(points=np.array([[10.0, 20.0]]), multimask=True).scores, first.scores)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_other_weights_do_not_share_embeddings(tmp_path):
    torch.manual_seed(1)
    a = SamSegmenter(build_sam("tiny"), model_type="tiny", cache_dir=tmp_path)
    b = SamSegmenter(build_sam("tiny"), model_type="tiny", cache_dir=tmp_path)
    a.set_view(image())
    b.set_view(image())
    assert a.encoder_runs == b.encoder_runs == 1


def test_mask_prior_logits_follow_sams_frame():
    prior = np.zeros((H, W), np.float32)
    prior[:, : W // 2] = 1.0                                      # left half inside
    logits = mask_prior_logits(prior, (48, 64), 64, (16, 16))     # input 48x64 padded to 64x64
    assert logits.shape == (1, 16, 16) and logits.dtype == np.float32
    assert (logits[0, :12, :7] > 5).all() and (logits[0, :12, 9:] < -5).all()
    assert (logits[0, 12:] < -5).all()                            # padding rows are background


def test_mask_only_prompt_uses_mask_input_and_its_box(tiny_checkpoint):
    seg = SamSegmenter.from_checkpoint(tiny_checkpoint, model_type="tiny")
    seg.set_view(image())
    prior = np.zeros((H, W), np.float32)
    prior[10:30, 20:40] = 0.9
    assert seg.predict(mask=prior).masks.shape == (1, H, W)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_checkpoint_errors_are_one_line(tiny_checkpoint, tmp_path):
    url = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    with pytest.raises(SegmenterError) as exc:
        load_sam(tmp_path / "sam_vit_b_01ec64.pth")
    assert "does not exist" in one_line(exc) and url in one_line(exc)
    truncated = tmp_path / "sam_vit_b_truncated.pth"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(SegmenterError) as exc:
        load_sam(truncated)
    assert "truncated" in one_line(exc) and url in one_line(exc)
    not_state = tmp_path / "sam_vit_h_list.pth"
    torch.save([1, 2, 3], not_state)
    with pytest.raises(SegmenterError) as exc:
        load_sam(not_state)
    assert "not a state dict" in one_line(exc) and "sam_vit_h_4b8939.pth" in one_line(exc)
    state = torch.load(tiny_checkpoint, weights_only=True)
    state.pop("mask_decoder.iou_token.weight")
    missing_key = tmp_path / "missing_key.pth"
    torch.save(state, missing_key)
    with pytest.raises(SegmenterError) as exc:
        load_sam(missing_key, "tiny")
    assert "does not fit a tiny model" in one_line(exc) and "iou_token" in one_line(exc)
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["image_encoder.neck.0.weight"] = torch.zeros(3, 3, 1, 1)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save(state, wrong_shape)
    with pytest.raises(SegmenterError) as exc:
        load_sam(wrong_shape, "tiny")
    assert "size mismatch" in one_line(exc)
    with pytest.raises(SegmenterError) as exc:
        load_sam(tiny_checkpoint, "vit_x")
    assert "unknown SAM model type" in one_line(exc)


def test_auto_finds_checkpoint_in_cache_folder(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    (tmp_path / "sam").mkdir()
    target = tmp_path / "sam" / "sam_vit_b_01ec64.pth"
    target.write_bytes(tiny_checkpoint.read_bytes())              # tiny weights under vit_b's name
    with pytest.raises(SegmenterError, match="does not fit a vit_b model"):
        make_segmenter("auto", cache_dir=tmp_path)
    monkeypatch.setenv("SA3D_SAM_CHECKPOINT", str(tiny_checkpoint))
    assert make_segmenter("auto", model_type="tiny", cache_dir=tmp_path).name == "sam"
