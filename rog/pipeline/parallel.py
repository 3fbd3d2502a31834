"""`dvc repro` with the experiments side by side: `python -m rog.pipeline.parallel [-j 2]`.

One training process uses a single core well but not two (one process with 2 threads reaches ~120 %
CPU), so: `dvc repro dataset` (and `pretrain`, when a run uses it) first, then the experiments as JOBS
concurrent `dvc repro -s experiment@NAME` (single stage, so no two processes touch the shared
upstream; DVC 3 locks per stage, so concurrent reproductions of different stages are safe), each
post-hoc evaluation next in line once its source experiment is done, then one plain `dvc repro` for
everything else (tables, figures, notebooks). The concurrent processes get ROG_JOBS=JOBS in their
environment, which each experiment records in its metrics.json (run.jobs: its timings were taken with
that many side by side; see rog.pipeline.projection). A stage already up to date is skipped as usual,
so an interrupted run resumes where it stopped.

Locks: DVC releases its repository lock while a stage's command runs and takes it again afterwards, for 3 s
at most by default. Two experiments of equal length end together, so the second one's relock used to fail
while the first wrote dvc.lock: the command had run but was not recorded, and a retry trained it again
(a finished run directory restarts). Every dvc call therefore waits for the repository lock
(`dvc --wait-for-lock`). A stage whose outputs another process holds is refused before it runs ("is busy"):
that command is retried. Should a refusal still come after the command ran (its output names the stage as
running), the outputs are recorded with `dvc commit` instead of trained again.
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

LOCKED = ("Unable to acquire lock", "is busy, it is being blocked by")  # refused by a lock
DVC = (sys.executable, "-m", "dvc", "--wait-for-lock")  # wait for the repository lock, never fail on it


def _print(text: str) -> None:
    """print, flushed: the log is a file (make repro >> repro.log) and a stop kills the process."""
    print(text, flush=True)


def _clock() -> str:
    """The UTC time of day, for the log of a run that spans stops."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _dvc(args: list[str], cwd: Path, env: dict | None, retries: int) -> subprocess.CompletedProcess:
    """`dvc --wait-for-lock ARGS`, retried while a lock refuses it; the last result, whatever its exit."""
    attempt = 0
    while True:
        result = subprocess.run([*DVC, *args], cwd=cwd, env=env, text=True, capture_output=True)
        if result.returncode == 0 or not _refused(result) or _ran(result, args[-1]) or attempt == retries:
            return result
        time.sleep(2.0 + attempt)
        attempt += 1


def _refused(result: subprocess.CompletedProcess) -> bool:
    """Whether a lock refused the dvc command (LOCKED)."""
    return any(text in result.stdout + result.stderr for text in LOCKED)


def _ran(result: subprocess.CompletedProcess, target: str) -> bool:
    """Whether a `dvc repro` refused by a lock had already run `target`'s command (its output says so)."""
    return f"Running stage '{target}'" in result.stdout


def _failed(args: list[str], result: subprocess.CompletedProcess) -> RuntimeError:
    return RuntimeError(f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
                        f"{result.stderr[-6000:]}")


def dvc_repro(target: str | None, cwd: Path, env: dict | None, retries: int = 20, log=_print,
              single: bool = False) -> None:
    """`dvc repro [-s] [target]`, retried while DVC's locks refuse it before anything ran; a refusal after the
    stage's command ran commits its outputs (`dvc commit -f target`) instead. RuntimeError on failure."""
    args = ["repro"] + (["-s"] if single else []) + ([target] if target else [])
    result = _dvc(args, cwd, env, retries)
    if result.returncode == 0:
        log(result.stdout.strip())
        return
    if target and _ran(result, target) and _refused(result):
        log(result.stdout.strip() + f"\n(ran, but DVC's lock refused its record: `dvc commit -f {target}`)")
        committed = _dvc(["commit", "-f", target], cwd, env, retries)
        if committed.returncode == 0:
            return
        raise _failed(["commit", "-f", target], committed)   # an output missing: the command did not finish
    raise _failed(args, result)


def run_parallel(targets: list[str], jobs: int, cwd: Path, env: dict | None, log=_print,
                 followers: dict[str, list[str]] | None = None) -> list[str]:
    """Reproduce `targets` with `jobs` concurrent workers; returns the failure messages (all targets are
    attempted even when one fails, so every finished experiment is kept).

    followers: target -> targets that need it; they run as soon as it has succeeded (next in line), so
    that a post-hoc evaluation finds its source's checkpoint even when the pipeline is cut short.
    The children get ROG_JOBS=jobs added to `env` (os.environ when None). Each target's start, end and
    failure are logged with the UTC time as they happen.
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
            started = time.monotonic()
            log(f"[{_clock()}] start {target}")
            try:
                dvc_repro(target, cwd, env, log=log, single=True)  # upstream is done: no shared locks
            except RuntimeError as err:
                log(f"[{_clock()}] failed {target} after {time.monotonic() - started:.0f} s:\n{err}")  # now, not
                with lock:                                                   # only at the end: a stop loses it
                    failures.append(str(err))
                continue
            log(f"[{_clock()}] done {target} in {time.monotonic() - started:.0f} s")
            with lock:
                queue.extendleft(reversed(followers.get(target, [])))

    threads = [threading.Thread(target=worker, args=(3.0 * i,)) for i in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def reproduce(root: str | Path = ".", jobs: int = 2, env: dict | None = None, log=_print) -> float:
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
