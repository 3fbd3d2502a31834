"""GAP loss explained: the paper's Figure 3 toy example, its gradients, and speed against the official code.

Figure 3: three objects (person, dog, soccer ball), each classified correctly (its own class scores
highest in its row), yet in the ranking of the rare class "soccer ball" across objects the person's
soccer score (0.30) outranks the soccer ball's own (0.15), so soccer AP is 0.5. Classification losses
compare scores within a row; GAP compares them across rows, per class.
"""
from __future__ import annotations

import math
import time

import torch

from matplotlib.figure import Figure

from rog.losses import CategoryCounts, GAPLoss

CLASSES = ("person", "dog", "soccer ball")
# sigmoid scores of the paper's Figure 3: rows = objects, columns = classes
FIGURE3_SCORES = ((0.90, 0.05, 0.30),
                  (0.10, 0.80, 0.05),
                  (0.05, 0.10, 0.15))
FIGURE3_LABELS = (0, 1, 2)
# training counts behind the weights omega: person frequent, dog common, soccer ball rare
FIGURE3_COUNTS = (1000.0, 50.0, 5.0)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def figure3_example() -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [3, 3] float64, labels [3]) of the toy example (no background RoI)."""
    logits = torch.tensor([[logit(p) for p in row] for row in FIGURE3_SCORES], dtype=torch.float64)
    return logits, torch.tensor(FIGURE3_LABELS)


def classified_correctly(scores: torch.Tensor, labels: torch.Tensor) -> list[bool]:
    return (scores.argmax(1) == labels).tolist()


def ranking_ap(scores: torch.Tensor, labels: torch.Tensor, cls: int) -> float:
    """AP of class `cls` when all rows are ranked by their score for `cls` (ties: worst case)."""
    col = scores[:, cls]
    positive = labels == cls
    if not bool(positive.any()):
        return float("nan")
    precisions = []
    for i in torch.nonzero(positive)[:, 0].tolist():
        above = col >= col[i]
        precisions.append(float((above & positive).sum()) / float(above.sum()))
    return sum(precisions) / len(precisions)


def gap_module(num_classes: int = 3, weighting: str = "dataset", **options) -> GAPLoss:
    counts = torch.tensor(FIGURE3_COUNTS, dtype=torch.float64)[:num_classes]
    if weighting == "dataset":
        return GAPLoss(num_classes, weighting="dataset", class_counts=CategoryCounts.from_instance_counts(counts),
                       **options)
    return GAPLoss(num_classes, weighting=weighting, **options)


def gap_value_and_grad(logits: torch.Tensor, labels: torch.Tensor, gap: GAPLoss | None = None
                       ) -> tuple[float, torch.Tensor]:
    """GAP's value and its (error-driven) gradient w.r.t. the logits."""
    gap = gap if gap is not None else gap_module(logits.shape[1])
    z = logits.clone().requires_grad_(True)
    value = gap(z, labels)
    value.backward()
    return float(value.detach()), z.grad.detach()


def descend(logits: torch.Tensor, labels: torch.Tensor, steps: int = 20, lr: float = 1.0,
            loss: str = "gap") -> list[dict]:
    """Plain gradient descent on the logits with `loss` (gap | ce: sigmoid CE | both); per step the soccer
    AP, the mean per-class AP, whether every row is still classified correctly, the loss value and the
    sigmoid scores (rows = objects, columns = classes) before that step's update."""
    z = logits.clone()
    gap = gap_module(logits.shape[1])
    history = []
    for step in range(steps + 1):
        scores = torch.sigmoid(z)
        aps = [ranking_ap(scores, labels, c) for c in range(z.shape[1])]
        zz = z.clone().requires_grad_(True)
        terms = []
        if loss in ("gap", "both"):
            terms.append(gap(zz, labels))
        if loss in ("ce", "both"):
            target = torch.nn.functional.one_hot(labels, z.shape[1]).double()
            terms.append(torch.nn.functional.binary_cross_entropy_with_logits(zz, target, reduction="sum") / len(z))
        total = sum(terms)
        history.append({"step": step, "soccer_AP": aps[2], "mAP": sum(aps) / len(aps),
                        "all_correct": all(classified_correctly(scores, labels)), "loss": float(total.detach()),
                        "scores": scores.tolist()})
        if step == steps:
            break
        total.backward()
        z = z - lr * zz.grad.detach()
    return history


METHODS = (("ce", "sigmoid CE"), ("both", "CE + GAP"), ("gap", "GAP alone"))
OBJECT_COLOURS = ("#7f7f7f", "#bcbd22", "#d62728")  # person, dog grey/olive; the soccer ball red (highlighted)
METHOD_STYLES = {"ce": dict(color="#1f77b4", linestyle="-", marker="o", markersize=9),
                 "both": dict(color="#2ca02c", linestyle="--", marker="s", markersize=6),
                 "gap": dict(color="#d62728", linestyle=":", marker="^", markersize=4)}


def descents(steps: int = 6, lr: float = 1.0) -> dict[str, list[dict]]:
    """{method: descend(...) history} for sigmoid CE, CE + GAP and GAP alone on the Figure 3 toy."""
    logits, labels = figure3_example()
    return {loss: descend(logits, labels, steps=steps, lr=lr, loss=loss) for loss, _ in METHODS}


def plot_rankings(histories: dict[str, list[dict]], cls: int = 2) -> Figure:
    """One panel per method: each object's score for class `cls` (default soccer ball) before (step 0) and
    after one gradient step (step 1), so the ranking AP measures reads top to bottom on each side; the
    object whose ground truth is `cls` is drawn red and thick. Titles give the class's AP before and after."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, len(METHODS), sharey=True)
    for ax, (loss, label) in zip(axes, METHODS):
        before, after = histories[loss][0], histories[loss][1]
        for obj, name in enumerate(CLASSES):
            own = FIGURE3_LABELS[obj] == cls
            ys = [before["scores"][obj][cls], after["scores"][obj][cls]]
            ax.plot([0, 1], ys, color=OBJECT_COLOURS[obj], marker="o", linewidth=3 if own else 1.5,
                    label=f"{name} (object {obj + 1})")
            for x, y, ha in ((0, ys[0], "right"), (1, ys[1], "left")):
                ax.annotate(f"{y:.2f}", (x, y), xytext=(-6 if ha == "right" else 6, 0), textcoords="offset points",
                            ha=ha, va="center", fontsize=8, color=OBJECT_COLOURS[obj])
        ap0, ap1 = ranking_ap(torch.tensor(before["scores"]), torch.tensor(FIGURE3_LABELS), cls), \
            ranking_ap(torch.tensor(after["scores"]), torch.tensor(FIGURE3_LABELS), cls)
        ax.set_title(f"{label}: {CLASSES[cls]} AP {ap0:.2f} \u2192 {ap1:.2f}", fontsize=10)
        ax.set_xticks([0, 1], ["before", "after 1 step"])
        ax.set_xlim(-0.45, 1.45)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"score for \"{CLASSES[cls]}\"")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(CLASSES), fontsize=9,
               title=f"object (red, thick: the one whose ground truth is {CLASSES[cls]})", title_fontsize=9)
    return fig


def plot_ap_per_step(histories: dict[str, list[dict]], key: str = "soccer_AP") -> Figure:
    """`key` (soccer_AP or mAP) against the gradient step, one line per method, from `histories`."""
    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    for loss, label in METHODS:
        history = histories[loss]
        ax.plot([h["step"] for h in history], [h[key] for h in history], label=label, **METHOD_STYLES[loss])
    ax.set_xlabel("gradient step on the logits (lr 1)")
    ax.set_ylabel("soccer ball AP" if key == "soccer_AP" else "mean AP over the 3 classes")
    ax.set_ylim(0.4, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def speed_against_official(rows: list[int], repeats: int = 3) -> list[dict]:
    """Forward+backward seconds of GAPLoss and of the official O(P x N) algorithm (rog.report.official_gap) on
    LVIS-like batches of `rows` RoIs; with the largest gradient difference relative to the largest."""
    from rog.report import official_gap as bench

    out = []
    for r in rows:
        logits, labels = bench.lvis_like_batch(r, "cpu")
        omega = bench.omega_for(labels)
        g_ours, g_ref = bench.ours(logits, labels, omega), bench.reference(logits, labels, omega)
        times = {}
        for name, fn in (("ours", bench.ours), ("official", bench.reference)):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                fn(logits, labels, omega)
                best = min(best, time.perf_counter() - start)
            times[name] = best
        out.append({"rows": r, "ours_s": times["ours"], "official_s": times["official"],
                    "speedup": times["official"] / times["ours"],
                    "max_rel_diff": float((g_ours - g_ref).abs().max() / g_ref.abs().max())})
    return out
