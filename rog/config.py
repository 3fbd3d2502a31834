"""params.yaml -> the params of one run: `resolve_run` (the only resolver; CLI, pipeline, benchmarks and
notebooks all call it).

params.yaml layout::

    dataset: {...}      # defaults, one section per stage (RUN_SECTIONS)
    model: {...}
    train: {...}
    evaluate: {...}
    pretrain: {...}
    profiles:           # named overlays: smoke (CI), default (CPU laptop), lvis_r50_1x (GPUs)
      smoke: {dataset: {...}, train: {...}}
    profile: default    # the profile used when none is named (the pipeline's)
    schedule: {length: 1.0}   # train.iterations x length (an experiment may set its own)
    experiments:        # named overlays: the experiment registry (the pipeline trains each)
      sigmoid_ce: {model: {...}}
    profile_experiments:  # overlays that exist only under one profile, outside the pipeline
      oid_r101_2x: {oid_eqlv2: {model: {...}}}
    posthoc:            # a trained experiment's checkpoint evaluated another way
      softmax_ce_norcal: {source: softmax_ce, norcal_gamma: 1.0}

Order: defaults <- profile <- experiment (then its schedule.length applied) <- `--set` overrides. An
overlay may only set keys that the defaults define, so a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from rog.paths import DEFAULT_PROFILE, resolve_weights
from rog.schema import ParamsError, check_params  # every value's type and range (registry names: rog.engine.registries)

RUN_SECTIONS = ("dataset", "model", "train", "evaluate", "pretrain")

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


def apply_overrides(params: Mapping, overrides: Iterable[str]) -> dict:
    """`params` with each 'key.path=value' merged in, in order."""
    out = copy.deepcopy(dict(params))
    for text in overrides:
        out = merge(out, parse_override(text))
    return out


def _entry(params: Mapping, experiment: str, profile: str | None = None) -> tuple[dict, dict]:
    """(experiment overlay, evaluate overlay) of a registry name: an experiment, a post-hoc entry
    (its source experiment's overlay; NorCal's gamma as evaluate.norcal_gamma), or an experiment of
    `profile` in profile_experiments (outside the pipeline; another profile's is refused)."""
    experiments = params.get("experiments") or {}
    posthoc = params.get("posthoc") or {}
    own = params.get("profile_experiments") or {}
    if experiment in experiments:
        return experiments[experiment] or {}, {}
    if experiment in (own.get(profile) or {}):
        return own[profile][experiment] or {}, {}
    owners = sorted(p for p, entries in own.items() if experiment in (entries or {}))
    if owners:
        raise ParamsError(f"experiment '{experiment}' belongs to profile {' / '.join(owners)} "
                          f"(profile_experiments), not to profile '{profile}': add --profile {owners[0]}")
    if experiment in posthoc:
        spec = posthoc[experiment] or {}
        source = spec.get("source")
        if source not in experiments:
            raise ParamsError(f"posthoc.{experiment}.source '{source}' is not an experiment")
        return experiments[source] or {}, {"norcal_gamma": float(spec.get("norcal_gamma", 1.0))}
    valid = ", ".join(sorted([*experiments, *posthoc, *(own.get(profile) or {})])) or "(none)"
    raise ParamsError(f"unknown experiment '{experiment}'; valid: {valid}")


def _scale_schedule(train: dict, length: float, where: str) -> None:
    """train.iterations x length (at least 1); warmup capped at the new length."""
    if length <= 0:
        raise ParamsError(f"{where}: schedule.length must be > 0, got {length}")
    if length != 1.0:
        train["iterations"] = max(1, round(int(train["iterations"]) * length))
        train["warmup_iterations"] = min(int(train["warmup_iterations"]), train["iterations"])


def profile_name(params: str | Path | Mapping = "params.yaml", profile: str | None = None) -> str:
    """The profile a run uses: `profile`, else params.yaml's top-level `profile`, else 'default'."""
    if profile:
        return profile
    raw = read_yaml(params) if not isinstance(params, Mapping) else params
    return raw.get("profile") or DEFAULT_PROFILE


def resolve_run(
    params: str | Path | Mapping = "params.yaml",
    profile: str | None = None,
    experiment: str | None = None,
    overrides: Iterable[str] = (),
    weights: str | Path | None = None,
) -> dict:
    """The params one run uses: {dataset, model, train, evaluate, pretrain}, nothing of the registry.

    params: params.yaml's path or its dict. profile: a name in `profiles` (None: params' `profile`, else
    'default'). experiment: a name in `experiments` or `posthoc` (a post-hoc name resolves to its
    source's params with evaluate.norcal_gamma set). Order: defaults <- profile <- experiment, then
    train.iterations x schedule.length (the experiment's, else the top-level one; `schedule.length=...`
    overrides count here), then the other overrides. model.weights 'pretrain' becomes
    `weights` (default: the pretrain stage's output for the profile). Errors name the file.
    """
    where = str(params) if not isinstance(params, Mapping) else "params"
    try:
        raw = read_yaml(params) if not isinstance(params, Mapping) else dict(params)
        profile = profile_name(raw, profile)
        profiles = raw.get("profiles") or {}
        if profile not in profiles and profile != DEFAULT_PROFILE:
            raise ParamsError(f"unknown profile '{profile}'; valid: {', '.join(sorted(profiles)) or '(none)'}")
        resolved = {k: copy.deepcopy(raw[k]) for k in RUN_SECTIONS if k in raw}
        resolved = merge(resolved, profiles.get(profile) or {}, f"profiles.{profile}")
        schedule = {"length": 1.0, **(raw.get("schedule") or {})}
        evaluate: dict = {}
        if experiment is not None:
            overlay, evaluate = _entry(raw, experiment, profile)
            overlay = dict(overlay)
            schedule.update(overlay.pop("schedule", None) or {})
            resolved = merge(resolved, overlay, f"experiments.{experiment}")
        overrides = list(overrides)
        schedule_sets = [o for o in overrides if o.strip().startswith("schedule.")]
        schedule = apply_overrides({"schedule": schedule}, schedule_sets)["schedule"]
        _scale_schedule(resolved["train"], float(schedule["length"]), f"experiments.{experiment}"
                        if experiment else "schedule")
        resolved = merge(resolved, {"evaluate": evaluate})
        resolved = apply_overrides(resolved, [o for o in overrides if o not in schedule_sets])
    except ParamsError as err:
        if where in str(err):
            raise
        raise ParamsError(f"{where}: {err}") from None
    return resolve_weights(check_params(resolved), profile, weights)


def step_iterations(iterations: int, steps: list[float]) -> list[int]:
    """The iterations at which the lr drops (train.lr_steps): each fraction of `steps` times `iterations`,
    rounded. rog.engine.schedule trains with it; the report draws the drops with it."""
    return [round(float(s) * iterations) for s in steps]
