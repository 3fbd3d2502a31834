"""benchmarks/gpu_check.py: its CPU mode runs every check end to end; without CUDA it fails clearly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_quick_cpu_mode_runs_every_check(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run("--device", "cpu", "--quick", "--out", str(out), "--work", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and report["device"] == "cpu"
    parity = report["gap_parity"]
    assert set(parity["options"]) == {"online", "dataset", "incl_fg", "paper_rank", "step"}
    assert all(o["grad_nonzero"] and o["value_rel_diff"] == 0.0 for o in parity["options"].values())  # CPU vs CPU
    speed = report["gap_speed"]
    assert speed["rows"] == 256 and speed["grad_rel_diff_vs_official"] < 1e-5 and speed["official_ms"] > 0
    training = report["training"]
    assert training["processes"] == 1 and training["logged_iterations"] == training["iterations"] == 4
    assert training["losses_finite"]
    run_dir = tmp_path / "work" / "run"
    assert json.loads((run_dir / "run.json").read_text()) and (run_dir / "model_final.pt").is_file()
    params = (run_dir / "params.yaml").read_text()
    assert "resnet50_fpn" in params and "workers: 2" in params  # R50-FPN, DataLoader workers on
    evaluation = report["evaluation"]
    assert evaluation["images"] == 6 and 0.0 <= evaluation["bbox_AP"] <= 1.0 and 0.0 <= evaluation["segm_AP"] <= 1.0
    metrics = json.loads((tmp_path / "work" / "eval" / "metrics.json").read_text())
    assert metrics["bbox"]["metrics"]["AP"] == evaluation["bbox_AP"]
    assert "PASS" in proc.stdout and "GAP cpu == CPU" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_fails_clearly(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run("--out", str(out), timeout=120)
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and "--device cpu --quick" in proc.stderr
    report = json.loads(out.read_text())
    assert report["ok"] is False and "no CUDA device" in report["error"]
