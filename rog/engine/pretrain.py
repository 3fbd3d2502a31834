"""Pretraining the detector once on glyphs disjoint from LT-Glyphs' categories: our ImageNet.

The paper's detectors start from ImageNet weights: features that already separate shapes, so that 12
epochs of LVIS train the heads and adapt the body. Here the analogue is the profile's whole detector
trained on a balanced detection set of other characters (rog.data.pretrain_glyphs.select_chars: no
ASCII character, no homoglyph of one, nothing above `max_similarity` to one), rendered by LT-Glyphs'
own generator with LT-Glyphs' style, from `balanced_text` (every class equally frequent). Experiments
start from it with model.weights: pretrain (rog.models.pretrained.transfer: every layer but the
classifier; the class-specific box and mask layers from the mean over the pretrained classes).

`pretrain(params, out_dir)` renders the set into WORK/data and trains with rog.engine.trainer into
WORK/run (checkpoints: a killed pretraining resumes), WORK = out_dir + '_work'; it then writes
out_dir/detector.pt (rog.models.pretrained) and out_dir/summary.json. The profile's model, train and
style sections are used as they are, except: the objective is sigmoid CE, no ranking term, random
sampling, no pretrained start, and the pretrain section's seed, iterations, lr, threads, number of images
and glyph density (snippets, snippet_chars). Same
params on the same machine: the same weights (one thread by default).
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from rog.models import pretrained

REQUIRED_KEYS = ("max_similarity", "max_classes", "num_train", "snippets", "snippet_chars", "text_length", "seed",
                 "iterations", "lr", "threads")


class PretrainParamsError(ValueError):
    """The pretrain section is invalid, or selects no characters."""


def check_params(p: dict) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in p]
    if missing:
        raise PretrainParamsError(f"pretrain: missing keys {', '.join(missing)}")
    for key in ("max_classes", "num_train", "text_length", "iterations", "threads"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise PretrainParamsError(f"pretrain.{key}: expected a positive integer, got {p[key]!r}")
    if not 0.0 < float(p["max_similarity"]) <= 1.0:
        raise PretrainParamsError(f"pretrain.max_similarity: must be in (0, 1], got {p['max_similarity']}")


def work_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + "_work")


def pretraining_chars(params: dict) -> str:
    """The pretraining characters of the pretrain section (code-point order)."""
    from rog.data.glyphs import load_fonts
    from rog.data.pretrain_glyphs import select_chars

    p, style = params["pretrain"], params["dataset"]["glyphs"]
    chars = select_chars(load_fonts(style["snapshot"], style["fonts"]), float(p["max_similarity"]),
                         int(p["max_classes"]))
    if len(chars) < 2:
        raise PretrainParamsError(f"pretrain: {len(chars)} characters pass max_similarity "
                                  f"{p['max_similarity']} in all fonts; raise it")
    return chars


def run_params(params: dict, data_root: str | Path) -> dict:
    """The params of the pretraining run (module docstring)."""
    p = params["pretrain"]
    run = copy.deepcopy({k: params[k] for k in ("dataset", "model", "train", "evaluate", "pretrain")})
    dataset = run["dataset"]
    dataset.update(name="lt_glyphs", root=str(data_root), train_json="train.json", val_json="val.json",
                   image_root=".")
    dataset["sampler"]["kind"] = "random"
    # the pretraining's own layout: a regime that changes the experiments' glyph density keeps the same start
    dataset["glyphs"].update(num_train=int(p["num_train"]), num_val=0, min_val_images=0, frequency_exponent=1.0,
                             seed=int(p["seed"]), snippets=list(p["snippets"]), snippet_chars=list(p["snippet_chars"]))
    model = run["model"]
    model["objective"] = {"name": "sigmoid_ce", "params": {}}
    model["ranking"]["name"] = None  # no ranking term
    model["weights"] = None
    run["train"].update(seed=int(p["seed"]), iterations=int(p["iterations"]), lr=float(p["lr"]),
                        threads=int(p["threads"]), processes=1, keep_every=0, diagnostics=False)
    run["train"]["warmup_iterations"] = min(int(run["train"]["warmup_iterations"]), int(p["iterations"]))
    return run


def render(params: dict, data_root: Path, chars: str) -> dict:
    """The pretraining set in data_root (kept when its stats say it was rendered from these params)."""
    from rog.data.glyphs import generate
    from rog.data.pretrain_glyphs import balanced_text

    p, glyphs = params["pretrain"], params["dataset"]["glyphs"]
    key = {"chars": chars, "glyphs": glyphs, "text_length": int(p["text_length"])}
    stamp = data_root / "made_from.json"
    if stamp.is_file() and (data_root / "train.json").is_file() and json.loads(stamp.read_text()) == key:
        return json.loads((data_root / "stats.json").read_text())
    stamp.unlink(missing_ok=True)
    stats = generate(glyphs, data_root, text=balanced_text(chars, int(p["text_length"]), int(p["seed"])))
    stamp.write_text(json.dumps(key, ensure_ascii=False))
    return stats


def pretrain(params: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """Pretrain the detector (module docstring); returns the metadata written (without the weights)."""
    from rog.engine import checkpoint
    from rog.engine.trainer import LOSS_LOG, read_log, train

    p = params["pretrain"]
    check_params(p)
    if params["model"]["backbone"]["name"] != "tiny":
        raise PretrainParamsError(f"pretrain: model.backbone.name is '{params['model']['backbone']['name']}'; "
                                  "only the tiny CPU detector is pretrained here (resnet*_fpn: ImageNet weights)")
    start = time.perf_counter()
    out, work = Path(out_dir), work_dir(out_dir)
    chars = pretraining_chars(params)
    run = run_params(params, work / "data")
    stats = render(run, work / "data", chars)
    final = train(run, work / "run", progress=progress)
    state = checkpoint.load(final)["model"]
    log = read_log(work / "run" / LOSS_LOG)
    last = [entry for _, entry in log[-50:]]
    losses = {k: round(sum(e[k] for e in last) / len(last), 4) for k in last[0]
              if k.startswith("loss")} if last else {}  # the mean of the last 50 iterations
    meta = {"chars": chars, "num_classes": len(chars), "params": p,
            "dataset": {k: stats[k] for k in ("categories", "train_images", "train_annotations")},
            "final_losses": losses}
    path = pretrained.save(out / pretrained.WEIGHTS_FILE, state, **meta)
    meta = dict(meta, sha256=pretrained.weights_digest(path))
    (out / "summary.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    # the wall time is returned, not written: the stage's output must be byte-identical when rerun (a fresh
    # clone re-makes it, and DVC would otherwise call every experiment that depends on it changed)
    return dict(meta, seconds=round(time.perf_counter() - start, 1))
