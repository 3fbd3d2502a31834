"""GPU check: CUDA GAP equals CPU GAP, GAP against the official algorithm, Mask R-CNN R50-FPN through torchrun.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--nproc 1] [--iterations 20] [--work DIR]
    python benchmarks/gpu_check.py --device cpu --quick      # the same code paths on CPU, in seconds

Four checks, a few minutes on one GPU, nothing downloaded:

1. GAP parity: GAPLoss's value and gradient on the device equal those on the CPU (same float32
   logits, 2048 x 1203 LVIS-like batch; several GAP options), to --tolerance relative to the largest.
2. GAP speed: forward + backward of GAPLoss against the official algorithm (rog/report/official_gap.py) on the device at
   2048 x 1203 (medians; peak memory on CUDA), with their gradients' largest difference.
3. Training: `torchrun --nproc_per_node N -m rog train --profile lvis_r50_1x` (Mask R-CNN R50-FPN,
   random weights) for --iterations iterations on synthetic LVIS-schema data (ellipses of
   rog.evaluation.synthetic drawn into PNG images), DataLoader workers on; every loss must be finite.
4. Evaluation: `python -m rog evaluate` of the trained model (LVIS bbox and segm AP: near 0 after so
   few iterations from random weights; the check is that the path runs).

Prints a compact summary and writes it as JSON to --out. Exits 0 when every check passes, 1 when
one fails, 2 when the device is missing (no CUDA device for --device cuda). --quick shrinks the
sizes (256 RoIs, 4 iterations, 128-px images) so that a unit test runs it on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import gap_loss as gap_bench  # noqa: E402
from rog.losses import CategoryCounts, GAPLoss  # noqa: E402
from rog.report import official_gap  # noqa: E402

# GAP options checked for parity: the default (online omega), dataset omega, Excl.FG off, the paper's
# rank offset with a wider ramp, and the step function (delta 0)
PARITY_OPTIONS = {
    "online": {},
    "dataset": {"weighting": "dataset"},
    "incl_fg": {"exclude_fg": False},
    "paper_rank": {"rank_offset": 1.0, "delta": 1.0},
    "step": {"delta": 0.0},
}


class DeviceMissing(RuntimeError):
    """The requested device is not there."""


def check_device(device: str) -> str:
    """A name for the device; DeviceMissing when CUDA is asked for and absent."""
    if device == "cpu":
        return f"CPU ({os.cpu_count()} cores)"
    if not torch.cuda.is_available():
        raise DeviceMissing(f"gpu_check: no CUDA device (torch {torch.__version__}, built for CUDA "
                            f"{torch.version.cuda}, torch.cuda.is_available() is False); "
                            "use --device cpu --quick for the CPU path")
    return torch.cuda.get_device_name()


def gap_value_grad(logits: torch.Tensor, labels: torch.Tensor, options: dict) -> tuple[float, torch.Tensor]:
    options = dict(options)
    if options.get("weighting") == "dataset":
        options["class_counts"] = CategoryCounts.from_instance_counts(official_gap.batch_counts(labels.cpu()))
    gap = GAPLoss(official_gap.NUM_CLASSES, **options).to(logits.device)
    z = logits.clone().requires_grad_(True)
    value = gap(z, labels)
    value.backward()
    return float(value.detach()), z.grad.detach().cpu()


def gap_parity(device: str, rows: int, tolerance: float) -> dict:
    """GAP on `device` against GAP on the CPU, same inputs, every PARITY_OPTIONS entry."""
    logits, labels = official_gap.lvis_like_batch(rows, "cpu", seed=1)
    out = {"rows": rows, "classes": official_gap.NUM_CLASSES, "tolerance": tolerance, "options": {}}
    for name, options in PARITY_OPTIONS.items():
        v_cpu, g_cpu = gap_value_grad(logits, labels, options)
        v_dev, g_dev = gap_value_grad(logits.to(device), labels.to(device), options)
        value_diff = abs(v_dev - v_cpu) / max(abs(v_cpu), 1e-12)
        grad_diff = float((g_dev - g_cpu).abs().max() / g_cpu.abs().max().clamp(min=1e-30))
        out["options"][name] = {"value_cpu": v_cpu, "value_device": v_dev, "value_rel_diff": value_diff,
                                "grad_rel_diff": grad_diff, "grad_nonzero": bool(g_cpu.abs().sum() > 0),
                                "ok": value_diff <= tolerance and grad_diff <= tolerance and bool(g_cpu.abs().sum() > 0)}
    out["ok"] = all(o["ok"] for o in out["options"].values())
    return out


def gap_speed(device: str, rows: int, repeats: int, tolerance: float) -> dict:
    """benchmarks/gap_loss.py's comparison on `device`: medians (ours forward + backward, the official
    algorithm, the floor), speed-up, peak memory on CUDA."""
    m = gap_bench.measure(rows, device, repeats, official_repeats=max(1, repeats // 3))
    out = {"rows": rows, "classes": official_gap.NUM_CLASSES, "ours_ms": 1e3 * m["ours"],
           "official_ms": 1e3 * m["official"], "floor_ms": 1e3 * m["floor"], "speedup": m["official"] / m["ours"],
           "over_floor": m["ours"] / m["floor"], "grad_rel_diff_vs_official": m["rel_diff"]}
    if device == "cuda":
        out["ours_peak_mb"] = gap_bench.peak_memory_mb("ours", rows, device)
        out["official_peak_mb"] = gap_bench.peak_memory_mb("official", rows, device)
    out["ok"] = m["rel_diff"] <= tolerance
    return out


def write_dataset(root: Path, num_train: int, num_val: int, size: tuple[int, int], categories: int,
                  seed: int = 0) -> Path:
    """Synthetic LVIS-schema train.json / val.json with PNG images: each object an ellipse of its
    category's colour on a noisy background (rog.evaluation.synthetic's annotations)."""
    import pycocotools.mask as mask_utils
    from PIL import Image

    from rog.evaluation.synthetic import synthetic_lvis

    data = synthetic_lvis(num_train + num_val, categories, max_objects=6, image_size=size, seed=seed)
    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 226, (categories + 1, 3))
    (root / "images").mkdir(parents=True, exist_ok=True)
    by_image: dict[int, list] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for image in data["images"]:
        pixels = rng.normal(128, 20, (image["height"], image["width"], 3))
        for ann in by_image.get(image["id"], []):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            pixels[mask] = palette[ann["category_id"]]
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / "images" / image["file_name"])
    for split, ids in (("train", range(1, num_train + 1)), ("val", range(num_train + 1, num_train + num_val + 1))):
        keep = set(ids)
        part = dict(data, images=[im for im in data["images"] if im["id"] in keep],
                    annotations=[a for a in data["annotations"] if a["image_id"] in keep])
        (root / f"{split}.json").write_text(json.dumps(part))
    return root


def run_params(data: Path, device: str, iterations: int, nproc: int, image_size: int, quick: bool) -> list[str]:
    """--set overrides of the lvis_r50_1x profile for a short run on the synthetic data."""
    sets = [f"dataset.root={data}", "dataset.train_json=train.json", "dataset.val_json=val.json",
            "dataset.image_root=images", f"dataset.resize_min_size=[{image_size - 32},{image_size}]",
            f"dataset.resize_max_size={image_size}", "dataset.cache_images=false",
            "model.backbone.pretrained=false", "model.backbone.trainable_layers=5",
            f"model.min_size={image_size}", f"model.max_size={image_size}",
            f"train.iterations={iterations}", f"train.batch_size={2 * nproc}", "train.lr=0.01",
            f"train.warmup_iterations={max(1, iterations // 4)}",
            f"train.checkpoint_every={iterations if quick else max(1, iterations // 2)}",
            f"train.device={device}", "train.workers=2", f"train.threads={1 if quick else 4}", f"train.processes={nproc}",
            "evaluate.batch_size=4"]
    if quick:
        sets += ["model.rpn.pre_nms_top_n_train=200", "model.rpn.post_nms_top_n_train=100",
                 "model.rpn.pre_nms_top_n_test=200", "model.rpn.post_nms_top_n_test=50",
                 "model.roi.batch_size_per_image=64", "model.roi.representation_size=256",
                 "model.roi.mask_head_channels=32", "model.roi.mask_head_layers=2"]
    return sets


def run_command(command: list[str], timeout: float, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    """(the finished process, seconds); a process past `timeout` is killed and reported with return code -1."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        output = "".join(x.decode(errors="replace") if isinstance(x, bytes) else x
                         for x in (err.stdout, err.stderr) if x)
        proc = subprocess.CompletedProcess(command, -1, output, f"\ntimed out after {timeout:.0f} s")
    return proc, time.perf_counter() - start


def train_and_evaluate(work: Path, device: str, iterations: int, nproc: int, quick: bool, timeout: float) -> dict:
    """Checks 3 and 4: torchrun training, then `rog evaluate`, on freshly written synthetic data."""
    size = 128 if quick else 512
    data = write_dataset(work / "data", 8 if quick else 64, 6 if quick else 24,
                         (size, size + size // 4), 8 if quick else 40)
    run_dir, eval_dir = work / "run", work / "eval"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1" if quick else "4")
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    sets = [arg for s in run_params(data, device, iterations, nproc, size, quick) for arg in ("--set", s)]
    train_cmd = launcher + ["--standalone", "--nproc_per_node", str(nproc), "-m", "rog", "train",
                            "--out", str(run_dir), "--profile", "lvis_r50_1x", "--no-progress", *sets]
    proc, train_seconds = run_command(train_cmd, timeout, env)
    out = {"command": " ".join(train_cmd[:10]) + " ...", "processes": nproc, "iterations": iterations,
           "image_size": size, "seconds": train_seconds, "returncode": proc.returncode}
    if proc.returncode != 0:
        out.update(ok=False, error=(proc.stdout + proc.stderr)[-3000:])
        return {"training": out}
    records = [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines() if line.strip()]
    seconds = [r["seconds"] for r in records[2:]] or [r["seconds"] for r in records]
    finite = all(np.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss"))
    out.update(logged_iterations=len(records), first_loss=records[0]["loss"], last_loss=records[-1]["loss"],
               median_seconds_per_iteration=statistics.median(seconds), losses_finite=finite,
               ok=finite and len(records) == iterations and (run_dir / "model_final.pt").is_file())
    eval_cmd = [sys.executable, "-m", "rog", "evaluate", "--checkpoint", str(run_dir / "model_final.pt"),
                "--out", str(eval_dir), "--no-progress"]
    proc, eval_seconds = run_command(eval_cmd, timeout, env)
    evaluation = {"seconds": eval_seconds, "returncode": proc.returncode}
    if proc.returncode != 0:
        evaluation.update(ok=False, error=(proc.stdout + proc.stderr)[-3000:])
    else:
        metrics = json.loads((eval_dir / "metrics.json").read_text())
        for task in ("bbox", "segm"):
            evaluation[f"{task}_AP"] = metrics[task]["metrics"]["AP"]
        evaluation["images"] = len(json.loads((data / "val.json").read_text())["images"])
        evaluation["ok"] = all(np.isfinite(evaluation[f"{t}_AP"]) for t in ("bbox", "segm"))
    return {"training": out, "evaluation": evaluation}


def summary_lines(report: dict) -> list[str]:
    lines = [f"gpu_check on {report['device_name']} (torch {report['torch']}, CUDA {report['cuda']}): "
             f"{'PASS' if report['ok'] else 'FAIL'} in {report['seconds']:.0f} s"]
    if "gap_parity" in report:
        p = report["gap_parity"]
        worst = max(max(o["value_rel_diff"], o["grad_rel_diff"]) for o in p["options"].values())
        lines.append(f"  GAP {report['device']} == CPU   {p['rows']} x {p['classes']}, {len(p['options'])} option sets, "
                     f"largest relative difference {worst:.1e} (tolerance {p['tolerance']:.0e}): "
                     f"{'ok' if p['ok'] else 'FAIL ' + ', '.join(k for k, o in p['options'].items() if not o['ok'])}")
    if "gap_speed" in report:
        s = report["gap_speed"]
        memory = (f", peak {s['ours_peak_mb']:.0f} MB vs {s['official_peak_mb']:.0f} MB"
                  if "ours_peak_mb" in s else "")
        lines.append(f"  GAP vs official  {s['rows']} x {s['classes']}: {s['ours_ms']:.1f} ms vs {s['official_ms']:.1f} ms "
                     f"({s['speedup']:.1f}x; {s['over_floor']:.1f}x the floor's {s['floor_ms']:.1f} ms){memory}, "
                     f"gradients within {s['grad_rel_diff_vs_official']:.1e}")
    if "training" in report:
        t = report["training"]
        if "median_seconds_per_iteration" in t:
            lines.append(f"  train R50-FPN    {t['processes']} process(es), {t['logged_iterations']} iterations at "
                         f"{t['image_size']} px: {t['median_seconds_per_iteration']:.3f} s/iteration, loss "
                         f"{t['first_loss']:.3f} -> {t['last_loss']:.3f}, {t['seconds']:.0f} s with start-up: "
                         f"{'ok' if t['ok'] else 'FAIL'}")
        else:
            lines.append(f"  train R50-FPN    FAIL (exit {t['returncode']}): {t.get('error', '')[-500:]}")
    if "evaluation" in report:
        e = report["evaluation"]
        if e.get("ok"):
            lines.append(f"  evaluate         {e['images']} images: bbox AP {e['bbox_AP']:.4f}, segm AP "
                         f"{e['segm_AP']:.4f}, {e['seconds']:.0f} s: ok")
        else:
            lines.append(f"  evaluate         FAIL (exit {e['returncode']}): {e.get('error', '')[-500:]}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="small sizes, for the CPU unit test")
    parser.add_argument("--out", help="write the summary as JSON here")
    parser.add_argument("--nproc", type=int, default=1, help="torchrun processes (GPUs) for the training check")
    parser.add_argument("--iterations", type=int, default=None, help="training iterations (default 20; --quick 4)")
    parser.add_argument("--rows", type=int, default=None, help="RoIs of the GAP checks (default 2048; --quick 256)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest relative difference allowed in the GAP checks")
    parser.add_argument("--work", help="folder for the synthetic data and the run (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for each of training and evaluation")
    args = parser.parse_args(argv)
    rows = args.rows or (256 if args.quick else 2048)
    iterations = args.iterations or (4 if args.quick else 20)
    start = time.perf_counter()
    report = {"device": args.device, "quick": args.quick, "torch": torch.__version__, "cuda": torch.version.cuda}
    try:
        report["device_name"] = check_device(args.device)
    except DeviceMissing as err:
        print(err, file=sys.stderr)
        if args.out:
            Path(args.out).write_text(json.dumps(dict(report, ok=False, error=str(err)), indent=1))
        return 2
    torch.set_num_threads(1 if args.quick else 4)
    report["gap_parity"] = gap_parity(args.device, rows, args.tolerance)
    report["gap_speed"] = gap_speed(args.device, rows, 3 if args.quick else 7, args.tolerance)
    if args.work and Path(args.work).exists() and any(Path(args.work).iterdir()):
        print(f"gpu_check: --work {args.work} is not empty (a finished run there would not train again)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        report.update(train_and_evaluate(work, args.device, iterations, args.nproc, args.quick, args.timeout))
    report["seconds"] = time.perf_counter() - start
    report["ok"] = all(report[k]["ok"] for k in ("gap_parity", "gap_speed", "training", "evaluation") if k in report) \
        and "evaluation" in report
    print("\n".join(summary_lines(report)))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
