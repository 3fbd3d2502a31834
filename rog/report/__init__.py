"""Presentation: the runs' results read back, tables beside the paper's numbers, the paper's claims
checked, figures, one run's view, the README headline, the GAP toy example."""
