"""sa3d: segment anything in 3D with radiance fields. `python main.py --help` lists the commands."""

from __future__ import annotations

import argparse
import importlib
import os
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__)
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
    args = build_parser().parse_args(argv)
    try:
        return int(_command_module(args.command).run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # user errors are one line; anything else is a bug and keeps its traceback
        if _is_user_error(error):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


def _is_user_error(error: BaseException) -> bool:
    from engine.errors import UserFacingError

    return isinstance(error, (UserFacingError, UserError))


if __name__ == "__main__":
    sys.exit(main())
