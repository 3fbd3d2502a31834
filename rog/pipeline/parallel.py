"""`dvc repro` with the experiments side by side: `python -m rog.pipeline.parallel [-j 2]`.

One training process uses a single core well but not two (one process with 2 threads reaches ~120 %
CPU), so: `dvc repro dataset` (and `pretrain`, when a run uses it) first, then the experiments as JOBS
concurrent `dvc repro -s experiment@NAME` (single stage, so no two processes touch the shared
upstream; DVC 3 locks per stage, so concurrent reproductions of different stages are safe), each
post-hoc evaluation next in line once its source experiment is done, then one plain `dvc repro` for
everything else (tables, figures, notebooks). The concurrent processes get ROG_JOBS=JOBS in their
environment, which each experiment records in its metrics.json (run.jobs: its timings were taken with
that many side by side; see rog.pipeline.projection). A stage already up to date is skipped as usual,
so an interrupted run resumes where it stopped. DVC's short repository lock sometimes refuses a process
that starts while another one writes dvc.lock ("Unable to acquire lock"); nothing has run then, so that
command is simply retried.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from rog.pipeline.stage import JOBS_ENV
from rog.pipeline.dvcyaml import uses_pretraining
from rog.pipeline.registry import read_params

LOCKED = ("Unable to acquire lock", "is busy, it is being blocked by")  # nothing ran: retry


def dvc_repro(target: str | None, cwd: Path, env: dict | None, retries: int = 20, log=print,
              single: bool = False) -> None:
    """`dvc repro [-s] [target]`, retried while DVC's locks are busy; RuntimeError on failure."""
    cmd = [sys.executable, "-m", "dvc", "repro"] + (["-s"] if single else []) + ([target] if target else [])
    for attempt in range(retries + 1):
        result = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
        if result.returncode == 0:
            log(result.stdout.strip())
            return
        if not any(text in result.stdout + result.stderr for text in LOCKED) or attempt == retries:
            raise RuntimeError(f"dvc repro {target or ''} failed ({result.returncode}):\n"
                               f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
        time.sleep(2.0 + attempt)


def run_parallel(targets: list[str], jobs: int, cwd: Path, env: dict | None, log=print,
                 followers: dict[str, list[str]] | None = None) -> list[str]:
    """Reproduce `targets` with `jobs` concurrent workers; returns the failure messages (all targets are
    attempted even when one fails, so every finished experiment is kept).

    followers: target -> targets that need it; they run as soon as it has succeeded (next in line), so
    that a post-hoc evaluation finds its source's checkpoint even when the pipeline is cut short.
    The children get ROG_JOBS=jobs added to `env` (os.environ when None).
    """
    env = {**(os.environ if env is None else env), JOBS_ENV: str(max(1, jobs))}
    followers = followers or {}
    queue: deque[str] = deque(targets)
    failures: list[str] = []
    lock = threading.Lock()

    def worker(delay: float) -> None:
        time.sleep(delay)  # stagger the starts: fewer lock collisions
        while True:
            with lock:
                if not queue:
                    return
                target = queue.popleft()
            try:
                dvc_repro(target, cwd, env, log=log, single=True)  # upstream is done: no shared locks
            except RuntimeError as err:
                with lock:
                    failures.append(str(err))
                continue
            with lock:
                queue.extendleft(reversed(followers.get(target, [])))

    threads = [threading.Thread(target=worker, args=(3.0 * i,)) for i in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def reproduce(root: str | Path = ".", jobs: int = 2, env: dict | None = None, log=print) -> float:
    """The whole pipeline in `root` (see the module docstring); returns the wall time in seconds."""
    root = Path(root)
    start = time.perf_counter()
    params = read_params(root / "params.yaml")
    dvc_repro("dataset", root, env, log=log)
    if uses_pretraining(params):  # the experiments' backbone, made before they start
        dvc_repro("pretrain", root, env, log=log, single=True)
    followers: dict[str, list[str]] = {}
    for name, spec in (params.get("posthoc") or {}).items():
        followers.setdefault(f"experiment@{spec['source']}", []).append(f"posthoc@{name}")
    failures = run_parallel([f"experiment@{name}" for name in params.get("experiments") or {}], jobs, root, env,
                            log, followers)
    if failures:
        raise RuntimeError("\n\n".join(failures))
    dvc_repro(None, root, env, log=log)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rog.pipeline.parallel", description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=2, help="experiments side by side (default: 2)")
    args = parser.parse_args(argv)
    try:
        seconds = reproduce(".", args.jobs)
    except RuntimeError as err:
        print(f"rog.pipeline.parallel: {err}", file=sys.stderr)
        return 1
    print(f"pipeline reproduced in {seconds:.0f} s with {args.jobs} experiments side by side")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
