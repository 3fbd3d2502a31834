"""The paper's tables from our runs, the paper's numbers beside ours.

build(params, name) -> Table: one row per row of params.yaml's tables.NAME, each with our mean and
spread over its runs (seeds) and the paper's value, column by column (the columns and the metric
each reads are in paper_numbers.yaml). Table 3 (max detections K) has its own builder, `build_k_sweep`.
`markdown(table)` renders it; whether the paper's claims hold is rog.report.claims.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rog.pipeline.registry import sections
from rog.report.markdown import signed
from rog.report.markdown import table as markdown_table
from rog.report.prose import say
from rog.report.results import aggregate, load_metrics, paper_numbers, value

@dataclass
class Row:
    key: str
    label: str
    runs: list[str]
    found: list[str]
    ours: list[float | None]
    spread: list[float | None]
    paper: list[float | None]
    skipped: list[str] = field(default_factory=list)  # runs left out of this profile (smoke)


@dataclass
class Table:
    name: str
    source: str
    columns: list[str]
    metrics: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"{self.name}: no row '{key}'")


def build(params: dict, name: str, root: str | Path = ".", paper: dict | None = None) -> Table:
    """Table `name` (a key of tables/figures in params) with our numbers read below `root`."""
    paper = paper if paper is not None else paper_numbers()
    spec = paper[name]
    columns = list((spec.get("columns") or {}).keys())
    paths = list((spec.get("columns") or {}).values())
    rows = []
    for row in sections(params)[name].get("rows") or []:
        ref = spec["rows"][row["paper"]]
        runs = list(row.get("runs") or [])
        loaded = {r: load_metrics(r, root) for r in runs}
        found = [r for r in runs if loaded[r] is not None]
        ours, spread = [], []
        for path in paths:
            mean, sd, _ = aggregate([value(loaded[r], path) for r in found])
            ours.append(mean)
            spread.append(sd)
        values = ref.get("values")
        if isinstance(values, list):  # the paper has no number for our extra columns (box APr/c/f)
            values = list(values) + [None] * (len(columns) - len(values))
        label = ref["label"] + (" + GAP" if ref.get("gap") else "")
        rows.append(Row(row["paper"], label, runs, found, ours, spread,
                        list(values) if isinstance(values, list) else [None] * len(columns),
                        list(row.get("skipped") or [])))
    notes = [spec["note"]] if spec.get("note") else []
    return Table(name, spec["source"], columns, paths, rows, notes)


def fmt(mean: float | None, sd: float | None = None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.1f}" if sd is None else f"{mean:.1f} ± {sd:.1f}"


def markdown(table: Table, drop_empty: bool = False) -> str:
    """The table as Markdown: per column ours (mean ± sd over seeds) and the paper's. drop_empty: leave
    out the value columns that are "-" in every row (e.g. the paper's, for a table it has no numbers of)."""
    head = ["row", "runs"] + [f"{c} {who}" for c in table.columns for who in ("ours", "paper")]
    body = []
    for row in table.rows:
        if row.skipped and not row.found:
            runs = f"not run in this profile ({', '.join(row.skipped)})"
        elif not row.runs:
            runs = "not registered"
        elif not row.found:
            runs = "not run"
        else:
            runs = ", ".join(row.found) + (f" ({len(row.found)} seeds)" if len(row.found) > 1 else "")
        cells = [cell for o, s, p in zip(row.ours, row.spread, row.paper) for cell in (fmt(o, s), fmt(p))]
        body.append([row.label.replace("|", "/"), runs] + cells)
    keep = [i for i in range(len(head))
            if i < 2 or not drop_empty or any(cells[i] != "-" for cells in body)]
    paired = not drop_empty  # every metric's ours beside its paper's: split a wide table between pairs
    return markdown_table([head[i] for i in keep], [[cells[i] for i in keep] for cells in body], keys=2,
                          group=2 if paired else 1)


# ---- Table 3: the max-detections sweep ---------------------------------------------------------------
def build_k_sweep(params: dict, root: str | Path = ".", paper: dict | None = None) -> dict:
    """Table 3: for each row, APr/APc/APf at every K of our sweep and the relative change from the
    smallest K to each larger one; the paper's K = 50 -> 100 beside it.

    Returns {"k": [K...], "k_common": [the K every run found has], "columns": [...], "iou": "bbox" | "segm",
    "rows": [{key, label, found,
    ours: {K: [..]}, gain: {K: [..]}, points: {K: [..]}, paper: {K: [..]}, paper_gain: [..]}]}; gain: the
    change in percent of the smallest K's AP (None where that AP is 0), points: the change in AP points.
    """
    paper = paper if paper is not None else paper_numbers()
    spec = paper["table3"]
    columns = list(spec["columns"])
    iou = {path.split(".")[0] for path in spec["columns"].values()}.pop()  # one iou type for the table
    rows = []
    ks: list[int] = []
    common: set[int] | None = None      # the K every run of both rows has: what the verdict compares
    for row in sections(params)["table3"].get("rows") or []:
        ref = spec["rows"][row["paper"]]
        loaded = {r: load_metrics(r, root) for r in row.get("runs") or []}
        found = [r for r, m in loaded.items() if m is not None]
        for r in found:
            run_ks = {int(k) for k in loaded[r].get(iou, {}).get("max_dets_sweep", {})}
            common = run_ks if common is None else common & run_ks
        sweep_ks = sorted({int(k) for r in found for k in loaded[r].get(iou, {}).get("max_dets_sweep", {})})
        ks = sorted(set(ks) | set(sweep_ks))
        ours = {k: [aggregate([value(loaded[r], f"{iou}.K{k}.{c}") for r in found])[0] for c in columns]
                for k in sweep_ks}
        rows.append({"key": row["paper"], "label": ref["label"], "found": found, "ours": ours,
                     "paper": {int(k): v for k, v in ref["values"].items()}})
    for row in rows:
        base = row["ours"].get(ks[0]) if ks else None
        row["gain"] = {k: [_relative(b, v) for b, v in zip(base, vals)] if base else [None] * len(columns)
                       for k, vals in row["ours"].items()}
        row["points"] = {k: [None if b is None or v is None else v - b for b, v in zip(base, vals)] if base
                         else [None] * len(columns) for k, vals in row["ours"].items()}
        k0, k1 = sorted(row["paper"])[:2]
        row["paper_gain"] = [_relative(b, v) for b, v in zip(row["paper"][k0], row["paper"][k1])]
    return {"k": ks, "k_common": sorted(common or []), "columns": columns, "rows": rows, "source": spec["source"],
            "note": spec.get("note"), "iou": iou}


def _relative(base: float | None, new: float | None) -> float | None:
    if base is None or new is None or base <= 0:
        return None
    return 100.0 * (new - base) / base




def _gain_cell(value: float | None, gain: float | None, points: float | None) -> str:
    if gain is not None:
        return f"{fmt(value)} ({signed(gain)}%)"
    return fmt(value) + (f" ({signed(points)} pt)" if points is not None else "")


def k_sweep_markdown(sweep: dict) -> str:
    """Ours at every K of the sweep (gain from the smallest K); the paper's value in the rows of the K it
    reports (50, 100: its gain beside the larger), blank elsewhere."""
    cols = sweep["columns"]
    head = ["row", "K"] + [f"{c} ours (gain vs smallest K)" for c in cols] + [f"{c} paper (K 50 -> 100)" for c in cols]
    lines = []
    for row in sweep["rows"]:
        k0, k1 = sorted(row["paper"])[:2]

        def paper_cells(k: int | None) -> list[str]:
            if k is None:  # a row not run: the paper's whole comparison
                return [f"{row['paper'][k0][i]:.1f} -> {row['paper'][k1][i]:.1f}" for i in range(len(cols))]
            if k not in (k0, k1):
                return [""] * len(cols)
            return [fmt(row["paper"][k][i]) + (f" (+{row['paper_gain'][i]:.1f}%)"
                                                if k == k1 and row["paper_gain"][i] is not None else "")
                    for i in range(len(cols))]

        if not row["ours"]:
            lines.append([row["label"], "not run"] + ["-"] * len(cols) + paper_cells(None))
            continue
        for k in sorted(row["ours"]):
            first = k == min(row["ours"])
            cells = [fmt(v) if first else _gain_cell(v, g, pt)
                     for v, g, pt in zip(row["ours"][k], row["gain"][k], row["points"][k])]
            lines.append([row["label"], str(k)] + cells + paper_cells(k))
    return markdown_table(head, lines, keys=2)


def profile_note(profiles: list[str]) -> str:
    """One sentence on the profile(s) the runs were made with (smoke numbers mean nothing)."""
    if not profiles:
        return say("tables.no_results")
    text = say("tables.profiles", profiles=", ".join(profiles))
    return text + (" " + say("tables.smoke") if "smoke" in profiles else "")
