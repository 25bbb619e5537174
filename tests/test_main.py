"""The command line: six commands with help, one-line errors, no traceback for user mistakes."""

import subprocess
import sys
from pathlib import Path

import pytest

import main
from engine.errors import UserFacingError

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_the_six_commands():
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("view", "train", "segment", "eval", "export", "replay"):
        assert command in result.stdout


@pytest.mark.parametrize("command", list(main.COMMANDS))
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_user_errors_are_one_line_and_exit_2(monkeypatch, capsys):
    class Broken:
        @staticmethod
        def run(args):
            raise UserFacingError("scene 'nowhere' does not exist: give a folder or 'builtin'")

    monkeypatch.setattr(main, "_command_module", lambda name: Broken if name == "train" else
                        __import__(f"systems.commands.{name}", fromlist=["x"]))
    monkeypatch.setattr(main, "build_parser", lambda: _parser_with_train())
    assert main.main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith("error: scene 'nowhere'")


def _parser_with_train():
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("train")
    return parser


def test_bugs_keep_their_traceback(monkeypatch):
    class Buggy:
        @staticmethod
        def run(args):
            raise ZeroDivisionError("bug")

    monkeypatch.setattr(main, "_command_module", lambda name: Buggy)
    monkeypatch.setattr(main, "build_parser", lambda: _parser_with_train())
    with pytest.raises(ZeroDivisionError):
        main.main(["train"])


def test_no_command_means_view(monkeypatch):
    import systems.commands.view as view_command

    seen = []
    monkeypatch.setattr(view_command, "run", lambda args: seen.append(args.command) or 0)
    assert main.main([]) == 0
    assert seen == ["view"]
