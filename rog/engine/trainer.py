"""The iteration-based training loop: SGD, warmup + step decay, clipping, checkpoints, exact resume, DDP.

`train(params, out_dir)` trains the detector of `params` (resolved params.yaml) into `out_dir`:

    out_dir/params.yaml, run.json      what the run is (see rog.engine.rundir)
    out_dir/losses.jsonl               one line per iteration: iteration, lr, loss, each term, seconds
    out_dir/checkpoints/last.pt        every train.checkpoint_every iterations and at the end
    out_dir/checkpoints/iter_NNNNNN.pt every train.keep_every iterations before the end (0: none): the
                                       model only (rog.engine.checkpoint.model_only), for learning curves
    out_dir/model_final.pt             the finished run (what `python -m rog evaluate` reads)
    out_dir/diagnostics.json           gradient statistics and classifier weight norms (Figures 4, 5a)

A run started again on the same folder resumes from checkpoints/last.pt: model (buffers included),
optimizer, scheduler, sampler position and every process's RNG states are restored, so it ends with
the same weights as a run that was never interrupted. Faults it survives: a corrupt last.pt (resumed
from model_final.pt or checkpoints/previous.pt, the checkpoint before it, and said so), a run killed
between its last iteration and model_final.pt (the file is written from the restored state), temp
files of a killed write (removed), a torn last line of losses.jsonl (dropped). A change of the
execution knobs that change the numbers (train.threads, the device) is refused mid-run. A non-finite
loss stops the run (NonFiniteLoss, naming the iteration and the terms) before anything is saved.
Under torchrun each process trains on batch_size / world_size images per iteration (DDP; gloo on
CPU, nccl on GPU).
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from rog.data.build import build_dataset, build_sampler
from rog.data.loader import training_loader
from rog.engine import checkpoint, diagnostics, distributed, rundir
from rog.engine.schedule import build_optimizer, build_scheduler
from rog.losses.inputs import NonFiniteLogits
from rog.models.builder import build_detector, classifier

LOSS_LOG = "losses.jsonl"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(images: list[torch.Tensor], targets: list[dict], device: torch.device):
    return ([im.to(device) for im in images],
            [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in targets])


class NonFiniteLoss(FloatingPointError, ValueError):
    """A training loss became NaN or infinite; the message names the iteration and the terms."""


def read_log(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of each line of a losses.jsonl, without a torn last line (a write killed
    midway); ValueError naming the file and line for any other unreadable line."""
    lines = path.read_text().splitlines() if path.is_file() else []
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # torn by a kill: the iteration it logged is after the last checkpoint
            raise ValueError(f"{path}, line {number}: not a json record ({err})") from None
    return records


def truncate_log(path: Path, last_iteration: int) -> None:
    """Keep only the log lines of iterations <= last_iteration (a resumed run rewrites the rest)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [lines[number - 1] for number, r in read_log(path) if r["iteration"] <= last_iteration]
    path.write_text("".join(line + "\n" for line in kept))


def log_seconds(path: str | Path) -> float:
    """Compute seconds of a run: the sum of the `seconds` of its losses.jsonl lines (0.0 without the file).

    Each line times one iteration, so a run resumed after a stop counts every iteration it kept
    (truncate_log drops the redone ones) and none of the time it stood stopped.
    """
    path = Path(path)
    total = 0.0
    for number, record in read_log(path):
        if "seconds" not in record:
            raise ValueError(f"{path}, line {number}: no 'seconds' field")
        total += float(record["seconds"])
    return total


def notice(message: str) -> None:
    """A line on stderr about a fault the run recovered from."""
    print(f"rog train: {message}", file=sys.stderr, flush=True)


class Trainer:
    """One process's share of a training run (see the module docstring)."""

    def __init__(self, params: dict, out_dir: str | Path, objective: torch.nn.Module | None = None,
                 progress: bool = True):
        self.params = params
        self.tp = params["train"]
        self.out = Path(out_dir)
        self.progress = progress
        self.device = distributed.local_device(self.tp["device"])
        if self.device.type == "cpu":
            torch.set_num_threads(int(self.tp["threads"]))
        self.rank, self.world = distributed.init(self.device)
        if int(self.tp["batch_size"]) % self.world:
            raise ValueError(f"train.batch_size {self.tp['batch_size']} is not divisible by the "
                             f"{self.world} processes")
        self.hash = rundir.check(self.out, params)  # every rank checks, before anything is written

        seed = int(self.tp["seed"])
        seed_everything(seed)  # same model initialisation on every rank
        self.dataset = build_dataset(params["dataset"], "train")
        self.counts = self.dataset.category_counts()
        self.num_classes = self.dataset.num_classes
        self.grad_stats = diagnostics.GradientStats(self.num_classes) if self.tp["diagnostics"] else None
        self.model = build_detector(params["model"], self.num_classes, self.counts, objective,
                                    grad_stats=self.grad_stats).to(self.device)
        self.signature = self.model.signature
        self.optimizer = build_optimizer(self.model.parameters(), self.tp)
        self.scheduler = build_scheduler(self.optimizer, self.tp)
        self.sampler = build_sampler(params["dataset"], self.dataset, seed, self.rank, self.world)
        self.iteration = 0
        self.saved_iteration = None  # the iteration of the last checkpoint written or restored
        self.sampler_state = {"epoch": 0, "position": 0}
        seed_everything(seed + 1 + self.rank)  # RoI sampling and transforms differ across ranks

    # ---- checkpoints ------------------------------------------------------------------------------
    @property
    def last_checkpoint(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    def state(self) -> dict:
        """The checkpoint dict (collective under DDP: RNG states gathered, statistics summed)."""
        rng = distributed.all_gather_objects(checkpoint.rng_state())
        stats = self.grad_stats.summed() if self.grad_stats is not None else None
        return {"signature": self.signature, "params": self.params, "params_hash": self.hash,
                "iteration": self.iteration, "world_size": self.world,
                "class_counts": checkpoint.counts_to_state(self.counts),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": dict(self.sampler_state),
                "rng": rng, "diagnostics": stats, "execution": self.execution()}

    @property
    def previous_checkpoint(self) -> Path:
        """The full checkpoint before last.pt: the fallback when last.pt is corrupt (removed at the end)."""
        return self.out / "checkpoints" / "previous.pt"

    def execution(self) -> dict:
        """The execution knobs that change the numbers though not the run hash: threads and device type."""
        threads = torch.get_num_threads() if self.device.type == "cpu" else None
        return {"threads": threads, "device": self.device.type}

    def save(self, *paths: Path, kept: Path | None = None) -> None:
        """Write the full checkpoint to `paths` and the model-only one to `kept` (collective under DDP).

        NonFiniteLoss instead when a weight is NaN or infinite: a blown-up model never replaces a good one."""
        bad = [name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise NonFiniteLoss(f"iteration {self.iteration}: the weights became non-finite ({bad[0]}"
                                + (f" and {len(bad) - 1} more" if len(bad) > 1 else "") + "); not saved, "
                                f"{self.kept_message()}; lower train.lr or check the data")
        state = self.state()
        if self.rank == 0:
            for path in paths:
                previous = self.previous_checkpoint if path == self.last_checkpoint else None
                checkpoint.save(path, state, previous=previous)
            if kept is not None:
                checkpoint.save(kept, checkpoint.model_only(state))
            self.write_diagnostics(state["diagnostics"])
        self.saved_iteration = self.iteration
        distributed.barrier()

    def due(self, iterations: int) -> tuple[list[Path], Path | None]:
        """What to write after the current iteration: (full checkpoint paths, kept checkpoint path or None).

        Kept checkpoints are copies of the model, so they change no weights: a resume redoes the
        iterations after last.pt and rewrites any kept file of those iterations with the same weights.
        """
        final = self.out / "model_final.pt"
        paths = [self.last_checkpoint, final] if self.iteration == iterations else \
            [self.last_checkpoint] if self.iteration % int(self.tp["checkpoint_every"]) == 0 else []
        keep = int(self.tp.get("keep_every") or 0)
        kept = checkpoint.kept_path(self.out, self.iteration) \
            if keep > 0 and self.iteration % keep == 0 and self.iteration < iterations else None
        return paths, kept

    def write_diagnostics(self, stats: dict | None) -> None:
        diagnostics.write(self.out / "diagnostics.json", stats, diagnostics.weight_norms(classifier(self.model)),
                          self.num_classes, self.iteration, list(self.dataset.category_ids),
                          list(self.counts.frequency))

    def resume(self) -> bool:
        """Restore the training state from the newest intact full checkpoint: checkpoints/last.pt, else
        model_final.pt, else checkpoints/previous.pt. One that fails its integrity check is set aside
        as NAME.corrupt, and said so; CheckpointError if every one does, or if one is of another run."""
        final = self.out / "model_final.pt"
        candidates = [p for p in (self.last_checkpoint, final, self.previous_checkpoint) if p.is_file()]
        damaged, state = [], None
        for path in candidates:
            try:
                state = checkpoint.load(path)
                break
            except checkpoint.CheckpointError as err:
                damaged.append((path, err))
        if state is None and not damaged:
            return False
        if state is None:
            raise checkpoint.CheckpointError(
                "no intact checkpoint to resume from: " + "; ".join(str(err) for _, err in damaged)
                + f"; delete {self.out} to train from scratch")
        self.check_resumable(state, path)
        distributed.barrier()  # every rank has read its checkpoint before rank 0 moves the damaged ones
        if self.rank == 0:
            for bad, err in damaged:
                os.replace(bad, bad.with_name(bad.name + ".corrupt"))
                notice(f"{err}; set aside as {bad.name}.corrupt; resuming from {path} "
                       f"(iteration {state['iteration']})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler_state = dict(state["sampler"])
        self.iteration = self.saved_iteration = int(state["iteration"])
        checkpoint.set_rng_state(state["rng"][self.rank])
        if self.grad_stats is not None and state["diagnostics"] is not None and self.rank == 0:
            self.grad_stats.load_state_dict(state["diagnostics"])  # the sum over ranks lives on rank 0
        return True

    def check_resumable(self, state: dict, path: Path) -> None:
        """CheckpointError unless `state` belongs to this run, its processes and (mid-run) its execution."""
        checkpoint.check_signature(state, self.signature, path)
        if state.get("params_hash") != self.hash:
            raise checkpoint.CheckpointError(f"{path}: written by another experiment "
                                             f"(params hash {state.get('params_hash')} vs {self.hash})")
        if state["world_size"] != self.world:
            raise checkpoint.CheckpointError(
                f"{path}: saved by {state['world_size']} processes, resumed with {self.world}; "
                "an exact resume needs the same number")
        saved, now = state.get("execution"), self.execution()
        if saved and saved != now and int(state["iteration"]) < int(self.tp["iterations"]):
            started = ", ".join(f"{k} {saved.get(k)}" for k in now)
            raise checkpoint.CheckpointError(
                f"{path}: the run started with {started} and would resume with "
                + ", ".join(f"{k} {v}" for k, v in now.items())
                + "; these change the numbers, so an exact resume needs the same (e.g. --set train.threads="
                f"{saved.get('threads')})")

    # ---- the loop ---------------------------------------------------------------------------------
    def batches(self):
        """Infinite stream of (images, targets) of batch_size / world_size images, tracking the position;
        train.workers processes decode them (rog.data.loader: the batches do not depend on the count)."""
        per_rank = int(self.tp["batch_size"]) // self.world
        self.sampler.set_start(self.sampler_state["epoch"], self.sampler_state["position"])
        loader = training_loader(self.dataset, self.sampler, per_rank, int(self.tp.get("workers") or 0),
                                 int(self.tp["seed"]), self.rank, pin_memory=self.device.type == "cuda")
        for images, targets, (epoch, position) in loader:
            self.sampler_state = {"epoch": epoch, "position": position + 1}
            yield images, targets

    def kept_message(self) -> str:
        if self.saved_iteration is None:
            return "no checkpoint was written"
        return f"{self.last_checkpoint} (iteration {self.saved_iteration}) is kept"

    def step(self, model, images, targets) -> dict[str, float]:
        """One SGD step; returns the losses averaged over processes, the total under 'loss'.

        NonFiniteLoss, naming the iteration, for a NaN or infinite loss term, or for non-finite logits
        (weights blown up by the previous step)."""
        try:
            losses = model(images, targets)
        except NonFiniteLogits as err:
            raise NonFiniteLoss(f"iteration {self.iteration + 1}: {err}; the run stopped before saving, "
                                f"{self.kept_message()}; lower train.lr or check the data") from None
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.tp["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.tp["grad_clip"]))
        self.optimizer.step()
        self.scheduler.step()
        names = sorted(losses)
        values = torch.stack([total.detach()] + [losses[k].detach() for k in names]).double().cpu()
        values = distributed.all_reduce_sum(values) / self.world
        out = dict(zip(["loss"] + names, values.tolist()))
        if not math.isfinite(out["loss"]):
            terms = [k for k in names if not math.isfinite(out[k])] or ["loss"]
            raise NonFiniteLoss(
                f"iteration {self.iteration + 1}: non-finite training loss in "
                + ", ".join(f"{k} = {out[k]:.4g}" for k in terms) + f" (total {out['loss']:.4g}); "
                f"the run stopped before saving, {self.kept_message()}; lower train.lr or check the data")
        return out

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to train.iterations (or stop after `stop_after` iterations, as a kill would); return
        the final model path, or None when stopped early."""
        iterations = int(self.tp["iterations"])
        final = self.out / "model_final.pt"
        resumed = self.resume()
        if self.rank == 0:
            rundir.initialise(self.out, self.params, self.signature)
            truncate_log(self.out / LOSS_LOG, self.iteration)
            removed = checkpoint.clean_partial(self.out)
            if removed:
                notice(f"removed {len(removed)} temp file(s) of an interrupted checkpoint write: "
                       + ", ".join(p.name for p in removed))
        distributed.barrier()
        if self.iteration >= iterations:
            if not checkpoint.is_intact(final):  # killed between last.pt and model_final.pt, or lost
                if self.rank == 0:
                    notice(f"{final} is {'corrupt' if final.is_file() else 'missing'}; written again from "
                           f"the restored state of iteration {self.iteration}")
                self.save(final)
            return self.finish(final)
        model = self.model
        if self.world > 1:
            # no buffer sync in forward: BN statistics stay per process (as mmdet); GAP and EQLv2 sum their
            # own statistics over processes
            model = DistributedDataParallel(self.model, forward_sync_buffers=False)
        self.model.train()
        bar = tqdm(total=iterations, initial=self.iteration, disable=not self.progress or self.rank != 0,
                   desc="resumed" if resumed else "train", dynamic_ncols=True)
        log = open(self.out / LOSS_LOG, "a") if self.rank == 0 else None
        batches = self.batches()
        try:
            while self.iteration < iterations:
                start = time.perf_counter()
                images, targets = to_device(*next(batches), self.device)
                lr = self.optimizer.param_groups[0]["lr"]
                values = self.step(model, images, targets)
                self.iteration += 1
                record = {"iteration": self.iteration, "lr": lr, **values,
                          "seconds": time.perf_counter() - start}
                if log is not None:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                paths, kept = self.due(iterations)
                if paths or kept is not None:
                    self.save(*paths, kept=kept)
                if stop_after is not None and self.iteration >= stop_after and self.iteration < iterations:
                    return None
        finally:
            batches.close()  # stops the loader's workers
            bar.close()
            if log is not None:
                log.close()
        return self.finish(final)

    def finish(self, final: Path) -> Path:
        """The path of the finished run's model, checked on disk; the fallback checkpoint goes."""
        if not checkpoint.is_intact(final):
            raise checkpoint.CheckpointError(f"{final}: the final model was not written intact")
        if self.rank == 0:
            self.previous_checkpoint.unlink(missing_ok=True)
        return final


def train(params: dict, out_dir: str | Path, objective: torch.nn.Module | None = None, progress: bool = True,
          stop_after: int | None = None) -> Path | None:
    """Train (or resume) the run of `params` in `out_dir`; see the module docstring."""
    return Trainer(params, out_dir, objective, progress).run(stop_after)
