"""Box AP of trained checkpoints at per-image budgets K far above LVIS's 300, masks skipped.

Table 2's diagnosis of GAP alone: with no object-level loss its scores need not be comparable across
classes, so the K detections kept per image could miss the right class. Evaluating the same checkpoint
with up to max(K) detections per image tells whether that is what fails. Masks are skipped: pasting
thousands of masks per image is what makes a plain `rog evaluate` at K = 3,000 take hours on a CPU.

    python -m rog.report.budget gap_only ap_loss_only --k 10 100 300 3000
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rog.config import merge
from rog.engine import checkpoint
from rog.engine.inference import evaluate_checkpoint

METRICS = ("AP", "APr", "APc", "APf")


def skip_masks(model, _state=None) -> None:
    """Make a Mask R-CNN predict boxes only (torchvision's RoIHeads.has_mask() is then False)."""
    model.roi_heads.mask_roi_pool = None


def box_ap_by_budget(checkpoint_path, out_dir, ks: Sequence[int], dataset_root=None) -> dict[int, dict]:
    """{K: bbox metrics} of the checkpoint, evaluated with at most K detections per image, for each K.

    The model keeps max(ks) detections per image; out_dir receives results_bbox.json and metrics.json.
    dataset_root: where the dataset lies now (default: the checkpoint's own params).
    """
    ks = sorted({int(k) for k in ks})
    overrides = {"model": {"test": {"detections_per_img": ks[-1]}},
                 "evaluate": {"max_dets": ks[-1], "max_dets_sweep": ks}}
    if dataset_root is not None:
        overrides["dataset"] = {"root": str(dataset_root)}
    params = merge(checkpoint.load(checkpoint_path)["params"], overrides)
    metrics = evaluate_checkpoint(checkpoint_path, out_dir, params, adjust_model=skip_masks)
    return {int(k): entry["metrics"] for k, entry in metrics["bbox"]["max_dets_sweep"].items()}


def markdown(by_run: dict[str, dict[int, dict]]) -> str:
    """One row per (run, K): box AP, APr, APc, APf in percent."""
    lines = ["| run | K | " + " | ".join(f"box {m}" for m in METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for run, by_k in by_run.items():
        for k, m in sorted(by_k.items()):
            lines.append(f"| {run} | {k} | " + " | ".join(f"{100 * m[name]:.1f}" for name in METRICS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rog.report.budget", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run names under --runs-root")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100, 300, 3000], help="per-image budgets")
    parser.add_argument("--runs-root", default="out/pipeline/default/runs")
    parser.add_argument("--dataset-root", default="out/pipeline/default/dataset")
    parser.add_argument("--out", default="out/budget", help="folder for each run's results and metrics")
    args = parser.parse_args(argv)
    by_run = {run: box_ap_by_budget(Path(args.runs_root) / run / "model_final.pt", Path(args.out) / run,
                                    args.k, args.dataset_root) for run in args.runs}
    print(markdown(by_run), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
