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
the same weights as a run that was never interrupted. Under torchrun each process trains on
batch_size / world_size images per iteration (DDP; gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from rog.data.build import build_dataset, build_sampler
from rog.data.lvis_dataset import collate
from rog.engine import checkpoint, diagnostics, distributed, rundir
from rog.engine.schedule import build_scheduler
from rog.models.builder import build_detector, classifier

LOSS_LOG = "losses.jsonl"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(images: list[torch.Tensor], targets: list[dict], device: torch.device):
    return ([im.to(device) for im in images],
            [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in targets])


def truncate_log(path: Path, last_iteration: int) -> None:
    """Keep only the log lines of iterations <= last_iteration (a resumed run rewrites the rest)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["iteration"] <= last_iteration]
    path.write_text("".join(line + "\n" for line in kept))


def log_seconds(path: str | Path) -> float:
    """Compute seconds of a run: the sum of the `seconds` of its losses.jsonl lines (0.0 without the file).

    Each line times one iteration, so a run resumed across sittings counts every iteration it kept
    (truncate_log drops the redone ones) and none of the idle time between sittings.
    """
    path = Path(path)
    if not path.is_file():
        return 0.0
    total = 0.0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            record = json.loads(line)
            if "seconds" not in record:
                raise ValueError(f"{path}, line {number}: no 'seconds' field")
            total += float(record["seconds"])
    return total


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
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=float(self.tp["lr"]),
                                         momentum=float(self.tp["momentum"]),
                                         weight_decay=float(self.tp["weight_decay"]))
        self.scheduler = build_scheduler(self.optimizer, self.tp)
        self.sampler = build_sampler(params["dataset"], self.dataset, seed, self.rank, self.world)
        self.iteration = 0
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
                "rng": rng, "diagnostics": stats}

    def save(self, *paths: Path, kept: Path | None = None) -> None:
        """Write the full checkpoint to `paths` and the model-only one to `kept` (collective under DDP)."""
        state = self.state()
        if self.rank == 0:
            for path in paths:
                checkpoint.save(path, state)
            if kept is not None:
                checkpoint.save(kept, checkpoint.model_only(state))
            self.write_diagnostics(state["diagnostics"])
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
        """Restore the training state from checkpoints/last.pt if there is one."""
        if not self.last_checkpoint.is_file():
            return False
        state = checkpoint.load(self.last_checkpoint)
        checkpoint.check_signature(state, self.signature, self.last_checkpoint)
        if state.get("params_hash") != self.hash:
            raise checkpoint.CheckpointError(f"{self.last_checkpoint}: written by another experiment "
                                             f"(params hash {state.get('params_hash')} vs {self.hash})")
        if state["world_size"] != self.world:
            raise checkpoint.CheckpointError(
                f"{self.last_checkpoint}: saved by {state['world_size']} processes, resumed with {self.world}; "
                "an exact resume needs the same number")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler_state = dict(state["sampler"])
        self.iteration = int(state["iteration"])
        checkpoint.set_rng_state(state["rng"][self.rank])
        if self.grad_stats is not None and state["diagnostics"] is not None and self.rank == 0:
            self.grad_stats.load_state_dict(state["diagnostics"])  # the sum over ranks lives on rank 0
        return True

    # ---- the loop ---------------------------------------------------------------------------------
    def batches(self):
        """Infinite stream of (images, targets) of batch_size / world_size images, tracking the position."""
        per_rank = int(self.tp["batch_size"]) // self.world
        self.sampler.set_start(self.sampler_state["epoch"], self.sampler_state["position"])
        stream = self.sampler.positions()
        while True:
            picks = [next(stream) for _ in range(per_rank)]
            epoch, position, _ = picks[-1]
            self.sampler_state = {"epoch": epoch, "position": position + 1}
            yield collate([self.dataset[index] for _, _, index in picks])

    def step(self, model, images, targets) -> dict[str, float]:
        """One SGD step; returns the losses averaged over processes, the total under 'loss'."""
        losses = model(images, targets)
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
            raise FloatingPointError(f"iteration {self.iteration + 1}: non-finite loss "
                                     + ", ".join(f"{k}={v:.4g}" for k, v in out.items()))
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
        distributed.barrier()
        if self.iteration >= iterations and final.is_file():
            return final
        model = self.model
        if self.world > 1:
            # no buffer sync in forward: BN statistics stay per process (as mmdet); GAP and EQLv2 sum their
            # own statistics over processes
            model = DistributedDataParallel(self.model, forward_sync_buffers=False)
        self.model.train()
        bar = tqdm(total=iterations, initial=self.iteration, disable=not self.progress or self.rank != 0,
                   desc="resumed" if resumed else "train", dynamic_ncols=True)
        log = open(self.out / LOSS_LOG, "a") if self.rank == 0 else None
        try:
            batches = self.batches()
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
            bar.close()
            if log is not None:
                log.close()
        return final


def train(params: dict, out_dir: str | Path, objective: torch.nn.Module | None = None, progress: bool = True,
          stop_after: int | None = None) -> Path | None:
    """Train (or resume) the run of `params` in `out_dir`; see the module docstring."""
    return Trainer(params, out_dir, objective, progress).run(stop_after)
