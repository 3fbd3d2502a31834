"""The report's prose, kept apart from its numbers: templates in rog/report/prose.yaml, filled from records.

    say("gap_alone.starvation", **answer.values)   # one template, its {fields} filled

Fields use str.format's syntax ({x:.1f}, {verdict.threshold:.1f}) plus specs of ours: {x:+.1f} prints a
signed number that never reads -0.0 (rog.report.markdown.signed), and no {x:.0f} reads -0 either; for a
stats.Verdict v, {v:+apart} and {v:apart} print its difference and its threshold at the decimals that tell
them apart (a borderline verdict never reads "+2.7, real above 2.7"). A missing field raises KeyError naming
the template, so a renamed value cannot print a stale sentence.
"""
from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import yaml

from rog.report import markdown

PROSE = Path(__file__).with_name("prose.yaml")


class _Formatter(string.Formatter):
    def format_field(self, value, spec: str) -> str:
        if spec in ("apart", "+apart") and hasattr(value, "threshold"):   # a stats.Verdict: "+2.71 (> 2.70)"
            digits = markdown.digits_apart(value.difference, value.threshold)
            return markdown.signed(value.difference, digits) if spec == "+apart" else f"{value.threshold:.{digits}f}"
        if spec.startswith("+") and isinstance(value, (int, float)) and spec.endswith("f"):
            return markdown.signed(float(value), int(spec[2:-1]) if spec.startswith("+.") else 1)
        text = super().format_field(value, spec)
        if isinstance(value, float) and spec.endswith("f") and text.lstrip().startswith("-") and float(text) == 0:
            return super().format_field(0.0, spec)     # "-0 %": a small negative that rounds to zero, unsigned
        return text


def templates() -> dict:
    """prose.yaml's templates (PROSE, read once per path)."""
    return _load(PROSE)


@cache
def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def template(key: str) -> str:
    """The template at dotted `key` (e.g. "gap_alone.starvation"), surrounding whitespace stripped."""
    node = templates()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{PROSE.name}: no template '{key}'")
        node = node[part]
    return " ".join(str(node).split())


def say(key: str, **values) -> str:
    """Template `key` filled with `values`."""
    try:
        return _Formatter().format(template(key), **values)
    except KeyError as err:
        raise KeyError(f"{PROSE.name}: template '{key}' needs {err}") from None
