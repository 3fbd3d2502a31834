"""Detector pretraining: classes disjoint from LT-Glyphs' (checked on the rendered shapes), the balanced text,
a short run, starting a detector from its detector.pt, the errors, the pipeline stage."""
from __future__ import annotations

import json
import unicodedata
from collections import Counter

import numpy as np
import pytest
import torch

from rog.cli import main
from rog.config import resolve_run
from rog.data import pretrain_glyphs as pg
from rog.data.glyphs import load_fonts
from rog.engine import rundir
from rog.engine.pretrain import pretrain, work_dir
from rog.models import pretrained
from rog.models.builder import build_detector
from rog.pipeline import dvcyaml
from rog.pipeline.registry import read_params

PARAMS = resolve_run("params.yaml")
THRESHOLD = PARAMS["pretrain"]["max_similarity"]
# the hand list of well-known homoglyphs of ASCII characters (the shape test must agree with it)
HOMOGLYPHS = "аеорсухАВЕКМНОРСТХΑΒΕΖΗΙΚΜΝΟΡΤΥΧον∙−·ǀ‐–"
# look-alikes that a looser threshold (0.7) admitted: x/×, m/ω, C/€, @/© (a rare category), A/Д
LOOK_ALIKES = "×ω€©Д"


@pytest.fixture(scope="module")
def fonts():
    return load_fonts("data", PARAMS["dataset"]["glyphs"]["fonts"])


@pytest.fixture(scope="module")
def chars(fonts):
    return pg.select_chars(fonts, THRESHOLD, PARAMS["pretrain"]["max_classes"])


def test_classes_are_no_lt_glyphs_category_nor_a_homoglyph_of_one(fonts, chars):
    assert 40 <= len(chars) <= 200
    assert not set(chars) & set(pg.ASCII_CATEGORIES + tuple(HOMOGLYPHS) + tuple(LOOK_ALIKES))
    for c in chars:  # every font draws it (no .notdef box)
        assert all(c in pg.font_chars(p) for p in fonts.paths)
        assert not unicodedata.name(c).startswith("LATIN")
    # per font, each class against each ASCII character at the same font size, masks aligned by bounding box
    similarity = pg.similarity(fonts, list(chars))
    assert similarity.shape == (len(chars), len(pg.ASCII_CATEGORIES))
    assert similarity.max() < THRESHOLD
    # the check catches planted homoglyphs (Cyrillic о, Greek Ο, minus, middle dot): IoU near 1
    planted = pg.similarity(fonts, list("оΟа−·"))
    assert (planted.max(axis=1) >= 0.9).all()
    # and the look-alikes stand above the threshold, each against the character it resembles
    alike = pg.similarity(fonts, list(LOOK_ALIKES), list("xmC@A"))
    assert (np.diag(alike) >= THRESHOLD).all(), np.diag(alike)


def test_threshold_is_below_how_alike_lt_glyphs_categories_are(fonts):
    """The threshold's justification: a class is less like any category than the median category is like
    its nearest other category (so pretraining does not teach more about a category than the others do)."""
    among = pg.similarity(fonts, list(pg.ASCII_CATEGORIES))
    np.fill_diagonal(among, 0.0)
    assert THRESHOLD < np.median(among.max(axis=1))


def test_balanced_text_is_balanced_and_deterministic():
    text = pg.balanced_text("ΞЖ╬", 30_000, seed=0)
    assert len(text) == 30_000 and set(text) == set("ΞЖ╬ ")
    counts = Counter(text.replace(" ", ""))
    assert max(counts.values()) / min(counts.values()) < 1.05  # uniform: sampling noise only
    words = text.split(" ")
    assert all(2 <= len(w) <= 8 for w in words[:-1])
    assert pg.balanced_text("ΞЖ╬", 30_000, seed=0) == text
    assert pg.balanced_text("ΞЖ╬", 30_000, seed=1) != text


def short_params(**pretrain_overrides) -> dict:
    sets = {"max_classes": 4, "num_train": 24, "text_length": 3000, "iterations": 12, "lr": 0.02,
            **pretrain_overrides}
    return resolve_run("params.yaml", "smoke", overrides=[f"pretrain.{k}={v}" for k, v in sets.items()])


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "pretrain"
    meta = pretrain(short_params(), out, progress=False)
    return out / pretrained.WEIGHTS_FILE, meta


def test_short_pretraining_writes_a_detector_of_the_pretraining_classes(detector_file, tmp_path):
    path, meta = detector_file
    data = pretrained.load(path)
    assert data["num_classes"] == 4 == len(data["chars"]) and not set(data["chars"]) & set(pg.ASCII_CATEGORIES)
    assert data["sha256"] == pretrained.state_digest(data["state"]) == meta["sha256"]
    # the profile's model with 4 classes: cls_score [4, D], box regression [4 x 4, D], mask logits [4, ...]
    assert data["state"]["roi_heads.box_predictor.bbox_pred.weight"].shape[0] == 16
    assert data["state"]["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape[0] == 4
    train = json.loads((work_dir(path.parent) / "data" / "train.json").read_text())
    assert sorted(c["glyph"] for c in train["categories"]) == sorted(data["chars"])
    assert meta["final_losses"]["loss"] > 0
    again = pretrain(short_params(), tmp_path / "pretrain", progress=False)  # same params and seed: same weights
    assert again["sha256"] == meta["sha256"]
    for name in (pretrained.WEIGHTS_FILE, "summary.json"):  # byte-identical files: DVC sees an unchanged output
        assert (tmp_path / "pretrain" / name).read_bytes() == (path.parent / name).read_bytes(), name


def detector_params(weights) -> dict:
    return resolve_run("params.yaml", "smoke", overrides=[f"model.weights={weights}"])


def test_detector_starts_from_the_pretrained_one_but_its_classifier(detector_file, tmp_path):
    path, _ = detector_file
    source = pretrained.load(path)["state"]
    torch.manual_seed(0)
    model = build_detector(detector_params(path)["model"], 5)
    state = model.state_dict()
    copied = [k for k in state if k in source and not k.startswith(pretrained.CLASSIFIER_PREFIX)
              and k not in pretrained.PER_CLASS]
    assert len(copied) > 50
    for key in copied:
        assert torch.equal(state[key], source[key]), key
    # class-specific layers: every new class starts from the pretrained classes' mean
    box = source["roi_heads.box_predictor.bbox_pred.weight"].reshape(4, 4, -1).mean(0)
    assert torch.allclose(state["roi_heads.box_predictor.bbox_pred.weight"].reshape(5, 4, -1), box.expand(5, 4, -1))
    mask = source["roi_heads.mask_predictor.mask_fcn_logits.bias"].mean()
    assert torch.allclose(state["roi_heads.mask_predictor.mask_fcn_logits.bias"], mask.expand(5))
    # the classifier is the objective's own initialisation (sigmoid prior bias -log(99)), not copied
    torch.manual_seed(0)
    scratch = build_detector(detector_params("null")["model"], 5)
    for key in (k for k in state if k.startswith(pretrained.CLASSIFIER_PREFIX)):
        assert torch.equal(state[key], scratch.state_dict()[key]), key
    assert model.signature["weights_sha256"] == pretrained.weights_digest(path)
    assert scratch.signature["weights_sha256"] is None


def test_other_weights_at_the_same_path_are_another_run(detector_file, tmp_path):
    path, _ = detector_file
    state = pretrained.load(path)["state"]
    target = tmp_path / "detector.pt"
    pretrained.save(target, state)
    params = detector_params(target)
    before = rundir.params_hash(params)
    # the same detector elsewhere is the same run: the hash holds its digest, not its path
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "d.pt").write_bytes(target.read_bytes())
    assert rundir.params_hash(detector_params(tmp_path / "elsewhere" / "d.pt")) == before
    run_dir = tmp_path / "run"
    rundir.initialise(run_dir, params, {})
    pretrained.save(target, {k: v + 1 if v.is_floating_point() else v for k, v in state.items()})
    assert rundir.params_hash(params) != before
    with pytest.raises(rundir.RunDirError, match="another experiment"):
        rundir.check(run_dir, params)


def test_a_mismatching_or_missing_file_is_a_clear_error(detector_file, tmp_path):
    path, _ = detector_file
    wide = resolve_run("params.yaml", "smoke", overrides=[f"model.weights={path}", "model.roi.representation_size=256"])
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{path}: roi_heads.box_head.fc6.weight is"):
        build_detector(wide["model"], 5)
    with pytest.raises(pretrained.PretrainedWeightsError, match="nothere.pt: no such pretrained detector"):
        build_detector(detector_params(tmp_path / "nothere.pt")["model"], 5)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(pretrained.PretrainedWeightsError, match="junk.pt: not a readable"):
        pretrained.load(tmp_path / "junk.pt")


def test_pretrain_resolves_to_the_pipeline_output():
    assert detector_params("pretrain")["model"]["weights"] == "out/pipeline/smoke/pretrain/detector.pt"
    named = resolve_run("params.yaml", "smoke", overrides=["model.weights=pretrain"], weights="x.pt")
    assert named["model"]["weights"] == "x.pt"


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path), "--set", "pretrain.iterations=0"]) == 2
    assert "pretrain.iterations = 0: expected an integer >= 1" in capsys.readouterr().err  # rog/schema.py
    assert main(["pretrain", "--out", str(tmp_path), "--set", "dataset.glyphs.fonts=[Nope.ttf]"]) == 2
    assert "Nope.ttf: font missing" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path), "--set", "pretrain.nope=1"]) == 2
    assert "unknown parameter 'pretrain.nope'" in capsys.readouterr().err


def test_experiments_depend_on_the_pretrain_stage_only_when_they_use_it():
    params = read_params("params.yaml")
    params["profiles"][params["profile"]]["model"] = {"weights": None}
    stages = dvcyaml.stages(params)
    assert "pretrain" not in stages  # no run reads it: not made (it costs minutes)
    assert dvcyaml.PRETRAIN not in stages["experiment"]["do"]["deps"]
    params["profiles"][params["profile"]]["model"] = {"weights": "pretrain"}
    stages = dvcyaml.stages(params)
    assert stages["pretrain"]["outs"] == [dvcyaml.PRETRAIN]
    assert dvcyaml.PRETRAIN in stages["experiment"]["do"]["deps"]
    assert dvcyaml.PRETRAIN in stages["posthoc"]["do"]["deps"]
    assert dvcyaml.PRETRAIN == pretrained.PRETRAIN_DIR.format(profile="${profile}")


def test_the_start_does_not_follow_the_experiments_glyph_density():
    """A regime with sparser images (dataset.glyphs.snippets / snippet_chars) keeps the pretraining's own layout,
    so every regime of the fidelity ladder starts from the same detector."""
    from rog.engine.pretrain import run_params

    sparse = resolve_run("params.yaml", "default", overrides=["dataset.glyphs.snippets=[1,2]",
                                                               "dataset.glyphs.snippet_chars=[2,6]",
                                                               "dataset.glyphs.frequency_exponent=1.3"])
    dense = resolve_run("params.yaml", "default")
    for params in (sparse, dense):
        glyphs = run_params(params, "x")["dataset"]["glyphs"]
        assert glyphs["snippets"] == params["pretrain"]["snippets"] == [1, 3]
        assert glyphs["snippet_chars"] == [3, 10] and glyphs["frequency_exponent"] == 1.0
    assert run_params(sparse, "x")["dataset"]["glyphs"] == run_params(dense, "x")["dataset"]["glyphs"]
