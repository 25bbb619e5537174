"""sa3d: segment anything in 3D with radiance fields. `python main.py --help` lists the commands."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys

# Torch and Mesa's llvmpipe share the cores: a spinning OpenMP pool starves the renderer.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

COMMANDS = {
    "view": "open the interactive viewer on a scene (the default command)",
    "train": "train the radiance field of a scene",
    "segment": "segment an object from prompts on one view and propagate it over the views",
    "embed": "compute a scene's SAM embeddings ahead, so that segment and view start with them ready",
    "eval": "score predicted masks against ground-truth masks (mIoU, mAcc)",
    "export": "write a segmented object as a grid, point cloud, mesh, masks or renders",
    "replay": "replay a recorded segmentation session headless",
}


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's own errors (an unknown option, a missing value) as one `error:` line, exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see python {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="main.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = _command_module(name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        command.add_arguments(p)
    return parser


def _command_module(name: str):
    return importlib.import_module(f"systems.commands.{name}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "view")
    parser = build_parser()
    args = parser.parse_args(join_negative_values(parser, argv))
    try:
        return int(_command_module(args.command).run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # user errors are one line; anything else is a bug and keeps its traceback
        line = user_error_line(error)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


NEGATIVE_VALUE = re.compile(r"-\.?\d")   # "-3,70", "-.5": a value, though argparse reads "-..." as an option
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS)


def join_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--point -3,70` -> `--point=-3,70` for options that take one value, so that a negative
    coordinate reaches the command's own check ("outside the image") instead of argparse's
    "expected one argument"."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    command = commands.get(argv[0]) if argv else None
    if command is None:
        return argv
    takes_value = {s for a in command._actions if a.option_strings and a.nargs is None for s in a.option_strings}
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] in takes_value and NEGATIVE_VALUE.match(token):
            joined[-1] = f"{joined[-1]}={token}"
        else:
            joined.append(token)
    return joined


def user_error_line(error: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug (kept as a traceback):
    the project's UserFacingError, a full disk or a forbidden path, and memory the machine lacks."""
    from engine.errors import UserFacingError

    if isinstance(error, (UserFacingError, UserError)):
        return str(error)
    if isinstance(error, OSError) and error.errno in MACHINE_ERRNOS:
        where = f" {error.filename}" if error.filename else ""
        return f"cannot write{where} ({error.strerror}): free space or choose a writable --out"
    out_of_memory = isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))
    if out_of_memory:
        return ("out of memory: lower --resolution, raise --downscale or use a smaller scene "
                f"({type(error).__name__})")
    return None


if __name__ == "__main__":
    sys.exit(main())
