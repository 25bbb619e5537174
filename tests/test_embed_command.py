"""`main.py embed`: a scene's embeddings computed ahead land where `segment` / `view` look for them."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("segment_anything")
import torch

from engine.scenes import load_scene
from main import main
from systems.commands import embed
from systems.sam.models import build_sam
from systems.sam.sam import SamSegmenter


def test_embed_fills_the_cache_that_segment_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("systems.sam.factory.sa3d_cache_dir", lambda: tmp_path)    # the scene stays cached
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    torch.save(build_sam("tiny").state_dict(), checkpoint)
    args = argparse.Namespace(scene="builtin-64", downscale=None, device="cpu", sam_checkpoint=str(checkpoint),
                              sam_model="tiny", views="3")
    assert embed.run(args) == 0
    assert "3 encoded, 0 already cached" in capsys.readouterr().out
    assert embed.run(args) == 0
    assert "0 encoded, 3 already cached" in capsys.readouterr().out
    scene = load_scene("builtin-64")
    segmenter = SamSegmenter.from_checkpoint(checkpoint, model_type="tiny", cache_dir=tmp_path / "sam" / "embeddings")
    view = scene.train_ids[0]
    segmenter.set_view(np.asarray(scene.images[view]), view_name=scene.view_names[view])    # as segment does
    assert segmenter.encoder_runs == 0


def test_embed_without_a_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("systems.sam.factory.sa3d_cache_dir", lambda: tmp_path)
    monkeypatch.delenv("SA3D_SAM_CHECKPOINT", raising=False)
    assert main(["embed", "builtin-64", "--sam-model", "mobile_sam"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no SAM checkpoint: download mobile_sam.pt")
