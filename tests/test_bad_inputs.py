"""Bad input and faults through the command line (issue 14's probes, smoke profile, a few iterations).

Each bad input ends with exit code 2 and a one-line message naming the file, record or key, never a
Python traceback; each recoverable fault (a lost final model, a rotten or torn file, a killed write)
completes with the weights of an uninterrupted run; nothing printed names a file that is not there.
The mechanisms are general (rog/schema.py, validate_lvis, verified checkpoints); these are samples.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
import torch

from data_helpers import ensure_snapshot
from rog.cli import main
from rog.engine import checkpoint
from rog.engine.trainer import train
from test_engine import FAST, assert_same_weights, fast_params, flip_middle, render_smoke, weights

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> tuple[int, str, str]:
    """`python -m rog ARGS` in this process: (exit code, stdout, stderr). An exception escaping the
    command is printed as the interpreter would (a traceback) with exit code 1."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code
        except BaseException:  # noqa: BLE001 (what `python -m` would print)
            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()


def sets(data: Path, *extra: str) -> list[str]:
    return [arg for s in (f"dataset.root={data}", *FAST, *extra) for arg in ("--set", s)]


def train_cli(out: Path, data: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("train", "--profile", "smoke", "--out", str(out), "--no-progress", *sets(data, *extra))


def evaluate_cli(ckpt: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("evaluate", "--checkpoint", str(ckpt), "--out", str(out), "--no-progress",
                   *[arg for s in extra for arg in ("--set", s)])


def assert_refused(result: tuple[int, str, str], *named: str) -> str:
    code, out, err = result
    assert code == 2, err
    assert "Traceback" not in err and "Traceback" not in out
    for text in named:
        assert text in err, err
    assert "model_final.pt" not in out  # nothing claimed
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    ensure_snapshot()  # a fresh clone: data/ pulled from the in-repo DVC remote (this module runs first)
    return render_smoke(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("bad_inputs") / "run"
    code, out, err = train_cli(run, data)
    assert code == 0 and out.strip() == f"rog train: {run / 'model_final.pt'}", err
    return run


def variant(data: Path, folder: Path, split: str, change) -> Path:
    """A copy of the smoke dataset (images linked) whose `split`.json is changed by change(dict)."""
    folder.mkdir(parents=True)
    for name in ("train", "val"):
        os.symlink(data / name, folder / name)
        shutil.copy(data / f"{name}.json", folder / f"{name}.json")
    path = folder / f"{split}.json"
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    return folder


# ---- parameters: the schema ------------------------------------------------------------------------------
@pytest.mark.parametrize("override, named", [
    ("train.iterations=-3", "train.iterations = -3: expected an integer >= 1"),
    ("train.iterations=abc", "train.iterations = 'abc'"),
    ("train.checkpoint_every=0", "train.checkpoint_every = 0"),
    ("train.batch_size=0", "train.batch_size = 0"),
    ("model.ranking.name=focal", "model.ranking.name = 'focal': expected null or one of gap, ap_loss, rs_loss"),
    ("train=5", "'train' is a section"),
    ("model.ranking={name: gap, params: {delta: abc}}", "model.ranking.params.delta = 'abc': gap: option delta must be"),
    ("model.ranking={name: gap, params: {delta: .nan}}", "model.ranking.params.delta = nan"),
    ("model.ranking={name: rs_loss, params: {gamma: 1.0}}", "rs_loss has no option 'gamma'; valid: delta"),
    ("model.objective.params={prior_prob: .nan}", "sigmoid_ce: option prior_prob must be a finite number"),
])
def test_bad_parameters_are_named_and_nothing_is_written(data, tmp_path, override, named):
    assert_refused(train_cli(tmp_path / "run", data, override), named)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


# ---- runs never claim what is not on disk -----------------------------------------------------------------
def test_a_lost_final_model_is_written_again_from_the_restored_state(trained, data, tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    (run / "model_final.pt").unlink()
    code, out, err = train_cli(run, data)
    assert code == 0 and "Traceback" not in err and "model_final.pt is missing; written again" in err
    assert out.strip() == f"rog train: {run / 'model_final.pt'}"
    assert_same_weights(weights(trained / "model_final.pt"), weights(run / "model_final.pt"))


def test_bit_rotted_checkpoints_are_refused_on_evaluate_and_passed_over_on_resume(trained, data, tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    final, last = run / "model_final.pt", run / "checkpoints" / "last.pt"
    flip_middle(final)
    assert_refused(evaluate_cli(final, tmp_path / "eval"), f"{final}: corrupted checkpoint", "CRC-32")
    assert not (tmp_path / "eval").exists()
    # resume: a rotten last.pt is set aside, the intact final model serves, and it says so
    shutil.copy(trained / "model_final.pt", final)
    flip_middle(last)
    code, _, err = train_cli(run, data)
    assert code == 0 and f"{last}: corrupted checkpoint" in err and f"resuming from {final}" in err
    assert (run / "checkpoints" / "last.pt.corrupt").is_file()
    # with nothing intact left, a clear refusal naming each file
    flip_middle(final)
    assert_refused(train_cli(run, data), "no intact checkpoint to resume from", str(final))


def test_a_killed_run_resumes_through_a_torn_log_and_a_partial_write_but_not_with_other_threads(
        trained, data, tmp_path):
    run = tmp_path / "run"
    assert train(fast_params(data), run, progress=False, stop_after=3) is None
    with open(run / "losses.jsonl", "a") as log:
        log.write('{"iteration": 4, "lr": 0.01, "lo')  # killed mid-line
    (run / "checkpoints" / ".last.pt.tmp99999").write_bytes(b"PK\x03\x04 cut")  # killed mid-write
    try:
        assert_refused(train_cli(run, data, "train.threads=2"), "train.threads=1", "threads 2")
    finally:
        torch.set_num_threads(1)
    code, out, err = train_cli(run, data)
    assert code == 0 and "removed 1 temp file(s)" in err and "Traceback" not in err
    assert not list((run / "checkpoints").glob(".*tmp*"))
    assert_same_weights(weights(trained / "model_final.pt"), weights(run / "model_final.pt"))
    log = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == list(range(1, 7))


def test_a_non_finite_loss_stops_with_a_message_naming_the_iteration(data, tmp_path):
    err = assert_refused(train_cli(tmp_path / "run", data, "train.lr=1e12", "train.grad_clip=null",
                                   "train.warmup_iterations=0"), "iteration 2:", "non-finite")
    assert "the run stopped before saving" in err and not (tmp_path / "run" / "model_final.pt").exists()


# ---- annotations: content validated, named by file and record --------------------------------------------
def nan_box(d):
    d["annotations"][3]["bbox"][1] = float("nan")


def bad_rle(d):
    d["annotations"][2]["segmentation"]["counts"] = "!!" + d["annotations"][2]["segmentation"]["counts"]


def no_images(d):
    d["images"], d["annotations"] = [], []


@pytest.mark.parametrize("split, change, record, named", [
    ("val", nan_box, 3, "'bbox' must be 4 numbers"),
    ("val", bad_rle, 2, "'segmentation': RLE counts are malformed"),
    ("val", no_images, None, "'images' is empty"),
    ("train", nan_box, 3, "'bbox' must be 4 numbers"),
    ("train", bad_rle, 2, "'segmentation': RLE counts are malformed"),
])
def test_bad_annotations_are_named_by_file_and_record(trained, data, tmp_path, split, change, record, named):
    root = variant(data, tmp_path / "data", split, change)
    if record is not None:  # the record's index and id
        ann_id = json.loads((data / f"{split}.json").read_text())["annotations"][record]["id"]
        named = f"annotations[{record}] (id {ann_id}): {named}"
    if split == "val":
        result = evaluate_cli(trained / "model_final.pt", tmp_path / "eval", f"dataset.root={root}")
    else:
        result = train_cli(tmp_path / "run", root)
    assert_refused(result, f"{root / (split + '.json')}: {named}")
    assert not (tmp_path / "eval").exists()


# ---- evaluation degrades, and leaves nothing half-written ----------------------------------------------
def three_categories(d):
    keep = sorted(d["categories"], key=lambda c: -c["image_count"])[:3]
    ids = {c["id"] for c in keep}
    d["categories"] = keep
    d["annotations"] = [a for a in d["annotations"] if a["category_id"] in ids]
    for img in d["images"]:
        img["neg_category_ids"] = [c for c in img["neg_category_ids"] if c in ids]
        img["not_exhaustive_category_ids"] = [c for c in img["not_exhaustive_category_ids"] if c in ids]


def test_fewer_categories_than_frequency_groups_keeps_the_main_metrics(data, tmp_path):
    root = variant(data, tmp_path / "data", "train", three_categories)
    three_categories_val = json.loads((root / "val.json").read_text())
    three_categories(three_categories_val)
    (root / "val.json").write_text(json.dumps(three_categories_val))
    code, _, err = train_cli(tmp_path / "run", root, "train.iterations=2")
    assert code == 0, err
    with warnings.catch_warnings(record=True) as caught:  # pytest would swallow the warning's stderr line
        warnings.simplefilter("always")
        code, out, err = evaluate_cli(tmp_path / "run" / "model_final.pt", tmp_path / "eval")
    assert code == 0 and "Traceback" not in err, err
    assert any("3 categories cannot make 5 frequency groups" in str(w.message) for w in caught)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "AP" in metrics["bbox"]["metrics"] and "frequency_groups" not in metrics["bbox"]
    assert json.loads(out)["bbox"]["AP"] == round(metrics["bbox"]["metrics"]["AP"], 4)


def test_an_evaluation_that_fails_after_inference_leaves_no_result_files(trained, tmp_path, monkeypatch):
    import rog.evaluation.metrics as metrics

    def crash(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(metrics, "evaluate_all", crash)
    code, _, err = evaluate_cli(trained / "model_final.pt", tmp_path / "eval")
    assert code == 1 and "evaluation crashed" in err  # an unforeseen crash: its traceback is the message
    assert not (tmp_path / "eval").exists() or not any((tmp_path / "eval").iterdir())


# ---- the real entry point --------------------------------------------------------------------------------
def test_python_dash_m_rog_prints_messages_not_tracebacks(trained, data, tmp_path):
    rotten = tmp_path / "rotten.pt"
    shutil.copy(trained / "model_final.pt", rotten)
    flip_middle(rotten)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args, named in (
            (["train", "--profile", "smoke", "--out", str(tmp_path / "run"), "--no-progress",
              *sets(data, "train.iterations=abc")], "train.iterations = 'abc'"),
            (["evaluate", "--checkpoint", str(rotten), "--out", str(tmp_path / "eval")], str(rotten))):
        done = subprocess.run([sys.executable, "-m", "rog", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr and named in done.stderr, done.stderr
        assert done.stdout == ""
