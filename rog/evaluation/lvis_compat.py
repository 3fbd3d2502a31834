"""The one place that imports lvis-api (PyPI ``lvis`` 0.5.3) and makes it run under numpy 2.

lvis 0.5.3, the last release, calls ``np.float`` in ``LVISEval.accumulate``; numpy removed that alias
in 1.24. The fix is on lvis-api's GitHub master (PR #42) but was never released, so we restore the
alias here, once, before lvis is imported. Two more side effects of lvis are undone here: its
``__init__`` calls ``logging.basicConfig`` (configuring the application's root logger), and
``LVISResults`` logs a warning every time it is given a list rather than a file.
Everything else in rog imports lvis through this module:

    from rog.evaluation.lvis_compat import LVIS, LVISEval, LVISResults
"""
from __future__ import annotations

import logging

import numpy as np


def patch_numpy_for_lvis() -> None:
    """Restore ``np.float`` (= builtin float, what it always was) if numpy no longer has it.

    Idempotent; a numpy that still has the alias is left untouched.
    """
    if "float" not in np.__dict__:
        np.float = float  # type: ignore[attr-defined]


def _import_lvis():
    """Import lvis without letting it configure the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import lvis

    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.getLogger("lvis.results").addFilter(
        lambda record: "Assuming user provided the results" not in record.getMessage())
    return lvis


patch_numpy_for_lvis()
_lvis = _import_lvis()
LVIS, LVISEval, LVISResults = _lvis.LVIS, _lvis.LVISEval, _lvis.LVISResults

__all__ = ["LVIS", "LVISEval", "LVISResults", "patch_numpy_for_lvis"]
