"""Viewer state (plain data) and its messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

VIEW_MODES = ("scene", "object alone", "object removed")


@dataclass
class ViewerSettings:
    """What the viewer shows. Written by handle_viewer_input and the UI (the user's choices)."""
    overlay: bool = True                 # tint segmented objects with their colours
    view_mode: int = 0                   # index into VIEW_MODES, about the active object
    hidden: set[int] = field(default_factory=set)        # object ids not tinted
    prompt_size: int = 256               # longest side of the view a free-camera click is segmented on
    show_ui: bool = True
    prompted: bool = False               # a click was segmented (the first-frame hint is gone)
    quit_asked: bool = False             # Esc / Ctrl+Q was pressed while recording: the next one quits


@dataclass(frozen=True)
class ScreenshotRequested:
    """Write the next finished frame (full resolution) to `path` as PNG (with the UI when windowed)."""
    path: Path


@dataclass(frozen=True)
class ScreenshotSaved:
    path: Path


@dataclass
class ViewerLog:
    """Lines shown in the UI's status area (newest last), e.g. segmenter notices, rejected prompts."""
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines = (self.lines + [line])[-6:]
