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
    assert "| runs | evaluated at | lock (sha256) |" in text       # the rows' commit is the evaluation's, not a's training's
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


def write_lock(root: Path, code: dict[str, str]) -> None:
    """dvc.lock whose experiment@RUN stages depended on code file rog/engine/trainer.py with hash code[RUN]
    (and on the dataset folder, which is not code) and wrote the metrics.json results/ holds now."""
    import hashlib

    def outs(run: str) -> list[dict]:
        path = Path("results") / "experiments" / run / "metrics.json"
        return [{"path": path.as_posix(), "hash": "md5", "md5": hashlib.md5((root / path).read_bytes()).hexdigest()}]

    stages = {f"experiment@{run}": {"cmd": "x", "deps": [
        {"path": "rog/engine/trainer.py", "hash": "md5", "md5": md5},
        {"path": "out/pipeline/default/dataset", "hash": "md5", "md5": f"{run}.dir"}], "outs": outs(run)}
        for run, md5 in code.items()}
    (root / "dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": stages}))


def test_commits_that_differ_outside_the_run_code_made_the_same_numbers(tmp_path):
    """Two commits whose runs' stages recorded the same code in dvc.lock (they differ in report code only):
    no warning, and no git history is read; a run whose recorded code differs brings the warning back."""
    base = provenance("cpu", tmp_path)
    base.update(dirty=False, lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", {**base, "commit": "1" * 40}, {**base, "commit": "1" * 40})
    write(tmp_path, "b", {**base, "commit": "2" * 40}, {**base, "commit": "2" * 40})
    write_lock(tmp_path, {"a": "same", "b": "same"})
    assert pt.recorded_code(["a"], tmp_path) == {"a": {"rog/engine/trainer.py": "same"}}
    text = pt.markdown(["a", "b"], tmp_path)
    assert text.startswith("All 2 runs were made by 2 commits (111111111111, 222222222222) with the same run code")
    assert ", with the same run code." in text and "Warning" not in text and "in one environment." in text
    assert pt.training_code(["a", "b"], tmp_path) == "1111111, 2222222, identical between them"
    write(tmp_path, "b", {**base, "commit": "2" * 40, "torch_threads": base["torch_threads"] + 1})
    assert pt.same_run_code(["a", "b"], tmp_path) is None      # b's metrics.json is not the one dvc.lock records
    write_lock(tmp_path, {"a": "same", "b": "same"})
    assert "; their environments differ in torch_threads: compare" in pt.markdown(["a", "b"], tmp_path)

    write(tmp_path, "c", {**base, "commit": "3" * 40}, {**base, "commit": "3" * 40})
    write_lock(tmp_path, {"a": "same", "b": "same", "c": "changed"})
    assert pt.same_run_code(["a", "c"], tmp_path) is False
    assert pt.training_code(["a", "c"], tmp_path) == "1111111, 3333333"
    assert pt.markdown(["a", "b", "c"], tmp_path).startswith("**Warning: results/ was made by 3 different commits")
    assert pt.same_run_code(["a", "not_in_the_lock"], tmp_path) is None
    (tmp_path / "dvc.lock").unlink()
    assert pt.same_run_code(["a", "b"], tmp_path) is None


def test_a_dirty_run_names_its_changed_files(tmp_path):
    base = provenance("cpu", tmp_path)
    base.update(commit="a" * 40, dirty=True, dirty_files=["repro.log"], lock_sha256="b" * 64, lock_mismatches=0)
    write(tmp_path, "a", base, base)
    text = pt.markdown(["a"], tmp_path)
    assert "| 1: a | aaaaaaaaaaaa (dirty: repro.log) |" in text
    assert "Trained at aaaaaaaaaaaa (dirty: repro.log) (1 run)." in text
