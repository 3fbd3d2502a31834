"""rog.report.provenance_table: which commit(s) and environment(s) made results/, for the overview."""
from __future__ import annotations

import json
from pathlib import Path

from rog.provenance import provenance
from rog.report import provenance_table as pt


def write(root: Path, run: str, found: dict | None, trained: dict | None = None) -> None:
    folder = root / "results" / "experiments" / run
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {"bbox": {"metrics": {"AP": 0.1}}, **({"provenance": found} if found is not None else {}),
               **({"train_provenance": trained} if trained is not None else {})}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_runs_before_provenance_are_unknown_not_an_error(tmp_path):
    write(tmp_path, "a", None)
    write(tmp_path, "b", None)
    text = pt.markdown(["a", "b", "not_run"], tmp_path)
    assert text.startswith("All 2 runs: unknown (made before provenance was recorded).")
    assert "| 2: a, b | unknown (made before provenance was recorded) | – |" in text
    assert "not_run" not in text


def test_one_commit_and_environment_is_one_row_whatever_the_seconds(tmp_path):
    base = provenance("cpu", tmp_path, evaluate=1.0)
    base.update(commit="a" * 40, dirty=False, lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", base)
    write(tmp_path, "b", {**base, "seconds": {"evaluate": 99.0}})
    found = pt.groups(["a", "b"], tmp_path)
    assert [g["runs"] for g in found] == [["a", "b"]]
    text = pt.markdown(["a", "b"], tmp_path)
    assert text.startswith("All 2 runs were made by one commit (aaaaaaaaaaaa) in one environment.\n")
    assert f"| 2: a, b | aaaaaaaaaaaa | bbbbbbbbbbbb | python {base['python']}, torch {base['torch']}," in text
    assert text.count("\n| ") == 2  # header and one row


def test_several_commits_environments_and_unknown_runs_are_flagged(tmp_path):
    base = provenance("cpu", tmp_path)
    base.update(commit="a" * 40, dirty=False, lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", base)
    write(tmp_path, "b", {**base, "torch_threads": base["torch_threads"] + 1})  # same commit, other threads
    write(tmp_path, "c", {**base, "commit": "c" * 40, "dirty": True, "lock_mismatches": 3})
    write(tmp_path, "d", None)
    found = pt.groups(["a", "b", "c", "d"], tmp_path)
    assert [g["runs"] for g in found] == [["a"], ["b"], ["c"], ["d"]]
    verdict = pt.verdict(found)
    assert verdict.startswith("**Warning: results/ was made by 4 different commits or environments** "
                              "(2 commit(s) recorded; 1 of 4 runs unknown (made before provenance was recorded); "
                              "environments differ in lock_mismatches, torch_threads)")
    assert "differed from its commit (dirty" in verdict and "differed from requirements.lock" in verdict
    text = pt.markdown(["a", "b", "c", "d"], tmp_path)
    assert "| 1: c | cccccccccccc (dirty) | bbbbbbbbbbbb (3 packages differ) |" in text


def test_training_commits_are_counted_beside_the_evaluation_verdict(tmp_path):
    base = provenance("cpu", tmp_path)
    base.update(commit="a" * 40, dirty=False, lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", base, {**base, "commit": "e" * 40})      # trained before the evaluation's commit
    write(tmp_path, "b", base, base)
    write(tmp_path, "c", base, base)
    write(tmp_path, "d", base)                                    # no training provenance recorded
    text = pt.markdown(["a", "b", "c", "d"], tmp_path)
    assert text.startswith("All 4 runs were made by one commit (aaaaaaaaaaaa) in one environment. "
                           "Trained at aaaaaaaaaaaa (2 runs), eeeeeeeeeeee (1 run).\n")
    assert pt.training_commits(["d"], tmp_path) == ""


def test_no_results_at_all(tmp_path):
    assert pt.markdown(["a"], tmp_path).startswith("No run has results yet.")


def test_the_overview_stage_reruns_when_any_run_changes():
    """The overview shows every run's provenance, so DVC must rerun it when any metrics.json changes
    (a rerun run can leave every table unchanged)."""
    from rog.pipeline.dvcyaml import stages
    from rog.pipeline.registry import metrics_path, read_params, run_names

    params = read_params(Path(__file__).resolve().parents[1] / "params.yaml")
    deps = stages(params)["overview"]["deps"]
    assert {str(metrics_path(run)) for run in run_names(params)} <= set(deps)


def _commit(repo: Path, path: str, text: str) -> str:
    import subprocess

    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True)
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", path)
    return run("rev-parse", "HEAD").stdout.strip()


def test_commits_that_differ_outside_the_run_code_made_the_same_numbers(tmp_path):
    """Two commits whose only difference is a report module: one environment, same run code, no warning;
    a third that changes a training dependency brings the warning back."""
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    stage = {"stages": {"experiment": {"foreach": ["a"], "do": {
        "cmd": "x", "deps": ["rog/engine/trainer.py", "out/pipeline/${profile}/dataset"]}}}}
    (tmp_path / "dvc.yaml").write_text(json.dumps(stage))
    first = _commit(tmp_path, "rog/engine/trainer.py", "lr = 1\n")
    second = _commit(tmp_path, "rog/report/page.py", "words = 1\n")
    assert pt.run_code_paths(tmp_path) == ["rog/engine/trainer.py"]
    base = provenance("cpu", tmp_path)
    base.update(dirty=False, lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", {**base, "commit": first}, {**base, "commit": first})
    write(tmp_path, "b", {**base, "commit": second}, {**base, "commit": second})
    text = pt.markdown(["a", "b"], tmp_path)
    assert text.startswith(f"All 2 runs were made by 2 commits ({', '.join(sorted([first[:12], second[:12]]))}) "
                           "with the same run code")
    assert ", with the same run code." in text and "Warning" not in text and "in one environment." in text
    assert pt.training_code(["a", "b"], tmp_path) == ", ".join(sorted([first[:7], second[:7]])) + ", identical between them"
    write(tmp_path, "b", {**base, "commit": second, "torch_threads": base["torch_threads"] + 1})
    assert "; their environments differ in torch_threads: compare" in pt.markdown(["a", "b"], tmp_path)

    third = _commit(tmp_path, "rog/engine/trainer.py", "lr = 2\n")
    write(tmp_path, "c", {**base, "commit": third})
    assert pt.same_run_code([first, third], tmp_path) is False
    write(tmp_path, "c", {**base, "commit": third}, {**base, "commit": third})
    assert pt.training_code(["a", "c"], tmp_path) == ", ".join(sorted([first[:7], third[:7]]))
    assert pt.markdown(["a", "b", "c"], tmp_path).startswith("**Warning: results/ was made by 3 different commits")
    assert pt.same_run_code([first, "f" * 40], tmp_path) is None  # a commit outside the history


def test_a_dirty_run_names_its_changed_files(tmp_path):
    base = provenance("cpu", tmp_path)
    base.update(commit="a" * 40, dirty=True, dirty_files=["repro.log"], lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", base, base)
    text = pt.markdown(["a"], tmp_path)
    assert "| 1: a | aaaaaaaaaaaa (dirty: repro.log) |" in text
    assert "Trained at aaaaaaaaaaaa (dirty: repro.log) (1 run)." in text
