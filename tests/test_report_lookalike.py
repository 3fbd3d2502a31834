"""The run page (rog.report.runs), the drawn detections (rog.report.detections) and the look-alike page
(rog.report.lookalike), from hand-built results files with known numbers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from rog.report import detections, lookalike, prose, runs

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = {"1": {"name": "latin_capital_letter_v", "glyph": "V", "frequency": "r"},
              "2": {"name": "latin_small_letter_v", "glyph": "v", "frequency": "f"},
              "3": {"name": "latin_capital_letter_c", "glyph": "C", "frequency": "c"}}


def sample(scores=(0.9, 0.2), image_root="images") -> dict:
    image = {"id": 5, "file_name": "val/5.png", "height": 20, "width": 30,
             "ground_truth": [{"category_id": 1, "bbox": [1, 1, 8, 8]}, {"category_id": 2, "bbox": [12, 1, 8, 8]}],
             "detections": [{"category_id": 2, "bbox": [1, 1, 8, 8], "score": scores[0]},
                            {"category_id": 1, "bbox": [1, 1, 8, 8], "score": scores[1]}]}
    return {"rule": "by hand", "image_root": image_root, "categories": CATEGORIES,
            "images": [image, dict(image, id=6, file_name="val/6.png")]}


def analysis(correct: int, lookalike_f: int, other_c: int, missed: int, covered: int) -> dict:
    n = correct + lookalike_f + other_c + missed
    return {"rule": "best match by hand", "lookalike_definition": "v looks like V", "iou_threshold": 0.5,
            "max_dets": 300, "num_images": 1,
            "counts": {"instances": n, "correct": correct, "lookalike": {"r": 0, "c": 0, "f": lookalike_f},
                       "other": {"r": 0, "c": other_c, "f": 0}, "missed": missed, "covered": covered},
            "rare_categories": [{"id": 1, "name": "latin_capital_letter_v", "glyph": "V", "instances": n,
                                 "lookalikes": [[2, 0.66]]}],
            "confusion": {"1": {k: v for k, v in (("1", correct), ("2", lookalike_f), ("3", other_c),
                                                  ("missed", missed)) if v}},
            "categories": CATEGORIES}


def write_run(root: Path, name: str, **files) -> None:
    folder = root / "results" / "experiments" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, content in files.items():
        (folder / f"{file}.json").write_text(json.dumps(content))


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    folder = tmp_path / "images" / "val"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(folder / "5.png")  # 6.png is missing
    return tmp_path


def _patches(ax) -> int:
    return sum(isinstance(p, Rectangle) for p in ax.patches)


def test_comparison_figure_draws_ground_truth_beside_each_model(project):
    fig = detections.comparison_figure({"CE": sample(), "CE + GAP": sample((0.4, 0.95))}, project, min_score=0.3)
    axes = fig.axes
    assert len(axes) == 2 * 3  # two images x (ground truth, CE, CE + GAP)
    # CE's 0.2 is below min_score, but of a rare class: drawn, dashed (the low-score rare detections matter)
    assert [_patches(ax) for ax in axes] == [2, 2, 2, 2, 2, 2]
    assert [p.get_linestyle() for p in axes[1].patches if isinstance(p, Rectangle)] == ["-", "--"]
    assert len(axes[0].images) == 1 and not axes[3].images  # image 6 is missing: a message, no pixels
    message = " ".join(t.get_text() for t in axes[3].texts).replace("\n", "")  # a long path is broken in lines
    assert "image not found" in message and str(project / "images" / "val" / "6.png") in message
    labels = {t.get_text() for t in axes[2].texts}
    assert labels == {"v 0.40", "V 0.95"}
    assert len(detections.detections_figure(sample(), "CE", project).axes) == 4
    with pytest.raises(ValueError, match="different images"):
        other = sample()
        other["images"] = other["images"][:1]
        detections.comparison_figure({"a": sample(), "b": other}, project)


def test_smooth_is_a_centred_moving_average_shortened_at_the_ends():
    assert runs.smooth([0, 3, 6, 9, 12], 3).tolist() == [1.5, 3.0, 6.0, 9.0, 10.5]
    assert runs.smooth([1.0, 2.0], 1).tolist() == [1.0, 2.0]


def test_losses_figure_has_one_panel_per_term_and_the_learning_rate():
    losses = {"iteration": [1, 2, 3], "lr": [0.1, 0.2, 0.2], "loss": [3, 2, 1], "loss_cls": [2, 1, 0.5],
              "loss_gap": [0.0, 0.1, 0.1]}
    fig = runs.losses_figure(losses, "x")
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == ["loss", "loss_cls", "loss_gap", "learning rate"]
    assert [len(ax.lines) for ax in shown] == [2, 2, 2, 1]  # raw and smoothed; the LR once
    assert shown[0].get_yscale() == "log" and shown[2].get_yscale() == "linear"  # a zero: no log scale


def test_a_log_loss_panel_spanning_under_a_decade_labels_its_ticks():
    losses = {"iteration": [1, 2, 3, 4], "loss_mask": [0.7, 0.5, 0.35, 0.25]}  # like a real mask loss
    fig = runs.losses_figure(losses, "x")
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text() and low <= t.get_position()[1] <= high]
    assert ax.get_yscale() == "log" and len(labels) >= 2, labels  # the default log axis labels none here
    assert "0.5" in labels  # plain numbers, not 5 x 10^-1


def test_metrics_tables_with_the_k_sweep_and_the_frequency_groups():
    entry = lambda ap: {"metrics": {"AP": ap, "APr": 0.1, "APc": 0.2, "APf": -1.0}}  # noqa: E731
    metrics = {"bbox": {"max_dets_sweep": {"100": {**entry(0.3), "saturated": False},
                                           "300": {**entry(0.35), "saturated": True}},
                        "frequency_groups": [{"group": 1, "train_image_count_range": [1, 7], "num_categories": 18,
                                              "num_with_gt": 17, "AP": 0.25}]},
               "segm": {"frequency_groups": [{"group": 1, "AP": 0.05}]}}
    sweep = runs.sweep_markdown(metrics)
    assert "| 100 | 30.0 | 10.0 | 20.0 | - |  |" in sweep and "| 300 | 35.0 | 10.0 | 20.0 | - | box |" in sweep
    # masks saturate at 300 while boxes do not: the column names the type, not "yes" for the whole row
    metrics["segm"]["max_dets_sweep"] = {"300": {**entry(0.2), "saturated": True}}
    assert "| 300 | 35.0 | 10.0 | 20.0 | - | 20.0 | 10.0 | 20.0 | - | box, mask |" in runs.sweep_markdown(metrics)
    metrics["bbox"]["max_dets_sweep"]["300"]["saturated"] = False
    assert "| 300 | 35.0 | 10.0 | 20.0 | - | 20.0 | 10.0 | 20.0 | - | mask |" in runs.sweep_markdown(metrics)
    assert "| 1 | 1-7 | 18 (17) | 25.0 | 5.0 |" in runs.groups_markdown(metrics)
    assert "No frequency groups" in runs.groups_markdown({"protocol": {}})


def test_run_page_before_and_after_the_rerun(project):
    metrics = {"bbox": {"metrics": dict.fromkeys(runs.METRICS, 0.5)}, "run": {"profile": "smoke"}}
    write_run(project, "sigmoid_ce", metrics=metrics)
    parts = runs.render("sigmoid_ce", project)
    assert not [p for p in parts if isinstance(p, Figure)]
    text = "\n".join(parts)
    for file in ("losses.json", "lookalike.json", "detections.json"):
        assert prose.say("run_page.rerun", file=file) in text
    assert "- Trained: no provenance recorded" in text and "- Cost" not in text
    made = {"commit": "0123456789abcdef", "dirty": True, "python": "3.11.7", "torch": "2.14.1", "torchvision": "0.29.1",
            "device": "cpu", "device_name": "Xeon", "torch_threads": 1, "processes": 1, "lock_mismatches": 2}
    metrics.update(train_provenance=made, provenance={**made, "dirty": False, "lock_mismatches": 0},
                   checkpoint={"iteration": 1200, "params_hash": "5f573e899996fad6"})
    metrics["run"].update(train_seconds=600.0, eval_seconds=210.0, iterations=1200, jobs=2)
    write_run(project, "sigmoid_ce", metrics=metrics)
    text = "\n".join(runs.render("sigmoid_ce", project))
    assert ("- Trained at commit 0123456789ab (dirty), python 3.11.7, torch 2.14.1, torchvision 0.29.1, cpu (Xeon), "
            "1 thread(s) x 1 process(es); 2 packages differ from requirements.lock.") in text
    assert "- Evaluated at commit 0123456789ab, python" in text and "0.50 s/iteration), evaluation 210 s; 2 runs" in text
    assert "params hash 5f573e899996fad6" in text
    write_run(project, "sigmoid_ce", metrics=metrics, detections=sample(),
              losses={"iteration": [1, 2], "lr": [0.1, 0.1], "loss": [2.0, 1.0]},
              lookalike=analysis(correct=1, lookalike_f=2, other_c=0, missed=1, covered=3))
    parts = runs.render("sigmoid_ce", project)
    figures = [p for p in parts if isinstance(p, Figure)]
    assert len(figures) == 2 and len(figures[1].axes) == 4  # losses; two images x (GT, predictions)
    text = "\n".join(p for p in parts if isinstance(p, str))
    assert "| its own class | 25.0 % |" in text and "| a frequent look-alike (f) | 50.0 % |" in text


def test_run_page_names_the_ranking_term_of_new_and_old_records():
    assert runs.ranking_name({"ranking": {"name": "rs_loss", "weight": 1.0, "params": {}}}) == "rs_loss"
    assert runs.ranking_name({"ranking": {"name": None, "weight": 1.0, "params": {}}}) == "none"
    old = {"enabled": True, "loss": "ap_loss", "loss_weight": 1.0, "delta": 1.0}  # recorded before model.ranking
    assert runs.ranking_name({"gap": old}) == "ap_loss" and runs.ranking_name({"gap": dict(old, enabled=False)}) == "none"
    assert runs.ranking_name({}) == "none"


def test_lookalike_page_says_so_when_no_run_has_the_analysis(project):
    page = lookalike.render(project)
    assert "these results have none" in page.markdown() and not page.figures
    assert lookalike.answer(project) is None


def test_lookalike_page_pools_the_seeds_of_each_model(project):
    # sigmoid CE seeds: own class 0/4 and 1/4; + GAP: 2/4 and 4/4
    for name, a in (("sigmoid_ce", analysis(0, 3, 1, 0, 2)), ("sigmoid_ce_seed1", analysis(1, 2, 0, 1, 3)),
                    ("sigmoid_ce_seed2", None), ("sigmoid_ce_gap", analysis(2, 1, 1, 0, 4)),
                    ("sigmoid_ce_gap_seed1", analysis(4, 0, 0, 0, 4))):
        if a is not None:
            write_run(project, name, lookalike=a, detections=sample())
    page = lookalike.render(project)
    text = page.markdown()
    # means over the seeds there are, sample sd: CE own class 12.5 ± 17.7, GAP 75.0 ± 35.4, +62.5
    assert "| its own class | 12.5 ± 17.7 | 75.0 ± 35.4 | +62.5 |" in text
    assert "| a frequent look-alike (f) | 62.5 ± 17.7 | 12.5 ± 17.7 | -50.0 |" in text
    assert "sigmoid CE (2 seeds)" in text and "| rare objects per seed | 4 | 4 |  |" in text
    # pooled confusion of the rare row V: CE own 1 of 8, most often v (5 of 8); GAP own 6 of 8
    assert "| `V` | `v` | 4 | 12 % | `v` (62 %) | 75 % | `V` (75 %) |" in text
    assert set(page.figures) == {"lookalike", "lookalike_detections"}
    assert len(page.figures["lookalike_detections"].axes) == 2 * 3
    sentence = lookalike.verdict(lookalike.load_pair(project))
    # own class: CE 0 and 25 %, GAP 50 and 100 %: pooled sd sqrt((312.5 + 1250) / 2) = 27.95, x sqrt(1/2 + 1/2)
    assert "own class first on 75.0 % (sigmoid CE: 12.5 %; +62.5, beyond 2 x noise = 55.9)" in sentence
    # the overview's record: seed-mean shares; CE's best matches are look-alikes (62.5 %) more than other
    # classes (12.5 %), so look-alikes do take the first place here
    found = lookalike.answer(project)
    assert found["labels"] == ("sigmoid CE", "sigmoid CE + GAP") and found["answer"] == "yes"
    assert found["shares"]["sigmoid CE"]["correct"] == 12.5 and found["shares"]["sigmoid CE + GAP"]["correct"] == 75.0
    assert found["shares"]["sigmoid CE"]["lookalike"] == 62.5 and found["shares"]["sigmoid CE"]["other"] == 12.5
    assert lookalike.judged_difference([10.0], [20.0]) == "+10.0, one seed each: noise unknown"
    assert lookalike.judged_difference([10.0, 10.0], [10.1, 10.1]) == "+0.1, within 2 x noise = 0.2"  # sd floor 0.1
    page.write(project)
    assert (project / "results" / "figures" / "lookalike.png").stat().st_size > 1000
    assert "![lookalike](../figures/lookalike.png)" in (project / "results" / "tables" / "lookalike.md").read_text()
