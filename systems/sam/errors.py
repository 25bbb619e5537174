"""User-fixable errors of the 2D segmenters (main.py prints them as one line, exit code 2)."""

from engine.errors import UserFacingError


class SegmenterError(UserFacingError):
    """A segmenter that cannot run: missing or wrong SAM checkpoint, missing ground-truth mask file."""


class PromptError(UserFacingError):
    """A prompt the segmenter cannot use: a point outside the image, no prompt at all, bad shapes."""
