"""Read params.yaml: defaults, then a profile, then an experiment, then `--set key=value` overrides.

params.yaml layout::

    dataset: {...}      # defaults, one section per stage
    model: {...}
    train: {...}
    evaluate: {...}
    profiles:           # named overlays: smoke (CI), default (CPU laptop), lvis_r50_1x (GPUs)
      smoke: {dataset: {...}, train: {...}}
    experiments:        # named overlays: the experiment registry
      sigmoid_ce: {model: {...}}

An overlay may only set keys that the defaults define, so a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

OVERLAY_SECTIONS = ("profiles", "experiments")


class ParamsError(ValueError):
    """params.yaml, a profile, an experiment or an override is invalid."""


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def merge(base: Mapping, overlay: Mapping, where: str = "") -> dict:
    """Return `base` updated by `overlay`, recursively; keys absent from `base` are an error.

    A mapping in `base` whose value is None or {} is open: it accepts any keys (e.g. loss options).
    """
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in out:
            valid = ", ".join(sorted(map(str, out))) or "(none)"
            raise ParamsError(f"unknown parameter '{path}'; valid keys here: {valid}")
        if isinstance(out[key], Mapping) and not isinstance(value, Mapping):
            raise ParamsError(f"'{path}' is a section, not a value: set its keys ({path}.KEY=...), got {value!r}")
        if isinstance(out[key], Mapping) and out[key] and isinstance(value, Mapping):
            out[key] = merge(out[key], value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """'train.lr=0.01' -> {'train': {'lr': 0.01}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise ParamsError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else ""
    nested: Any = value
    for part in reversed(key.strip().split(".")):
        if not part:
            raise ParamsError(f"override '{text}' has an empty key part")
        nested = {part: nested}
    return nested


def resolve(
    params: Mapping,
    profile: str | None = None,
    experiment: str | None = None,
    overrides: Iterable[str] = (),
) -> dict:
    """Resolve the effective parameters; `profile` and `experiment` are names in params."""
    defaults = {k: v for k, v in params.items() if k not in OVERLAY_SECTIONS}
    resolved = copy.deepcopy(defaults)
    for section, name in (("profiles", profile), ("experiments", experiment)):
        if name is None:
            continue
        table = params.get(section) or {}
        if name not in table:
            valid = ", ".join(sorted(table)) or "(none)"
            raise ParamsError(f"unknown {section[:-1]} '{name}'; valid: {valid}")
        resolved = merge(resolved, table[name] or {}, f"{section}.{name}")
    for text in overrides:
        resolved = merge(resolved, parse_override(text))
    from rog.schema import check_params  # every value's type and range (rog/schema.py)

    return check_params(resolved)


def load_params(
    path: str | Path = "params.yaml",
    profile: str | None = None,
    experiment: str | None = None,
    overrides: Iterable[str] = (),
) -> dict:
    """Read `path` and resolve it (see `resolve`). Errors name the file."""
    try:
        return resolve(read_yaml(path), profile, experiment, overrides)
    except ParamsError as err:
        if str(path) in str(err):
            raise
        raise ParamsError(f"{path}: {err}") from None
