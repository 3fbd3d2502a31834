"""rog.losses reused alone: no dataset code, no detector, no image library; one class-count type."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch

import rog.losses
from rog.losses import GAPLoss, CategoryCounts
from rog.losses.objectives import OBJECTIVES, NorCal

ROOT = Path(__file__).resolve().parents[1]


def test_import_pulls_in_no_data_detector_or_pil():
    # a fresh interpreter: this test process has long imported everything
    code = ("import json, sys, rog.losses; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('rog', 'PIL', 'torchvision'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    assert "rog.losses.gap" in loaded  # the probe sees the package's own modules
    offending = [m for m in loaded if m == "PIL" or m.startswith(("PIL.", "rog.data", "rog.models", "torchvision"))]
    assert offending == []


def test_data_reexports_the_losses_count_type():
    from rog.data import CategoryCounts as from_data
    from rog.data.counts import CategoryCounts as from_data_counts
    assert from_data is CategoryCounts and from_data_counts is CategoryCounts


def counts_parameters():
    """(owner, parameter name, annotation) of every count-taking parameter of every loss constructor
    (a parameter named *count* that is not a switch or a number)."""
    owners = dict(OBJECTIVES, GAPLoss=GAPLoss, NorCal=NorCal)
    for name, owner in owners.items():
        hints = typing.get_type_hints(owner.__init__ if inspect.isclass(owner) else owner)
        for param in inspect.signature(owner).parameters:
            if "count" in param and hints[param] not in (bool, int, float):
                yield name, param, hints[param]


def test_every_loss_takes_the_same_count_type():
    found = list(counts_parameters())
    assert {name for name, _, _ in found} >= {"eql", "ecm", "gol", "federated", "norcal", "GAPLoss", "NorCal"}
    for name, param, hint in found:
        assert param == "class_counts" and hint == typing.Optional[CategoryCounts], (name, param, hint)


def test_one_counts_object_builds_every_loss():
    counts = CategoryCounts(instance_count=torch.tensor([400, 60, 9, 2]), image_count=torch.tensor([200, 30, 5, 1]),
                            num_images=1000, frequency=("f", "c", "r", "r"))
    logits = torch.randn(6, 6, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 4, 4])
    for name in OBJECTIVES:
        objective = rog.losses.build_objective(name, 4, counts)
        z = logits[:, :objective.num_outputs]
        assert all(torch.isfinite(v) for v in objective.loss(z, labels).values()), name
    gap = GAPLoss(4, weighting="dataset", class_counts=counts)
    assert gap.class_counts.tolist() == [400.0, 60.0, 9.0, 2.0]  # GAP's fixed omega reads instance counts


def test_from_instance_counts():
    counts = CategoryCounts.from_instance_counts(torch.tensor([150.0, 20.0, 3.0]))
    assert counts.instance_count.tolist() == [150, 20, 3] and counts.image_count.tolist() == [150, 20, 3]
    assert counts.num_images == 173 and counts.frequency == ("f", "c", "r")
    for bad in (torch.tensor([1.5, 2.0]), torch.tensor([-1, 2]), torch.ones(2, 2)):
        with pytest.raises(ValueError, match="from_instance_counts"):
            CategoryCounts.from_instance_counts(bad)
