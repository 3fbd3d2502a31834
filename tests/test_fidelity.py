"""Fidelity: the steeper tail (thin_text), RFS's threshold transposed to our training images, the fidelity
table's statistics (our column on the smoke dataset, checked against counts made here), `rog report fidelity`."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rog.cli import main
from rog.config import resolve_run
from rog.data.fidelity import data_statistics, exposure
from rog.data.glyphs import generate, thin_text
from rog.data.sampler import LVIS_V1_TRAIN_IMAGES, category_repeat_factors, scaled_threshold
from rog.pipeline import freshness
from rog.report import fidelity

ROOT = Path(__file__).resolve().parents[1]


def test_thinning_raises_frequencies_to_the_exponent():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcd"), size=200_000, p=[0.5, 0.3, 0.15, 0.05]))
    text = " ".join(text[i:i + 7] for i in range(0, len(text), 7))
    assert thin_text(text, 1.0, seed=0) == text
    thinned = thin_text(text, 2.0, seed=0)
    assert thinned == thin_text(text, 2.0, seed=0) and thinned != thin_text(text, 2.0, seed=1)
    before, after = Counter(text), Counter(thinned)
    assert after[" "] == before[" "]  # spaces stay
    # kept with probability (n / n_max): counts go as n^2 / n_max
    for ch in "abcd":
        expected = before[ch] ** 2 / before["a"]
        assert abs(after[ch] - expected) < 5 * math.sqrt(expected) + 1, (ch, after[ch], expected)
    assert after["a"] == before["a"]


def test_exponent_below_one_is_refused():
    from rog.data.glyphs import GlyphParamsError, check_params

    params = resolve_run(ROOT / "params.yaml", "smoke")["dataset"]["glyphs"]
    with pytest.raises(GlyphParamsError, match="frequency_exponent: must be >= 1"):
        check_params(dict(params, frequency_exponent=0.5))


def test_scaled_threshold_keeps_lvis_repeat_factors():
    assert scaled_threshold(0.001, None, 3000) == 0.001
    assert scaled_threshold(0.001, LVIS_V1_TRAIN_IMAGES, LVIS_V1_TRAIN_IMAGES) == pytest.approx(0.001)
    t = scaled_threshold(0.001, 99_388, 3000)
    assert t == pytest.approx(0.033129, rel=1e-4)
    # a category in k of our images gets the factor of a category in k of LVIS's images at t = 0.001: rare
    # (1-10 images) spans LVIS's 3.2-10 here as there
    ours = category_repeat_factors([[0]] * 2 + [[1]] * 2998, t)[0]
    lvis = math.sqrt(0.001 / (2 / 99_388))
    assert ours == pytest.approx(lvis)
    with pytest.raises(ValueError, match="no annotated images"):
        scaled_threshold(0.001, 99_388, 0)


def test_lvis_profiles_keep_the_paper_threshold():
    for profile in ("lvis_r50_1x", "lvis_r101_2x"):
        sampler = resolve_run(ROOT / "params.yaml", profile)["dataset"]["sampler"]
        assert sampler["repeat_threshold"] == 0.001 and sampler["threshold_images"] is None


@pytest.fixture(scope="module")
def default_train(tmp_path_factory) -> dict:
    """The default profile's training set, rendered (about 20 s)."""
    glyphs = resolve_run(ROOT / "params.yaml", "default")["dataset"]["glyphs"]
    out = tmp_path_factory.mktemp("default")
    generate(dict(glyphs, num_val=0, min_val_images=0), out)
    return json.loads((out / "train.json").read_text())


def test_default_rare_repeat_factors_are_lvis_like_with_the_threshold_rog_params_shows(default_train, capsys):
    assert main(["params", "--params", str(ROOT / "params.yaml"), "--profile", "default", "--experiment",
                 "rfs_sigmoid_ce", "--section", "dataset"]) == 0
    note = [line for line in capsys.readouterr().out.splitlines() if line.startswith("# dataset.sampler: t used")]
    shown = float(note[0].rsplit("=", 1)[1])
    labels = {}
    for a in default_train["annotations"]:
        labels.setdefault(a["image_id"], []).append(a["category_id"])
    assert len(labels) == resolve_run(ROOT / "params.yaml", "default")["dataset"]["glyphs"]["num_train"]
    factors = category_repeat_factors(list(labels.values()), shown)
    rare = [factors[c["id"]] for c in default_train["categories"] if c["frequency"] == "r"]
    assert len(rare) >= 20 and min(rare) >= 3.0 and max(rare) <= 10.0 + 1e-6  # LVIS: 3.2-10


def test_data_statistics_against_counts_made_here(default_train):
    stats = data_statistics(default_train)
    instances = Counter(a["category_id"] for a in default_train["annotations"])
    group = {c["id"]: c["frequency"] for c in default_train["categories"]}
    rare = sorted(instances[c] for c in group if group[c] == "r")
    assert stats["instances"] == len(default_train["annotations"]) == sum(instances.values())
    assert stats["categories"] == {g: sum(1 for c in group.values() if c == g) for g in "rcf"}
    assert stats["total_over_median_rare"] == pytest.approx(stats["instances"] / np.median(rare))
    assert stats["rare_instance_share"] == pytest.approx(sum(rare) / stats["instances"])
    images_of = {}
    for a in default_train["annotations"]:
        images_of.setdefault(a["category_id"], set()).add(a["image_id"])
    top = max(images_of, key=lambda c: len(images_of[c]))
    assert stats["top_category_image_share"] == pytest.approx(len(images_of[top]) / stats["train_images"])
    assert stats["max_instances"] == max(instances.values()) and stats["min_instances"] == min(instances.values())


def test_exposure_on_a_hand_made_set():
    # 10 images: category 1 in every image, category 2 (rare) in image 0 only
    train = {"categories": [{"id": 1, "frequency": "f"}, {"id": 2, "frequency": "r"}],
             "annotations": [{"image_id": i, "category_id": 1} for i in range(10)] + [{"image_id": 0, "category_id": 2}]}
    out = exposure(train, iterations=5, batch_size=4, threshold=0.4)  # 20 images drawn: 2 epochs
    assert out["epochs"] == 2.0 and out["rare_image_seen_random"] == 2.0
    factor = math.sqrt(0.4 / 0.1)  # = 2: category 2 in 1 of 10 images
    assert out["rfs_factor_rare"] == [pytest.approx(factor)] * 2
    # an RFS epoch holds 9 + 2 = 11 draws; 20 draws see the rare image 20 / 11 x 2 times
    assert out["rare_image_seen_rfs"] == pytest.approx(20 / 11 * factor)


def test_fidelity_table_on_smoke(tmp_path):
    params_path = ROOT / "params.yaml"
    run_params = resolve_run(params_path, "smoke", "rfs_sigmoid_ce")
    generate(run_params["dataset"]["glyphs"], tmp_path / "data")
    from rog.pipeline.registry import read_params

    table = fidelity.rows(read_params(params_path), run_params, tmp_path / "data", root=tmp_path)
    cells = {r.label: r for r in table}
    train = json.loads((tmp_path / "data" / "train.json").read_text())
    assert cells["training images (annotated)"].ours == f"{len({a['image_id'] for a in train['annotations']}):,}"
    assert cells["categories r / c / f"].lvis == "337 / 461 / 405"
    assert cells["start"].ours == "from scratch"  # the smoke profile; the default starts pretrained
    pretrained_params = resolve_run(params_path, "smoke", "rfs_sigmoid_ce", ["model.weights=some/detector.pt"])
    assert fidelity.our_statistics(pretrained_params, tmp_path / "data")["start"] == "detector pretrained on disjoint glyphs"
    threshold = scaled_threshold(0.001, 99_388, len(train["images"]))
    assert cells["RFS threshold t used"].ours == fidelity.fmt(threshold)
    # no results in tmp_path: our phenomena are '-', the paper's are Table 1's mask APr / APf
    assert cells["sigmoid CE: mask APr / APf"].ours == "-" and cells["sigmoid CE: mask APr / APf"].lvis == "0.03"
    assert cells["RFS sigmoid CE: mask APr / APf"].lvis == "0.43" and cells["EQLv2: mask APr / APf"].lvis == "0.53"
    text = fidelity.markdown(table)
    assert text.count("\n") == len(table) + 5  # header, rule, three section rows
    # a baseline run made with other params than today's: the data rows are not its training set, and it says so
    params = read_params(params_path)
    metrics = tmp_path / "results/experiments/sigmoid_ce/metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"bbox": {"metrics": {"APr": 0.1, "APf": 0.5}}, "run": {"profile": "scratch"},
                                   "checkpoint": {"params_hash": "0" * 16}}))
    freshness.write(params, tmp_path)
    cells = {r.label: r for r in fidelity.rows(params, run_params, tmp_path / "data", root=tmp_path)}
    assert cells["sigmoid CE: box APr / APf"].ours == "0.20"
    assert cells["results/ made with profile"].ours.startswith(
        "scratch; 1 of 1 not made with the params the profile gives now")
    # one whose hash was never recorded is unchecked, not said to differ
    metrics.write_text(json.dumps({"bbox": {"metrics": {"APr": 0.1, "APf": 0.5}}, "run": {"profile": "scratch"}}))
    freshness.write(params, tmp_path)
    made = {r.label: r for r in fidelity.rows(params, run_params, tmp_path / "data", root=tmp_path)}[
        "results/ made with profile"].ours
    assert made.startswith("scratch; 1 of 1 not checked against the params") and "not made with" not in made


def test_cli_fidelity_needs_the_rendered_set(tmp_path, capsys):
    assert main(["report", "fidelity", "--params", str(ROOT / "params.yaml"), "--profile", "smoke",
                 "--dataset-root", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none' / 'train.json'}: no training set" in capsys.readouterr().err


def test_the_fidelity_table_the_dataset_page_writes_is_the_one_the_overview_reads_and_dvc_tracks(tmp_path):
    from rog.pipeline import dvcyaml
    from rog.report import overview

    assert dvcyaml.FIDELITY_TABLE == fidelity.TABLE.as_posix()   # the out of one stage, the dep of the other
    assert fidelity.read_table(tmp_path) is None and overview.fidelity_markdown(tmp_path) is None
    fidelity.write_table("|  | LT-Glyphs | LVIS v1 |\n|---|---|---|\n", tmp_path)
    assert overview.fidelity_markdown(tmp_path).endswith("|  | LT-Glyphs | LVIS v1 |\n|---|---|---|")
