"""Table 6's page: which data each number comes from, and real OpenImages runs beside the paper's when present.

params.yaml's ``tables.table6.openimages`` declares the folder (``results/openimages``) and its rows
(``{paper: ROW, runs: [NAME]}``, NAME a run of profile_experiments evaluated into FOLDER/NAME/ by
``rog evaluate --out``). With no metrics.json there the section says it is skipped and why; with
them it shows, per row, the paper's numbers, ours on the challenge metric (AP at IoU 0.5 and its
AP1..AP5, the paper's scale: EQLv2 reports this metric) and ours COCO-style (AP 0.50:0.95 and its
group means), all in percent.
"""
from __future__ import annotations

import json
from pathlib import Path

from rog.report import markdown

GROUPS = ("AP1", "AP2", "AP3", "AP4", "AP5")

PROVENANCE = (
    "**Where each number comes from.** The paper's: OpenImages (the 2019 challenge's 500 classes, validation "
    "split), Faster R-CNN R101-FPN at 2x; its APbbox and AP1..AP5 are the challenge's AP at IoU 0.5 (EQLv2, "
    "whose split the paper follows, averages that metric's per-class AP over five groups of 100 classes ranked "
    "by training instances). Ours in the table above: LT-Glyphs, the tiny CPU detector, box AP at IoU "
    "0.50:0.95, five groups of our categories ranked by training images. The section below puts real "
    "OpenImages runs, when there are any, beside the paper's.")


def _pct(value) -> str:
    return "—" if value is None or value < 0 else f"{100 * value:.1f}"


def _cells(values) -> list[str]:
    return ["—" if v is None else f"{v:.1f}" for v in values]


def openimages_section(definition: dict | None, paper_table: dict, root: str | Path = ".") -> list[str]:
    """Markdown blocks: the provenance paragraph and the real-OpenImages section (or why it is skipped)."""
    spec = (definition or {}).get("openimages") or {}
    folder = spec.get("folder", "results/openimages")
    rows = spec.get("rows") or []
    found = {}
    for row in rows:
        for run in row.get("runs") or []:
            path = Path(root) / folder / run / "metrics.json"
            if path.is_file():
                found[run] = json.loads(path.read_text()).get("openimages")
    head = "## On real OpenImages"
    if not any(found.values()):
        names = ", ".join(f"{folder}/{run}/metrics.json" for row in rows for run in row.get("runs") or [])
        return [PROVENANCE, head, f"Skipped: none of {names or '(no rows declared)'} is here. Train and evaluate "
                "them with the profile `oid_r101_2x` (README, \"Real OpenImages on GPUs\") to fill this section."]
    lines = []
    for row in rows:
        paper = (paper_table.get("rows") or {}).get(row["paper"]) or {}
        label = paper.get("label", row["paper"])
        lines.append([label, "paper (challenge AP@0.5)", *_cells(paper.get("values") or [None] * 6)])
        for run in row.get("runs") or []:
            oid = found.get(run)
            if not oid:
                lines.append([label, f"ours `{run}`: no metrics.json", *["—"] * 6])
                continue
            ch, bb = oid["challenge"], oid["bbox"]
            lines.append([label, f"ours `{run}`, challenge AP@0.5", _pct(ch.get("AP50")),
                          *(_pct(ch.get(g)) for g in GROUPS)])
            lines.append([label, f"ours `{run}`, COCO-style AP 0.50:0.95", _pct(bb.get("APbbox")),
                          *(_pct(bb.get(g)) for g in GROUPS)])
    return [PROVENANCE, head, f"From `{folder}/RUN/metrics.json` (`openimages`: rog.evaluation.groups); groups "
            "as EQLv2 (training instance count, five equal parts, AP1 the rarest).",
            markdown.table(["method", "numbers from", "APbbox", *GROUPS], lines).rstrip("\n")]
