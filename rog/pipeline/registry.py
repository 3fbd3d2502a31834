"""The compendium's registry in params.yaml: experiments, post-hoc evaluations, tables and figures.

    profile: default                  # the profile the pipeline runs
    schedule: {length: 1.0}           # train.iterations = the profile's x length (per experiment)
    experiments: {NAME: overlay}      # trained and evaluated by stage experiment@NAME
    posthoc: {NAME: {source: EXP, norcal_gamma: g}}   # EXP's checkpoint scored with NorCal (stage posthoc@NAME)
    tables: {NAME: {rows: [{paper: ROW, runs: [RUN, ...]}]}}   # figure: true: the page draws one too
    figures: {NAME: {rows: [...]}}    # same layout as tables (convergence: learning curves, curves: true)
    subsets: {NAME: {profile: P, experiments: [...], posthoc: [...]}}  # smoke (CI), quick
    profile_experiments: {PROFILE: {NAME: overlay}}  # only under PROFILE (`rog params/train --profile
                                      # PROFILE --experiment NAME`); never a stage of the pipeline

A "run" is an experiment or a post-hoc evaluation; both write results/experiments/RUN/metrics.json.
Several runs in one row are seeds of one setting (mean and spread). The params of a run are
rog.config.resolve_run's (schedule.length included); this module only reads and checks the registry.
"""
from __future__ import annotations

import copy
from pathlib import Path

from rog.config import ParamsError, read_yaml
from rog.paths import RESULTS_DIR

RESULTS = Path(RESULTS_DIR)



class RegistryError(ParamsError):
    """The registry in params.yaml is inconsistent (e.g. a table names an unknown run)."""


def run_names(params: dict) -> list[str]:
    """Every run: the experiments, then the post-hoc evaluations."""
    return list(params.get("experiments") or {}) + list(params.get("posthoc") or {})


def sections(params: dict) -> dict[str, dict]:
    """tables and figures, one mapping name -> definition."""
    return {**(params.get("tables") or {}), **(params.get("figures") or {})}


def table_runs(params: dict, name: str) -> list[str]:
    """The distinct runs a table or figure reads, in row order."""
    definition = sections(params).get(name)
    if definition is None:
        raise RegistryError(f"no table or figure '{name}'; valid: {', '.join(sorted(sections(params)))}")
    seen: list[str] = []
    for row in definition.get("rows") or []:
        for run in row.get("runs") or []:
            if run not in seen:
                seen.append(run)
    return seen


def metrics_path(run: str, root: str | Path = ".") -> Path:
    return Path(root) / RESULTS / run / "metrics.json"


def diagnostics_path(run: str, root: str | Path = ".") -> Path:
    return Path(root) / RESULTS / run / "diagnostics.json"


def curve_path(run: str, root: str | Path = ".") -> Path:
    return Path(root) / RESULTS / run / "curve.json"


def validate(params: dict, paper: dict | None = None) -> None:
    """Raise RegistryError on the first inconsistency: unknown runs or paper rows, bad post-hoc sources,
    subsets naming unknown entries, names DVC or `-S` cannot address."""
    experiments = params.get("experiments") or {}
    posthoc = params.get("posthoc") or {}
    for name in run_names(params):
        if not name.replace("_", "").isalnum():
            raise RegistryError(f"run name '{name}': use letters, digits and '_' only (it is a DVC stage "
                                "name and a dotted params key)")
    clash = sorted(set(experiments) & set(posthoc))
    if clash:
        raise RegistryError(f"names used both as experiment and post-hoc evaluation: {clash}")
    for profile, entries in (params.get("profile_experiments") or {}).items():
        if profile not in (params.get("profiles") or {}):
            raise RegistryError(f"profile_experiments.{profile}: not a profile")
        for name in entries or {}:
            if not name.replace("_", "").isalnum() or name in experiments or name in posthoc:
                raise RegistryError(f"profile_experiments.{profile}.{name}: use letters, digits and '_' only, "
                                    "and a name that is not an experiment or post-hoc evaluation")
    for name, spec in posthoc.items():
        if (spec or {}).get("source") not in experiments:
            raise RegistryError(f"posthoc.{name}.source '{(spec or {}).get('source')}' is not an experiment")
    runs = set(run_names(params))
    for table, definition in sections(params).items():
        for row in (definition or {}).get("rows") or []:
            if "paper" not in row:
                raise RegistryError(f"{table}: every row needs 'paper' (its row in paper_numbers.yaml)")
            unknown = [r for r in row.get("runs") or [] if r not in runs]
            if unknown:
                raise RegistryError(f"{table}, row '{row['paper']}': unknown runs {unknown}")
            if paper is not None:
                rows = (paper.get(table) or {}).get("rows") or {}
                if row["paper"] not in rows:
                    raise RegistryError(f"{table}: row '{row['paper']}' is not in paper_numbers.yaml's {table}")
    check_questions(params)
    for subset, spec in (params.get("subsets") or {}).items():
        spec = spec or {}
        if spec.get("profile") not in (params.get("profiles") or {}):
            raise RegistryError(f"subsets.{subset}.profile '{spec.get('profile')}' is not a profile")
        for key, pool in (("experiments", experiments), ("posthoc", posthoc)):
            unknown = [n for n in spec.get(key) or [] if n not in pool]
            if unknown:
                raise RegistryError(f"subsets.{subset}.{key} names unknown entries {unknown}")
        for name in spec.get("posthoc") or []:
            if posthoc[name]["source"] not in (spec.get("experiments") or []):
                raise RegistryError(f"subsets.{subset}.posthoc '{name}' needs its source "
                                    f"'{posthoc[name]['source']}' in subsets.{subset}.experiments")


def subset_params(params: dict, subset: str = "smoke") -> dict:
    """params.yaml for a subset (subsets.NAME): its profile (with the subset's `overlay` merged into it), only
    its experiments and post-hoc runs; table rows keep the runs that remain and list the others under `skipped`."""
    spec = (params.get("subsets") or {}).get(subset)
    if spec is None:
        raise RegistryError(f"no subset '{subset}'; valid: {', '.join(sorted(params.get('subsets') or {}))}")
    out = copy.deepcopy(params)
    out["profile"] = spec["profile"]
    if spec.get("overlay"):
        profiles = out.setdefault("profiles", {})
        profiles[spec["profile"]] = merge_open(profiles.get(spec["profile"]) or {}, spec["overlay"])
    out["experiments"] = {k: v for k, v in (params.get("experiments") or {}).items()
                          if k in (spec.get("experiments") or [])}
    out["posthoc"] = {k: v for k, v in (params.get("posthoc") or {}).items() if k in (spec.get("posthoc") or [])}
    out["subsets"] = {subset: copy.deepcopy(spec)}  # the others name runs this copy does not have
    kept = set(run_names(out))
    # runs of the registry this copy lacks: the questions still name them (their pages say "not in results/")
    out["subsets"][subset]["removed"] = [r for r in run_names(params) if r not in kept]
    for section in ("tables", "figures"):
        for definition in (out.get(section) or {}).values():
            for row in definition.get("rows") or []:
                runs = row.get("runs") or []
                row["runs"] = [r for r in runs if r in kept]
                skipped = [r for r in runs if r not in kept]
                if skipped:
                    row["skipped"] = skipped
    return out


def merge_open(base: dict, overlay: dict) -> dict:
    """A profile with `overlay` merged in: sections the profile lacks are added whole (a profile sets only some)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_open(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_params(path: str | Path = "params.yaml") -> dict:
    return read_yaml(path)


def question(params: dict, name: str) -> dict:
    """params.yaml's `questions.NAME`: the table rows and runs one question of the report reads, by role."""
    return dict((params.get("questions") or {}).get(name) or {})


def row_runs(params: dict, ref: str) -> list[str]:
    """The runs of a row named 'TABLE/ROW' (ROW: the row's `paper` key, which may hold '/'); [] when absent."""
    table, _, key = ref.partition("/")
    rows = (sections(params).get(table) or {}).get("rows") or []
    return next((list(row.get("runs") or []) for row in rows if row.get("paper") == key), [])


def pair_runs(params: dict) -> dict[str, list[str]]:
    """{label: runs} of the look-alike page's pair (questions.lookalike.pair: the rows without and with GAP)."""
    return {entry["label"]: row_runs(params, entry["row"]) for entry in question(params, "lookalike").get("pair") or []}


def _leaves(node, key: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v, key)
    else:
        yield key, node


def check_questions(params: dict) -> None:
    """RegistryError unless every row a question names ('TABLE/ROW') is a row of that table and every run
    it names is a run of the registry (values under `label`, `objective`, `paper_profile`, `kind`, `metric` are
    not runs)."""
    runs = set(run_names(params)).union(*((s or {}).get("removed") or [] for s in (params.get("subsets") or {}).values()))
    for name, spec in (params.get("questions") or {}).items():
        for key, leaf in _leaves(spec):
            if key in ("label", "objective", "paper_profile", "kind", "metric") or not isinstance(leaf, str):
                continue
            if "/" in leaf:
                table, _, row = leaf.partition("/")
                keys = [r.get("paper") for r in (sections(params).get(table) or {}).get("rows") or []]
                if row not in keys:
                    raise RegistryError(f"questions.{name}: '{leaf}' is no row of {table}")
            elif leaf not in runs:
                raise RegistryError(f"questions.{name}: unknown run '{leaf}'")
