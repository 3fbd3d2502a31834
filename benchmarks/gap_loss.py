"""GAPLoss against the official O(P x N) algorithm and against a memory floor, in the same run.

    python benchmarks/gap_loss.py [--device cpu|cuda] [--threads 1] [--sizes 512 2048 4096]
                                  [--repeats 15] [--save FILE | --check-against FILE] [--memory]

LVIS-sized batches: R RoIs x 1203 classes, 25 % positive RoIs spread over ~40 classes, logits like a
sigmoid head part-way through training. Three ways of doing the work, interleaved repetition by
repetition (so that a load change on a shared machine hits all of them alike), medians reported:

- ours: GAPLoss forward (value) and backward (the error-driven gradient), timed apart;
- official: rog/report/official_gap.py, value and gradient in one go (forward + backward);
- floor: only the passes over the [R, C] scores that any exact implementation needs, with the same
  blocking as ours: forward reads the scores once and bucketizes them exactly into the positives' 2P
  kinks (no per-bucket sums, buckets not kept), backward writes the [R, K] gradient once (one
  elementwise pass from the scores).

Prints the times and the ratios ours / floor and official / ours, then the largest gradient difference
from the official algorithm relative to the largest gradient. --save writes the loss value, ranking
error and gradient of every GAP mode (Excl.FG, delta, rank offset) on the benchmark's inputs;
--check-against compares the current code with such a file (bitwise, or the largest relative
difference). To compare with an older commit, run this script from a copy of that commit's tree (it
imports the rog next to it): git archive OLD rog | tar -x -C /tmp/old; mkdir /tmp/old/benchmarks;
cp benchmarks/gap_loss.py /tmp/old/benchmarks/; python /tmp/old/benchmarks/gap_loss.py --save old.pt;
python benchmarks/gap_loss.py --check-against old.pt. --memory adds the peak memory of ours and of the official algorithm (fresh processes).
"""
from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rog.losses import CategoryCounts, GAPLoss  # noqa: E402
from rog.report.official_gap import NUM_CLASSES, batch_counts, lvis_like_batch, omega_for, ours, reference  # noqa: E402

METHODS = {"ours": ours, "official": reference}


def load() -> str:
    """The 1, 5 and 15 min load averages: the machine is shared, times move with them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def clock(device: str) -> float:
    sync(device)
    return time.perf_counter()


class Ours:
    """GAPLoss with the batch's own counts as fixed omega (so it equals the official algorithm's)."""

    def __init__(self, logits: torch.Tensor, labels: torch.Tensor, **options):
        counts = CategoryCounts.from_instance_counts(batch_counts(labels.cpu()))
        self.loss = GAPLoss(NUM_CLASSES, weighting="dataset", class_counts=counts, **options).to(logits.device)
        self.logits, self.labels = logits.clone().requires_grad_(True), labels

    def run(self, device: str) -> tuple[float, float]:
        """(forward seconds, backward seconds)."""
        self.logits.grad = None
        start = clock(device)
        value = self.loss(self.logits, self.labels)
        middle = clock(device)
        value.backward()
        return middle - start, clock(device) - middle


class Floor:
    """The passes over the [R, C] scores that any exact GAP needs, and nothing else.

    Forward: read the scores once and bucketize them exactly into the 2P kinks of the positives, with
    the fastest exact bucketize we have in tensor operations, rog.losses.ramp.Grid (an int32 grid
    look-up, searchsorted for the few scores whose cell holds a kink; torch.bucketize, a binary search,
    takes ~90 ms at 2048 x 1203, a sort ~190 ms). The grid is built beforehand (it is P-sized); no
    per-bucket sums, the buckets are not kept. Backward: write the [R, K] gradient once, one
    elementwise pass from the scores. Both run block by block with reused scratch, as ours does
    (whole-size temporaries would add page faults to the floor).
    """

    def __init__(self, logits: torch.Tensor, labels: torch.Tensor, delta: float = 0.5):
        # imported here: --save must also run on versions of rog.losses that have no Grid
        from rog.losses.ramp import Grid, blocks

        self.logits = logits
        self.scores = logits[:, :NUM_CLASSES]
        fg = (labels < NUM_CLASSES).nonzero().squeeze(1)
        centres = self.scores[fg, labels[fg]].double()
        kinks = torch.sort(torch.cat([centres - delta, centres + delta])).values
        self.grid = Grid(kinks, logits.dtype, self.scores.numel())
        self.rows = blocks(self.scores)
        self.scratch = self.grid.scratch(self.scores[:self.rows].numel(), logits.dtype, logits.device)

    def forward(self) -> None:
        for rows in self.scores.split(self.rows):
            self.grid.assign(rows, self.scratch)

    def backward(self) -> torch.Tensor:
        grad = torch.empty_like(self.logits)
        grad[:, NUM_CLASSES:].zero_()
        for rows, out in zip(self.scores.split(self.rows), grad[:, :NUM_CLASSES].split(self.rows)):
            torch.mul(rows, 0.5, out=out)
        return grad

    def run(self, device: str) -> tuple[float, float]:
        start = clock(device)
        self.forward()
        middle = clock(device)
        self.backward()
        return middle - start, clock(device) - middle


def official(logits, labels, omega, device: str) -> float:
    start = clock(device)
    reference(logits, labels, omega)
    return clock(device) - start


def measure(rows: int, device: str, repeats: int, official_repeats: int) -> dict:
    """Medians over interleaved repetitions: ours (fwd, bwd), floor (fwd, bwd), official (total)."""
    logits, labels = lvis_like_batch(rows, device)
    omega = omega_for(labels)
    ours_run, floor_run = Ours(logits, labels), Floor(logits, labels)
    ours_run.run(device), floor_run.run(device)  # warm-up
    times = {"ours": [], "floor": [], "official": []}
    for k in range(repeats):
        times["ours"].append(ours_run.run(device))
        times["floor"].append(floor_run.run(device))
        if k < official_repeats:
            times["official"].append(official(logits, labels, omega, device))
    ours_grad = ours_run.logits.grad
    ref_grad = reference(logits, labels, omega)
    median = statistics.median
    return {
        "ours_fwd": median(t[0] for t in times["ours"]), "ours_bwd": median(t[1] for t in times["ours"]),
        "ours": median(sum(t) for t in times["ours"]),
        "floor_fwd": median(t[0] for t in times["floor"]), "floor_bwd": median(t[1] for t in times["floor"]),
        "floor": median(sum(t) for t in times["floor"]),
        "official": median(times["official"]),
        "rel_diff": ((ours_grad - ref_grad).abs().max() / ref_grad.abs().max()).item(),
    }


MODES = [dict(exclude_fg=e, delta=d, rank_offset=r)
         for e, d, r in itertools.product([True, False], [0.5, 0.0], [0.5, 1.0])]


def gap_outputs(sizes: list[int]) -> dict:
    """{(rows, mode...): (value, ranking error, gradient)} for every mode on the benchmark's inputs."""
    out = {}
    for rows, mode in itertools.product(sizes, MODES):
        logits, labels = lvis_like_batch(rows, "cpu")
        run = Ours(logits, labels, **mode)
        value = run.loss(run.logits, run.labels)
        value.backward()
        out[(rows, *mode.values())] = (value.detach(), run.loss.last_ranking_error.clone(), run.logits.grad)
    return out


def check_against(path: str, sizes: list[int]) -> bool:
    """Compare every mode's value, ranking error and gradient with a file from --save; True if all bitwise."""
    saved = torch.load(path)
    all_bitwise = True
    print(f"{'RoIs':>6} {'Excl.FG':>8} {'delta':>6} {'offset':>7}  result")
    for key, now in gap_outputs(sizes).items():
        if key not in saved:
            continue
        then = saved[key]
        bitwise = all(torch.equal(a, b) for a, b in zip(now, then))
        all_bitwise &= bitwise
        if bitwise:
            result = "bitwise equal"
        else:
            rel = [((a.double() - b.double()).abs() / b.double().abs()).nan_to_num(0.0).max().item()
                   for a, b in zip(now, then)]
            result = f"max relative difference: value {rel[0]:.1e}, error {rel[1]:.1e}, gradient {rel[2]:.1e}"
        print(f"{key[0]:>6} {str(key[1]):>8} {key[2]:>6} {key[3]:>7}  {result}")
    return all_bitwise


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


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure-memory":
        _measure_memory_here(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: a shared 2-core machine)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repetitions of ours and the floor")
    parser.add_argument("--official-repeats", type=int, default=3)
    parser.add_argument("--save", metavar="FILE", help="write every mode's value and gradient, then stop")
    parser.add_argument("--check-against", metavar="FILE", help="compare every mode with a --save file, then stop")
    parser.add_argument("--memory", action="store_true", help="also the peak memory (fresh processes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.save:
        torch.save(gap_outputs(args.sizes), args.save)
        print(f"saved {len(MODES)} modes x {len(args.sizes)} sizes to {args.save}")
        return
    if args.check_against:
        sys.exit(0 if check_against(args.check_against, args.sizes) else 1)

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"GAP, {NUM_CLASSES} classes, 25 % positive RoIs over 40 classes ({device_name}); torch {torch.__version__}")
    print(f"medians of {args.repeats} interleaved repetitions (official: {args.official_repeats}), in ms; "
          f"official = rog/report/official_gap.py; load average {load()} at the start\n")
    print(f"{'':>6} {'ours':>21} {'floor':>21} {'official':>9} {'ours / floor':>20} {'official':>9} {'max |dg|':>9}")
    print(f"{'RoIs':>6} {'fwd':>6} {'bwd':>6} {'f+b':>7} {'fwd':>6} {'bwd':>6} {'f+b':>7} {'f+b':>9} "
          f"{'fwd':>6} {'bwd':>6} {'f+b':>6} {'/ ours':>9} {'/max |g|':>9}")
    for rows in args.sizes:
        m = measure(rows, args.device, args.repeats, args.official_repeats)
        ms = {k: v * 1e3 for k, v in m.items() if k != "rel_diff"}
        print(f"{rows:>6} {ms['ours_fwd']:>6.1f} {ms['ours_bwd']:>6.1f} {ms['ours']:>7.1f} "
              f"{ms['floor_fwd']:>6.1f} {ms['floor_bwd']:>6.1f} {ms['floor']:>7.1f} {ms['official']:>9.1f} "
              f"{m['ours_fwd'] / m['floor_fwd']:>5.1f}x {m['ours_bwd'] / m['floor_bwd']:>5.1f}x "
              f"{m['ours'] / m['floor']:>5.1f}x {m['official'] / m['ours']:>8.0f}x {m['rel_diff']:>9.1e}",
              flush=True)
    print(f"load average {load()} at the end")
    if args.memory:
        print(f"\nPeak memory above the inputs (MB)\n{'RoIs':>6} {'ours':>8} {'official':>9}")
        for rows in args.sizes:
            print(f"{rows:>6} {peak_memory_mb('ours', rows, args.device):>8.1f} "
                  f"{peak_memory_mb('official', rows, args.device):>9.1f}")


if __name__ == "__main__":
    main()
