"""Training loop, checkpoints, distributed helpers, inference and diagnostics."""
