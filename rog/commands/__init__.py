"""One module per `python -m rog` sub-command; each exposes `add_arguments(parser)` and `run(args) -> int`."""
