"""The fidelity table: LT-Glyphs beside LVIS v1 on what decides whether the baselines behave as the paper's.

A proxy earns the right to judge GAP only where sigmoid CE starves rare classes and RFS and EQLv2 largely
repair it, as on LVIS v1 (Table 1, mask APr / APf 0.03, 0.43, 0.53). Three parts:

- data: the training set's categories, images, instances and how steep its tail is (rog.data.fidelity);
- training: the schedule's exposure of a rare image, RFS's factors (at the threshold the sampler uses),
  the start;
- phenomena: the baselines' APr / APf from results/ (box and mask), the baselines being the Table 1 rows
  that rog/report/lvis_v1_statistics.yaml names, each read through params.yaml's table1 rows.

LVIS v1's column comes from lvis_v1_statistics.yaml (published figures, each with its source) and the
paper's Table 1 (paper_numbers.yaml).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from rog.report import markdown as md
from rog.report import provenance_table
from rog.report.prose import say
from rog.report.regime import regime
from rog.report.results import aggregate, load_metrics, paper_numbers, profiles_of, value

LVIS_STATISTICS = Path(__file__).with_name("lvis_v1_statistics.yaml")
DATA_ROWS = (  # (key of rog.data.fidelity, label)
    ("categories", "categories r / c / f"),
    ("train_images", "training images (annotated)"),
    ("instances", "training instances"),
    ("instances_per_image", "instances per image"),
    ("categories_per_image", "categories per image"),
    ("max_instances", "max / min instances of a category"),
    ("total_over_median_rare", "total instances / median rare category's"),
    ("median_frequent_over_median_rare", "median frequent / median rare instances"),
    ("top_category_image_share", "top category's share of images"),
    ("rare_instance_share", "rare share of instances"),
)
TRAINING_ROWS = (
    ("epochs", "epochs of the 1x schedule"),
    ("rare_image_seen_random", "times a rare image is seen, random sampling"),
    ("rare_image_seen_rfs", "times a rare image is seen, RFS (median)"),
    ("rfs_factor_rare", "RFS factors of rare categories"),
    ("rfs_factor_common", "RFS factors of common categories"),
    ("rfs_threshold", "RFS threshold t used"),
    ("start", "start"),
)


@dataclass(frozen=True)
class Row:
    section: str   # data | training | phenomena
    label: str
    ours: str
    lvis: str


def lvis_statistics(path: str | Path = LVIS_STATISTICS) -> dict:
    return yaml.safe_load(Path(path).read_text())


def fmt(value, key: str = "") -> str:
    """One cell: shares as %, ranges as lo-hi, large counts with separators, others to 2-3 figures."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " / ".join(str(value[g]) for g in ("r", "c", "f"))
    if isinstance(value, (list, tuple)):
        return (" / " if key == "max_instances" else "-").join(fmt(v) for v in value)
    if key.endswith("share"):
        return f"{100 * value:.2g} %" if value < 0.01 else f"{100 * value:.0f} %"
    if value != value:  # nan
        return "-"
    if abs(value) >= 10_000 or (abs(value) >= 1000 and not float(value).is_integer()):
        return f"{value / 1000:,.0f}k" if abs(value) >= 100_000 else f"{value / 1000:,.1f}k"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"


def lvis_cell(entry: dict | None, key: str) -> str:
    if entry is None:
        return "-"
    text = fmt(entry["value"], key)
    return (f"{entry['bound']} " if entry.get("bound") else "~" if entry.get("approx") else "") + text


def our_statistics(params: dict, dataset_root: str | Path) -> dict:
    """rog.data.fidelity's data and exposure figures of the rendered training set, at the resolved params
    (`params`: an RFS run's, so that the threshold is the one its sampler uses)."""
    from rog.data.fidelity import data_statistics, exposure
    from rog.data.sampler import scaled_threshold

    path = Path(dataset_root) / params["dataset"]["train_json"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training set; render it with `python -m rog dataset` (or `make data`)")
    train = json.loads(path.read_text())
    stats = data_statistics(train)
    sampler, tp = params["dataset"]["sampler"], params["train"]
    threshold = scaled_threshold(sampler["repeat_threshold"], sampler.get("threshold_images"), stats["train_images"])
    stats.update(exposure(train, int(tp["iterations"]), int(tp["batch_size"]), threshold))
    stats["start"] = "detector pretrained on disjoint glyphs" if params["model"].get("weights") else "from scratch"
    stats["max_instances"] = [stats["max_instances"], stats["min_instances"]]
    return stats


def baseline_runs(params: dict, row: str) -> list[str]:
    """The runs of table1's row `row` in params.yaml's registry ([] when the row has none, e.g. in a subset)."""
    for entry in (params.get("tables") or {}).get("table1", {}).get("rows", []):
        if entry["paper"] == row:
            return list(entry["runs"])
    raise KeyError(f"params.yaml tables.table1 has no row '{row}' (rog/report/lvis_v1_statistics.yaml names it)")


def ratio_cell(runs: list[str], root: str | Path, kind: str) -> str:
    """Our APr / APf on `kind` (bbox | segm): the ratio of the means over the runs."""
    metrics = [load_metrics(r, root) for r in runs]
    rare, _, n = aggregate([value(m, f"{kind}.APr") for m in metrics])
    frequent, _, _ = aggregate([value(m, f"{kind}.APf") for m in metrics])
    if not n or not frequent:
        return "-"
    return f"{rare / frequent:.2f}" + (f" ({n} seeds)" if n > 1 else "")


def rows(params: dict, run_params: dict, dataset_root: str | Path, root: str | Path = ".",
         statistics: dict | None = None) -> list[Row]:
    """The fidelity table. run_params: the resolved params of an RFS run of the profile."""
    lvis = statistics or lvis_statistics()
    ours = our_statistics(run_params, dataset_root)
    out = [Row("data", label, fmt(ours.get(key), key), lvis_cell(lvis["rows"].get(key), key))
           for key, label in DATA_ROWS]
    out += [Row("training", label, fmt(ours.get(key), key), lvis_cell(lvis["rows"].get(key), key))
            for key, label in TRAINING_ROWS]
    paper = paper_numbers()["table1"]["rows"]
    all_runs = [r for b in lvis["baselines"] for r in baseline_runs(params, b["row"])]
    commits = provenance_table.training_code(all_runs, root)
    made = (", ".join(profiles_of(all_runs, root)) or "none yet") + (" " + say("fidelity.code", commits=commits)
                                                                     if commits else "")
    found = regime(params, root, all_runs)
    if found["other"]:
        made += say("fidelity.not_current", other=len(found["other"]), runs=len(found["runs"]))
    if found["unknown"]:   # no hash recorded, or the pretrained detector is absent: not known to differ
        made += say("fidelity.unchecked", unknown=len(found["unknown"]), runs=len(found["runs"]))
    out.append(Row("phenomena", "results/ made with profile", made, "ROG paper, Table 1"))
    for baseline in lvis["baselines"]:
        runs = baseline_runs(params, baseline["row"])
        values = paper[baseline["row"]]["values"]  # APbbox, AP, APr, APc, APf (mask)
        mask = f"{values[2] / values[4]:.2f}"
        out.append(Row("phenomena", f"{baseline['label']}: box APr / APf", ratio_cell(runs, root, "bbox"), "-"))
        out.append(Row("phenomena", f"{baseline['label']}: mask APr / APf", ratio_cell(runs, root, "segm"), mask))
    return out


def profile_rows(params: dict, profile: str, dataset_root: str | Path, root: str | Path = ".") -> list[Row]:
    """The fidelity table of `profile` (params: params.yaml's dict). The sampler's threshold is the profile's
    (an experiment picks RFS with dataset.sampler.kind; the threshold is not an experiment's)."""
    from rog.config import resolve_run

    return rows(params, resolve_run(params, profile), dataset_root, root)


def markdown(table: list[Row]) -> str:
    body = []
    section = None
    for row in table:
        if row.section != section:
            section = row.section
            body.append([f"**{section}**", "", ""])
        body.append([row.label, row.ours, row.lvis])
    return md.table(["", "LT-Glyphs", "LVIS v1"], body)


TABLE = Path("results/tables/fidelity.md")  # the dataset page writes it, the overview shows it (dvc.yaml: both)


def write_table(markdown_table: str, root: str | Path = ".") -> Path:
    """The fidelity table's Markdown as TABLE below `root`; returns its path."""
    path = Path(root) / TABLE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_table)
    return path


def read_table(root: str | Path = ".") -> str | None:
    """TABLE below `root`, None while the dataset page has not written it."""
    path = Path(root) / TABLE
    return path.read_text() if path.is_file() else None
