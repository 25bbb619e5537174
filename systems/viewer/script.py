"""Scripted input: a list of timed steps fed into the input stage in place of (or beside) a window.

A script is a JSON list of steps, each a dict run `after` frames (default 1) after the previous one:
  {"key": "W", "hold": 10}                 press W, release it 10 frames later (hold 0: a tap)
  {"move": [x, y]}                         move the cursor to window pixel (x, y)
  {"drag": [dx, dy], "frames": 10}         right-button drag by (dx, dy) spread over the frames
  {"click": [x, y], "mods": ["shift"]}     left click at (x, y)
  {"scroll": 1.0}
  {"wait": "segmented"}                    wait until no segmentation work is pending
  {"wait": "still"}                        wait until the frame is drawn at full resolution
  {"screenshot": "out.png"}                request a screenshot
  {"rename": "sphere"}                     rename the active object
  {"quit": true}                           stop the viewer
Conditions for "wait" come from the `waits` mapping given to the ScriptPlayer (name -> fn(app)).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.messages import RenameObjectRequested
from components.resources import ActiveObject
from engine.errors import UserFacingError
from engine.platform.input import InputState, KeyEvent, MouseButtonEvent, MouseMoveEvent, ScrollEvent
from systems.viewer.resources import ScreenshotRequested

STEP_KINDS = ("key", "move", "drag", "click", "scroll", "wait", "screenshot", "rename", "quit")


class ScriptError(UserFacingError):
    """An input script that cannot be read."""


def load_script(path: str | Path) -> list[dict]:
    """Read and check a JSON input script; raises ScriptError naming the file and the bad step."""
    try:
        steps = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ScriptError(f"cannot read input script {path} ({error}): give a JSON list of steps") from None
    if not isinstance(steps, list):
        raise ScriptError(f"input script {path} must be a JSON list of steps")
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not any(k in step for k in STEP_KINDS):
            raise ScriptError(f"step {i} of {path} is not one of {', '.join(STEP_KINDS)}: {step!r}")
    return steps


@dataclass
class ScriptPlayer:
    """Plays steps into InputState. Written by play_script only."""
    steps: list[dict]
    waits: dict[str, Callable] = field(default_factory=dict)
    index: int = 0                         # next step
    countdown: int = 1                     # frames until the next step runs
    pending: list[tuple[int, object]] = field(default_factory=list)   # (frames left, event) to send later

    @property
    def finished(self) -> bool:
        return self.index >= len(self.steps) and not self.pending


def play_script(app) -> None:
    """Reads ScriptPlayer, ActiveObject; writes InputState (events), sends ScreenshotRequested and
    RenameObjectRequested, may request exit."""
    player, state = app.resource(ScriptPlayer), app.resource(InputState)
    still_pending = []
    for frames, event in player.pending:
        if frames <= 0:
            state.apply(event)
        else:
            still_pending.append((frames - 1, event))
    player.pending = still_pending
    player.countdown -= 1
    while player.index < len(player.steps) and player.countdown <= 0:
        step = player.steps[player.index]
        if "wait" in step:
            if step["wait"] not in player.waits:
                raise ScriptError(f"unknown wait condition {step['wait']!r}: use one of {sorted(player.waits)}")
            if not player.waits[step["wait"]](app):
                return
        _run_step(app, player, state, step)
        player.index += 1
        if player.index < len(player.steps):
            player.countdown = int(player.steps[player.index].get("after", 1))


def _run_step(app, player: ScriptPlayer, state: InputState, step: dict) -> None:
    mods = frozenset(step.get("mods", ()))
    if "key" in step:
        state.apply(KeyEvent(step["key"], True, mods))
        player.pending.append((int(step.get("hold", 0)), KeyEvent(step["key"], False, mods)))
    elif "move" in step:
        state.apply(MouseMoveEvent(*map(float, step["move"])))
    elif "drag" in step:
        x, y = state.mouse or (0.0, 0.0)
        frames = max(1, int(step.get("frames", 10)))
        dx, dy = (float(v) / frames for v in step["drag"])
        state.apply(MouseButtonEvent("right", True))
        player.pending += [(f, MouseMoveEvent(x + dx * (f + 1), y + dy * (f + 1))) for f in range(frames)]
        player.pending.append((frames, MouseButtonEvent("right", False)))
    elif "click" in step:
        state.apply(MouseMoveEvent(*map(float, step["click"])))
        state.apply(MouseButtonEvent("left", True, mods))
        player.pending.append((0, MouseButtonEvent("left", False, mods)))
    elif "scroll" in step:
        state.apply(ScrollEvent(float(step["scroll"])))
    elif "screenshot" in step:
        app.send(ScreenshotRequested(Path(step["screenshot"])))
    elif "rename" in step:
        app.send(RenameObjectRequested(app.resource(ActiveObject).object_id, str(step["rename"])))
    elif "quit" in step:
        app.exit_requested = True
