"""The smoke pipeline: the whole DVC pipeline on a subset of the registry, in a copy of the repository.

    python -m rog.pipeline.smoke DIR                 # subset smoke (profile smoke): CI, a few minutes
    python -m rog.pipeline.smoke --subset quick DIR  # Table 1's headline rows and Figure 5, default profile

The copy holds the files git knows (tracked and untracked-not-ignored) plus the raw snapshot data/;
its params.yaml is `registry.subset_params` of ours (the subset's profile and runs only; tables show
the other runs as "not run in this profile") and its dvc.yaml is generated from that. The
copy is a fresh git repository, so `dvc repro`, `dvc status` and `dvc exp` behave as in a clone.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rog.pipeline import dvcyaml, parallel
from rog.pipeline.registry import read_params, subset_params

EXTRA = ("data",)  # DVC-tracked (git-ignored) inputs the pipeline needs


def environment(root: Path | None = None) -> dict:
    """os.environ with this interpreter's bin/ first on PATH (papermill, dvc, python of the venv), no
    MPLBACKEND (it would drop figures from executed notebooks), DVC analytics off, and `root` first on
    PYTHONPATH so that a copy runs its own `rog`, not the editable install's."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("MPLBACKEND", None)
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=environment(cwd), check=check, text=True, capture_output=True)


def copy_repo(src: Path, dst: Path) -> None:
    """Copy git's view of src (tracked + untracked, not ignored; not its results/ and dvc.lock) and EXTRA
    into dst, then git-commit it."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if rel == "dvc.lock" or rel.startswith("results/"):
            continue  # another profile's results: the copy's pipeline starts from nothing
        source = src / rel
        if not source.is_file():
            continue  # deleted but still in the index
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for rel in EXTRA:
        if (src / rel).is_dir():
            shutil.copytree(src / rel, dst / rel, dirs_exist_ok=True)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=smoke", "-c", "user.email=smoke@localhost", "commit", "-q", "-m", "copy"]):
        run(cmd, dst)


def prepare(src: str | Path, dst: str | Path, subset: str = "smoke") -> Path:
    """dst: a copy of the repo set up for a subset's pipeline (committed, so `dvc exp` works too)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    dst.mkdir(parents=True, exist_ok=True)
    copy_repo(src, dst)
    params = subset_params(read_params(src / "params.yaml"), subset)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, width=120))
    (dst / "dvc.yaml").write_text(dvcyaml.render(params))
    run(["git", "add", "params.yaml", "dvc.yaml"], dst)
    run(["git", "-c", "user.name=smoke", "-c", "user.email=smoke@localhost", "commit", "-q", "-m", "smoke"], dst)
    return dst


def repro(dst: str | Path, jobs: int = 2) -> float:
    """The pipeline in dst (rog.pipeline.parallel: `jobs` experiments side by side, then `dvc repro`);
    returns its wall time in seconds (raises with DVC's output on failure)."""
    dst = Path(dst)
    return parallel.reproduce(dst, jobs, environment(dst), log=lambda text: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rog.pipeline.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("dst", help="folder for the copy (created)")
    parser.add_argument("--src", default=".", help="the repository (default: .)")
    parser.add_argument("--subset", default="smoke", help="subsets.NAME of params.yaml (default: smoke)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="experiments side by side (default: 2)")
    args = parser.parse_args(argv)
    dst = prepare(args.src, args.dst, args.subset)
    seconds = repro(dst, args.jobs)
    status = run([sys.executable, "-m", "dvc", "status", "-q"], dst, check=False)
    print(f"subset {args.subset}: pipeline reproduced in {seconds:.0f} s in {dst}; dvc status "
          f"{'clean' if status.returncode == 0 else 'NOT clean'}")
    return 0 if status.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
