import sys
from pathlib import Path

import torch

# tests import their oracles (tests/*_oracles.py) as plain modules
sys.path.insert(0, str(Path(__file__).parent))
# two cores shared by the whole suite: one thread avoids oversubscription and keeps runs reproducible
torch.set_num_threads(1)


import pytest  # noqa: E402


@pytest.fixture(params=["dense", "compact"])
def pool_layout(request, monkeypatch):
    """Run a ranking-loss test with the negative pool kept whole and with it compacted."""
    monkeypatch.setattr("rog.losses.pool.COMPACT_BELOW", 0.0 if request.param == "dense" else 1.01)
    return request.param


@pytest.fixture(scope="session")
def params():
    """params.yaml as written (the registry included), read once."""
    from rog.pipeline import registry

    return registry.read_params(Path(__file__).resolve().parents[1] / "params.yaml")


@pytest.fixture(scope="session")
def paper():
    """The paper's numbers (rog/report/paper_numbers.yaml)."""
    from rog.report.results import paper_numbers

    return paper_numbers()
