"""SegmentationSettings is the only home of the segmentation's defaults: the CLI reads them, and no
module keeps a second copy as a constant of its own."""

import ast
import dataclasses
from pathlib import Path

import components.resources
from components.resources import SegmentationSettings
from main import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_segment_options_default_to_the_settings_object(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Changed(SegmentationSettings):
        num_prompts: int = 7
        iou_gate: float = 0.25
        stop_after: int = 3

    monkeypatch.setattr(components.resources, "SegmentationSettings", Changed)
    args = build_parser().parse_args(["segment", "--out", "x", "--point", "1,1"])
    assert (args.num_prompts, args.iou_gate, args.stop_after) == (7, 0.25, 3)


def test_no_module_keeps_its_own_copy_of_a_setting():
    names = {f.name.upper() for f in dataclasses.fields(SegmentationSettings)} | {"LAMBDA_PROMPTED", "LAMBDA_SELF"}
    copies = []
    for path in sorted((ROOT / "systems").rglob("*.py")) + [ROOT / "main.py"]:
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            copies += [f"{path.relative_to(ROOT)}: {t.id}" for t in targets
                       if isinstance(t, ast.Name) and t.id in names]
    assert copies == []
