"""The segmenter-family registry: one entry makes a family a choice of every command, and a
recording's segmenter identity is written and read back through it."""

from argparse import Namespace
from pathlib import Path

import pytest

from main import build_parser
from systems.commands.replay import _segmenter
from systems.sam import families
from systems.sam.families import FAMILIES, SegmenterFamily, SegmenterOptions, family_of_checkpoint
from systems.sam.gt import GtSegmenter


class ToySegmenter:
    name = "toy"

    def __init__(self, options: SegmenterOptions):
        self.options = options


@pytest.fixture
def toy_family(monkeypatch):
    family = SegmenterFamily("toy", "a test family", ToySegmenter, source_option="checkpoint",
                             recognises=lambda path: path.suffix == ".toy")
    monkeypatch.setitem(FAMILIES, "toy", family)
    return family


@pytest.mark.parametrize("command", [["segment", "--out", "x", "--point", "1,1"], ["view"], ["replay", "f.jsonl"]])
def test_a_registered_family_is_a_segmenter_choice_of_every_command(toy_family, command):
    assert build_parser().parse_args([*command, "--segmenter", "toy"]).segmenter == "toy"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--segmenter", "nonesuch"])


def test_auto_hands_a_recognised_checkpoint_to_its_family(toy_family, tmp_path):
    from systems.sam.factory import make_segmenter

    weights = tmp_path / "model.toy"
    segmenter = make_segmenter("auto", checkpoint=str(weights))
    assert isinstance(segmenter, ToySegmenter) and segmenter.options.checkpoint == str(weights)
    assert family_of_checkpoint(Path("sam_vit_b_01ec64.pth")).name == "sam"


def test_a_replay_rebuilds_the_recorded_family_from_its_source_unless_the_options_name_one(toy_family):
    header = {"segmenter": {"name": "toy", "checkpoint": "none", "source": "/weights/a.toy"}}
    args = Namespace(segmenter=None, sam_checkpoint=None, gt_masks=None)
    assert _segmenter(args, header, "cpu").options.checkpoint == "/weights/a.toy"
    args.sam_checkpoint = "/weights/b.toy"
    assert _segmenter(args, header, "cpu").options.checkpoint == "/weights/b.toy"


def test_gt_records_its_mask_folder_and_replays_from_it(tmp_path):
    family = FAMILIES["gt"]
    segmenter = GtSegmenter(tmp_path)
    source = family.recording_source(segmenter, None)
    assert source == str(tmp_path)
    header = {"segmenter": {"name": "gt", "checkpoint": "none", "source": source}}
    again = _segmenter(Namespace(segmenter=None, sam_checkpoint=None, gt_masks=None), header, "cpu")
    assert isinstance(again, GtSegmenter) and again.mask_dir == tmp_path
    assert family.describe(segmenter) == "gt" and families.family_of(again) is family
