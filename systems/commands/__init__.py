"""One module per command of main.py: `add_arguments(parser)` and `run(args) -> exit code`."""
