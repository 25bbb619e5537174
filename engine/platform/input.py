"""Input as plain data: events from the window (or a script) and the state they build up.

Keys are named as GLFW names them without the KEY_ prefix ("W", "LEFT_SHIFT", "1", "TAB");
mouse positions are window pixels (x right, y down), the viewer image's pixel convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeyEvent:
    key: str
    pressed: bool                                   # False: released
    mods: frozenset[str] = frozenset()              # "shift" | "ctrl" | "alt" | "super"


@dataclass(frozen=True)
class MouseMoveEvent:
    x: float
    y: float


@dataclass(frozen=True)
class MouseButtonEvent:
    button: str                                     # "left" | "right" | "middle"
    pressed: bool
    mods: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScrollEvent:
    dy: float                                       # wheel steps, > 0 away from the user


InputEvent = KeyEvent | MouseMoveEvent | MouseButtonEvent | ScrollEvent


@dataclass
class InputState:
    """What the input stage knows this frame. Written by the input systems, read by the rest."""
    keys: set[str] = field(default_factory=set)           # keys held down
    buttons: set[str] = field(default_factory=set)        # mouse buttons held down
    mouse: tuple[float, float] | None = None              # last cursor position
    right_drag: tuple[float, float] = (0.0, 0.0)          # cursor motion this frame after a right press
    scroll: float = 0.0                                   # wheel steps this frame
    events: list = field(default_factory=list)            # this frame's events, in order
    want_mouse: bool = False                              # the UI uses the mouse: scene ignores it
    want_keyboard: bool = False                           # the UI uses the keyboard (text entry)

    def begin_frame(self) -> None:
        """Forget the previous frame's events, drag motion and scroll (held keys and buttons stay)."""
        self.events = []
        self.right_drag = (0.0, 0.0)
        self.scroll = 0.0

    def apply(self, event: InputEvent) -> None:
        """Fold one event into the state and this frame's event list."""
        self.events.append(event)
        if isinstance(event, KeyEvent):
            (self.keys.add if event.pressed else self.keys.discard)(event.key)
        elif isinstance(event, MouseButtonEvent):
            (self.buttons.add if event.pressed else self.buttons.discard)(event.button)
        elif isinstance(event, MouseMoveEvent):
            # Only motion after the press drags: a move then a press in one frame does not swing the view.
            if self.mouse is not None and "right" in self.buttons:
                dx, dy = self.right_drag
                self.right_drag = (dx + event.x - self.mouse[0], dy + event.y - self.mouse[1])
            self.mouse = (event.x, event.y)
        elif isinstance(event, ScrollEvent):
            self.scroll += event.dy

    def key_presses(self) -> list[KeyEvent]:
        """Keys pressed this frame (empty while the UI wants the keyboard)."""
        if self.want_keyboard:
            return []
        return [e for e in self.events if isinstance(e, KeyEvent) and e.pressed]

    def clicks(self) -> list[tuple[MouseButtonEvent, tuple[float, float]]]:
        """Mouse button presses this frame with the cursor position (empty while the UI wants the mouse)."""
        if self.want_mouse:
            return []
        position, found = self.mouse, []
        for event in self.events:
            if isinstance(event, MouseMoveEvent):
                position = (event.x, event.y)
            elif isinstance(event, MouseButtonEvent) and event.pressed and position is not None:
                found.append((event, position))
        return found
