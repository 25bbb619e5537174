"""Captions for pictures that must read on their own (the headless demo's screenshots): a title
bar, a legend of coloured swatches, and a marker where the user clicked."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARKER_SHARE = 1 / 60   # click marker radius as a share of the image height (at least 7 px)
MARKER_COLOR = (255, 255, 255)
PAD = 6                 # pixels around the caption's text
TEXT_SHARE = 1 / 36     # caption text height as a share of the image height (at least 11 px)


def annotate(image: np.ndarray, title: str, legend: list[tuple[tuple[int, int, int] | None, str]] = (),
             click: tuple[float, float] | None = None) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W, 3]: `image` with a dark caption bar at the top holding
    `title` and then the `legend` entries ((r, g, b) swatch or None for the click marker, text),
    and a ring with a cross at viewer pixel `click` (x, y)."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture, "RGBA")
    draw.font = ImageFont.load_default(size=max(11, round(image.shape[0] * TEXT_SHARE)))
    line = draw.textbbox((0, 0), "Ag")[3] + 4                                   # text line height
    rows = [title] + [text for _, text in legend]
    draw.rectangle((0, 0, max(draw.textlength(r) for r in rows) + 3 * PAD + line, len(rows) * line + 2 * PAD),
                   fill=(0, 0, 0, 190))
    draw.text((PAD, PAD), title, fill=(255, 255, 255))
    for i, (color, text) in enumerate(legend, start=1):
        x, y = PAD, PAD + i * line
        if color is None:
            _marker(draw, x + line / 2, y + line / 2, line / 2 - 1)
        else:
            draw.rectangle((x, y + 1, x + line - 2, y + line - 1), fill=tuple(color))
        draw.text((x + line + PAD, y), text, fill=(255, 255, 255))
    if click is not None:
        _marker(draw, *click, max(7, round(image.shape[0] * MARKER_SHARE)))
    return np.asarray(picture)


def _marker(draw: ImageDraw.ImageDraw, x: float, y: float, r: float) -> None:
    """A white ring with a cross and a dark rim (seen on light and dark ground)."""
    draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), outline=(0, 0, 0), width=4)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=MARKER_COLOR, width=2)
    draw.line((x - r, y, x + r, y), fill=MARKER_COLOR, width=1)
    draw.line((x, y - r, x, y + r), fill=MARKER_COLOR, width=1)
