"""GAPLoss (bucketed ramp sums) against the official O(P x N) algorithm, in the same run.

    python benchmarks/gap_loss.py [--device cpu|cuda] [--threads 2] [--sizes 256 512 1024 2048 4096]

LVIS-sized batches: R RoIs x 1203 classes, 25 % positive RoIs spread over ~40 classes, logits like a
sigmoid head part-way through training. Prints forward+backward times, their ratio, peak memory and
the largest gradient difference relative to the largest gradient, then how both grow with R.
Peak memory: CUDA max_memory_allocated on a GPU; on a CPU the rise of the process's peak RSS above
its RSS before the call, in a fresh process per measurement (see `peak_memory_mb`).
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rog.report.official_gap import NUM_CLASSES, lvis_like_batch, omega_for, ours, reference  # noqa: E402

METHODS = {"ours": ours, "official": reference}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_it(fn, args, device: str, repeats: int) -> float:
    fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn(*args)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_mb(method: str, rows: int, device: str) -> float:
    """Peak memory the method adds on top of its inputs.

    CUDA: the allocator's peak. CPU: in a fresh process, free memory is handed back to the system
    (malloc_trim), the peak RSS is reset (Linux VmHWM via /proc/self/clear_refs), and the rise of the
    peak over the RSS before the call is reported.
    """
    if device == "cuda":
        logits, labels = lvis_like_batch(rows, device)
        omega = omega_for(labels)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        METHODS[method](logits, labels, omega)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    script = Path(__file__).resolve()
    out = subprocess.run([sys.executable, str(script), "--measure-memory", method, str(rows)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _measure_memory_here(method: str, rows: int) -> None:
    torch.set_num_threads(1)
    logits, labels = lvis_like_batch(rows, "cpu")
    omega = omega_for(labels)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak resident set size (VmHWM) to the current one
    base = _status_kb("VmRSS:")
    METHODS[method](logits, labels, omega)
    print((_status_kb("VmHWM:") - base) / 1024)


def compare(rows: int, device: str, repeats: int, reference_repeats: int):
    logits, labels = lvis_like_batch(rows, device)
    omega = omega_for(labels)
    g_ours = ours(logits, labels, omega)
    g_ref = reference(logits, labels, omega)
    rel_diff = ((g_ours - g_ref).abs().max() / g_ref.abs().max()).item()
    t_ours = time_it(ours, (logits, labels, omega), device, repeats)
    t_ref = time_it(reference, (logits, labels, omega), device, reference_repeats)
    return t_ours, t_ref, rel_diff


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure-memory":
        _measure_memory_here(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--headline", type=int, nargs="+", default=[512, 2048])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print(f"GAP forward+backward, {NUM_CLASSES} classes, 25 % positive RoIs over 40 classes ({device_name})")
    print(f"torch {torch.__version__}; times are medians; official = rog/report/official_gap.py\n")

    print(f"{'RoIs x C':>12} {'ours ms':>9} {'official ms':>12} {'speed-up':>9} "
          f"{'ours MB':>8} {'official MB':>12} {'max |dg|/max |g|':>17}")
    for rows in args.headline:
        t_ours, t_ref, rel = compare(rows, args.device, repeats=7, reference_repeats=2)
        m_ours = peak_memory_mb("ours", rows, args.device)
        m_ref = peak_memory_mb("official", rows, args.device)
        print(f"{rows:>6} x {NUM_CLASSES} {t_ours * 1e3:>9.1f} {t_ref * 1e3:>12.1f} {t_ref / t_ours:>8.1f}x "
              f"{m_ours:>8.1f} {m_ref:>12.1f} {rel:>17.1e}")

    print("\nGrowth with the number of RoIs (ms)")
    print(f"{'RoIs':>6} {'ours':>9} {'official':>10} {'speed-up':>9} {'max |dg|/max |g|':>17}")
    for rows in args.sizes:
        t_ours, t_ref, rel = compare(rows, args.device, repeats=5, reference_repeats=1)
        print(f"{rows:>6} {t_ours * 1e3:>9.1f} {t_ref * 1e3:>10.1f} {t_ref / t_ours:>8.1f}x {rel:>17.1e}")


if __name__ == "__main__":
    main()
