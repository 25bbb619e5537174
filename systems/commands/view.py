"""`main.py view`: not built yet."""

import sys


def add_arguments(parser) -> None:
    parser.add_argument("rest", nargs="*", help="not available yet")


def run(args) -> int:
    print("error: the 'view' command is not built yet (see the open issues)", file=sys.stderr)
    return 3
