"""2D segmenters behind one protocol: SAM (segment_anything), a weight-free fallback, GT masks.

Import the protocol and the factory from here; backends load their heavy dependencies lazily.
"""

from systems.sam.errors import PromptError, SegmenterError
from systems.sam.factory import make_segmenter
from systems.sam.protocol import Segmenter, SegmentResult

__all__ = ["PromptError", "SegmentResult", "Segmenter", "SegmenterError", "make_segmenter"]
