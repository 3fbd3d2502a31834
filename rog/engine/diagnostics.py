"""Diagnostics for the paper's figures, saved with each run.

- Figure 4: per class c, the accumulated magnitude of the gradient that the classification loss sends
  to the logit z_ic of positives (RoIs labelled c) and of negatives (every other RoI, background
  included), separately for the objective and for the ranking term alone. The logits are tapped twice, once per
  loss, so each hook sees only its own loss's gradient.
- Figure 5a: the L2 norm of each class's classifier weight vector.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from rog.engine import distributed

SOURCES = ("objective", "gap")  # "gap": the ranking term, whichever it is (the key results/ and the report read)


class GradientStats:
    """Accumulates |dL/dz_ic| over training, per class c < C, split by target, for each loss source.

    pos[source] [C]: sum over RoIs labelled c of |grad of column c|.
    neg[source] [C]: sum over RoIs not labelled c (background included) of |grad of column c|.
    Accumulated per process; `summed()` adds them over processes.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.pos = {s: torch.zeros(num_classes, dtype=torch.float64) for s in SOURCES}
        self.neg = {s: torch.zeros(num_classes, dtype=torch.float64) for s in SOURCES}

    def tap(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits [R, K], labels [R] in 0..C -> two aliases of logits (objective's, the ranking term's) with hooks."""
        if not logits.requires_grad:
            return logits, logits
        labels = labels.detach()
        aliases = []
        for source in SOURCES:
            alias = logits.view_as(logits)
            alias.register_hook(self._hook(source, labels))
            aliases.append(alias)
        return aliases[0], aliases[1]

    def _hook(self, source: str, labels: torch.Tensor):
        def accumulate(grad: torch.Tensor) -> None:
            c = self.num_classes
            magnitude = grad[:, :c].detach().abs().double().cpu()
            target = torch.zeros_like(magnitude, dtype=torch.bool)
            fg = labels.cpu() < c
            target[fg.nonzero()[:, 0], labels.cpu()[fg]] = True
            self.pos[source] += (magnitude * target).sum(0)
            self.neg[source] += (magnitude * ~target).sum(0)
        return accumulate

    def state_dict(self) -> dict:
        return {"pos": {s: t.clone() for s, t in self.pos.items()},
                "neg": {s: t.clone() for s, t in self.neg.items()}}

    def load_state_dict(self, state: dict) -> None:
        for s in SOURCES:
            self.pos[s] = state["pos"][s].clone().double()
            self.neg[s] = state["neg"][s].clone().double()

    def summed(self) -> dict:
        """state_dict with every tensor summed over processes (a collective call: all ranks must call)."""
        return {"pos": {s: distributed.all_reduce_sum(t) for s, t in self.pos.items()},
                "neg": {s: distributed.all_reduce_sum(t) for s, t in self.neg.items()}}


def weight_norms(classifier: torch.nn.Module) -> list[float]:
    """[K] L2 norm of each row of the classifier weight (first C rows: the classes)."""
    return classifier.weight.detach().double().norm(dim=1).cpu().tolist()


def write(path: str | Path, stats: dict | None, norms: list[float], num_classes: int, iteration: int,
          category_ids: list[int] | None = None, frequency: list[str] | None = None) -> Path:
    """diagnostics.json: gradient sums (and their pos/neg ratio) per source, weight norms, class info."""
    out = {"iteration": iteration, "num_classes": num_classes, "category_ids": category_ids,
           "frequency": frequency, "classifier_weight_norm": norms[:num_classes],
           "classifier_extra_weight_norm": norms[num_classes:], "gradients": {}}
    if stats is not None:
        for s in SOURCES:
            pos, neg = stats["pos"][s], stats["neg"][s]
            ratio = torch.where(neg > 0, pos / neg.clamp(min=1e-300), torch.zeros_like(pos))
            out["gradients"][s] = {"positive": pos.tolist(), "negative": neg.tolist(), "ratio": ratio.tolist()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(path)
    return path
