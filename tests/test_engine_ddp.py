"""Two processes under torchrun (gloo): they train one model and agree on the summed statistics.

Run by pytest, this file starts `torchrun --nproc_per_node 2 tests/test_engine_ddp.py ...`; run by
torchrun, each process trains with spies that record its own (local) share of GAP's counts, EQLv2's
gradient statistics and the Figure-4 gradient sums, then writes them next to the summed values.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_engine import fast_params, render_smoke  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def worker(data: Path, out: Path, report: Path, sync: bool) -> None:
    from rog.engine.trainer import Trainer

    params = fast_params(data, "model.ranking.name=gap", "model.objective.name=eqlv2",
                         f"model.ranking.params.sync_counts={str(sync).lower()}", "train.iterations=3", "train.batch_size=4")
    trainer = Trainer(params, out, progress=False)
    heads = trainer.model.roi_heads
    c = trainer.num_classes
    local = {"gap": torch.zeros(c, dtype=torch.float64), "eqlv2": torch.zeros(2, c, dtype=torch.float64)}

    def count_positives(module, args):
        labels = args[1]
        local["gap"] += torch.bincount(labels[labels < c], minlength=c).double()

    heads.ranking.register_forward_pre_hook(count_positives)
    collect = heads.objective.collect_grad

    def record_eqlv2(logits, targets, weights):  # EQLv2's statistic of this process's batch alone
        grad = (torch.sigmoid(logits) - targets).abs() * weights
        local["eqlv2"] += torch.stack([(grad * targets).sum(0)[:c], (grad * (1 - targets)).sum(0)[:c]]).double()
        collect(logits, targets, weights)

    heads.objective.collect_grad = record_eqlv2
    trainer.run()
    rank = trainer.rank
    result = {
        "rank": rank, "world": trainer.world,
        "local_gap": local["gap"].tolist(), "gap_counts": heads.ranking.class_counts.tolist(),
        "local_eqlv2": local["eqlv2"].tolist(),
        "eqlv2": [heads.objective.pos_grad.tolist(), heads.objective.neg_grad.tolist()],
        "local_pos": {s: t.tolist() for s, t in trainer.grad_stats.pos.items()},
        "weight_sum": float(sum(p.detach().double().sum() for p in trainer.model.parameters())),
    }
    (report / f"rank{rank}.json").write_text(json.dumps(result))


def run_torchrun(tmp_path: Path, data: Path, sync: bool) -> list[dict]:
    out, report = tmp_path / f"run_{sync}", tmp_path / f"report_{sync}"
    report.mkdir()
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", __file__,
                           str(data), str(out), str(report), str(sync)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1)], out


def test_two_processes_sum_their_statistics(tmp_path_factory, tmp_path):
    data = render_smoke(tmp_path_factory.getbasetemp())
    (r0, r1), out = run_torchrun(tmp_path, data, sync=True)
    assert r0["world"] == r1["world"] == 2
    assert r0["local_gap"] != r1["local_gap"]  # each process saw its own images
    total = [a + b for a, b in zip(r0["local_gap"], r1["local_gap"])]
    assert r0["gap_counts"] == r1["gap_counts"] == total
    for k in (0, 1):
        summed = torch.tensor(r0["local_eqlv2"][k]) + torch.tensor(r1["local_eqlv2"][k])
        assert torch.allclose(torch.tensor(r0["eqlv2"][k]), summed)
        assert torch.allclose(torch.tensor(r1["eqlv2"][k]), summed)
    assert r0["weight_sum"] == r1["weight_sum"]  # DDP kept the replicas identical
    # Figure 4's gradient sums in diagnostics.json add both processes' shares
    diag = json.loads((out / "diagnostics.json").read_text())["gradients"]
    for source in ("objective", "gap"):
        summed = sum(torch.tensor(r["local_pos"][source], dtype=torch.float64) for r in (r0, r1))
        assert torch.allclose(torch.tensor(diag[source]["positive"], dtype=torch.float64), summed)
    # the checkpoint's counts are the summed ones
    from rog.engine import checkpoint
    state = checkpoint.load(out / "model_final.pt")
    assert state["model"]["roi_heads.ranking.class_counts"].tolist() == total


def test_per_process_counts_as_the_official_code(tmp_path_factory, tmp_path):
    data = render_smoke(tmp_path_factory.getbasetemp())
    (r0, r1), _ = run_torchrun(tmp_path, data, sync=False)
    assert r0["gap_counts"] == r0["local_gap"]
    assert r1["gap_counts"] == r1["local_gap"]
    assert r0["gap_counts"] != r1["gap_counts"]


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "True")
