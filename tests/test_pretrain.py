"""Backbone pretraining: classes disjoint from LT-Glyphs' (checked on the rendered shapes), the rendered
set, a short run, loading its backbone.pt into a detector, the errors, the pipeline stage."""
from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import torch

from rog.cli import main
from rog.config import resolve_run
from rog.data import pretrain_glyphs as pg
from rog.data.glyphs import load_fonts
from rog.engine import rundir
from rog.engine.pretrain import pretrain
from rog.models import pretrained
from rog.models.backbones import tiny_body
from rog.models.builder import build_detector
from rog.pipeline import dvcyaml
from rog.pipeline.registry import read_params

PARAMS = resolve_run("params.yaml")
THRESHOLD = PARAMS["pretrain"]["max_similarity"]
# the hand list of well-known homoglyphs of ASCII characters (the shape test must agree with it)
HOMOGLYPHS = "аеорсухАВЕКМНОРСТХΑΒΕΖΗΙΚΜΝΟΡΤΥΧον∙−·ǀ‐–"


@pytest.fixture(scope="module")
def fonts():
    return load_fonts("data", PARAMS["dataset"]["glyphs"]["fonts"])


@pytest.fixture(scope="module")
def chars(fonts):
    return pg.select_chars(fonts, THRESHOLD, PARAMS["pretrain"]["max_classes"])


def test_classes_are_no_lt_glyphs_category_nor_a_homoglyph_of_one(fonts, chars):
    assert 90 <= len(chars) <= 200
    assert not set(chars) & set(pg.ASCII_CATEGORIES + tuple(HOMOGLYPHS))
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
    assert pg.similarity(fonts, list(chars) + ["о"]).max() >= THRESHOLD


def test_threshold_is_below_how_alike_lt_glyphs_categories_are(fonts):
    """The threshold's justification: a class is less like any category than the median category is like
    its nearest other category (so pretraining does not teach more about a category than the others do)."""
    among = pg.similarity(fonts, list(pg.ASCII_CATEGORIES))
    np.fill_diagonal(among, 0.0)
    assert THRESHOLD < np.median(among.max(axis=1))


def test_rendered_set_is_balanced_and_deterministic(fonts):
    style = PARAMS["dataset"]["glyphs"]
    images, labels = pg.render_set(fonts, "ΞЖ╬", 4, 64, style, seed=0, split="train")
    assert images.shape == (12, 3, 64, 64) and images.dtype == torch.uint8
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    again, _ = pg.render_set(fonts, "ΞЖ╬", 4, 64, style, seed=0, split="train")
    assert torch.equal(images, again)
    other, _ = pg.render_set(fonts, "ΞЖ╬", 4, 64, style, seed=1, split="train")
    val, _ = pg.render_set(fonts, "ΞЖ╬", 4, 64, style, seed=0, split="val")
    assert not torch.equal(images, other) and not torch.equal(images, val)
    assert len({bytes(im.numpy()) for im in images}) == 12


def short_params(**pretrain_overrides) -> dict:
    sets = {"max_classes": 4, "images_per_class": 16, "val_images_per_class": 4, "iterations": 30,
            "batch_size": 16, "warmup_iterations": 5, "eval_every": 10, "lr": 0.05, **pretrain_overrides}
    return resolve_run("params.yaml", "smoke", overrides=[f"pretrain.{k}={v}" for k, v in sets.items()])


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    meta = pretrain(short_params(), out, progress=False)
    return out / "backbone.pt", meta


def test_short_pretraining_lowers_the_loss_and_writes_a_loadable_backbone(backbone_file, tmp_path):
    path, meta = backbone_file
    losses = [h["loss"] for h in meta["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    data = pretrained.load(path)
    assert data["arch"] == {"name": "tiny", "widths": [32, 64, 128, 256], "depth": 2}
    assert set(data["body"]) == set(tiny_body().state_dict())
    assert data["body_sha256"] == pretrained.body_digest(data["body"]) == meta["body_sha256"]
    assert data["num_classes"] == 4 and len(data["chars"]) == 4 and 0.0 <= data["val_accuracy"] <= 1.0
    again = pretrain(short_params(), tmp_path, progress=False)  # same params and seed: same weights
    assert again["body_sha256"] == meta["body_sha256"]
    for name in ("backbone.pt", "summary.json"):  # byte-identical files: DVC sees an unchanged output
        assert (tmp_path / name).read_bytes() == (path.parent / name).read_bytes(), name


def detector_params(weights) -> dict:
    return resolve_run("params.yaml", "smoke", overrides=[f"model.backbone.weights={weights}"])


def test_detector_body_is_the_pretrained_one_and_its_identity_changes(backbone_file, tmp_path):
    path, _ = backbone_file
    body = pretrained.load(path)["body"]
    torch.manual_seed(0)
    model = build_detector(detector_params(path)["model"], 5)
    for key, value in model.backbone.body.state_dict().items():
        assert torch.equal(value, body[key]), key
    torch.manual_seed(0)
    scratch = build_detector(detector_params("null")["model"], 5)
    assert not torch.equal(scratch.backbone.body.state_dict()["stem.0.weight"], body["stem.0.weight"])
    assert model.signature["weights_sha256"] == pretrained.weights_digest(path)
    assert scratch.signature["weights_sha256"] is None
    # other weights at the same path: another run (a resumed run refuses them)
    params = detector_params(tmp_path / "backbone.pt")
    pretrained.save(tmp_path / "backbone.pt", tiny_body(), pretrained.load(path)["arch"])
    before = rundir.params_hash(params)
    run_dir = tmp_path / "run"
    rundir.initialise(run_dir, params, {})
    torch.manual_seed(1)
    pretrained.save(tmp_path / "backbone.pt", tiny_body(), pretrained.load(path)["arch"])
    assert rundir.params_hash(params) != before
    with pytest.raises(rundir.RunDirError, match="another experiment"):
        rundir.check(run_dir, params)


def test_a_mismatching_or_missing_file_is_a_clear_error(tmp_path):
    other = pretrained.save(tmp_path / "narrow.pt", tiny_body((16, 32, 64, 128)),
                            {"name": "tiny", "widths": [16, 32, 64, 128], "depth": 2})
    with pytest.raises(pretrained.PretrainedWeightsError, match=f"{other}.*does not match"):
        build_detector(detector_params(other)["model"], 5)
    with pytest.raises(pretrained.PretrainedWeightsError, match="nothere.pt: no such pretrained backbone"):
        build_detector(detector_params(tmp_path / "nothere.pt")["model"], 5)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(pretrained.PretrainedWeightsError, match="junk.pt: not a readable"):
        pretrained.load(tmp_path / "junk.pt")


def test_pretrain_resolves_to_the_pipeline_output():
    assert detector_params("pretrain")["model"]["backbone"]["weights"] == "out/pipeline/smoke/pretrain/backbone.pt"
    named = resolve_run("params.yaml", "smoke", overrides=["model.backbone.weights=pretrain"], weights="x.pt")
    assert named["model"]["backbone"]["weights"] == "x.pt"


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path), "--set", "pretrain.iterations=0"]) == 2
    assert "pretrain.iterations = 0: expected an integer >= 1" in capsys.readouterr().err  # rog/schema.py
    assert main(["pretrain", "--out", str(tmp_path), "--set", "dataset.glyphs.fonts=[Nope.ttf]"]) == 2
    assert "Nope.ttf: font missing" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path), "--set", "pretrain.nope=1"]) == 2
    assert "unknown parameter 'pretrain.nope'" in capsys.readouterr().err


def test_experiments_depend_on_the_pretrain_stage_only_when_they_use_it():
    params = read_params("params.yaml")
    stages = dvcyaml.stages(params)
    assert "pretrain" not in stages  # no run reads it: not made (it costs minutes)
    assert dvcyaml.PRETRAIN not in stages["experiment"]["do"]["deps"]
    params["profiles"][params["profile"]]["model"] = {"backbone": {"weights": "pretrain"}}
    stages = dvcyaml.stages(params)
    assert stages["pretrain"]["outs"] == [dvcyaml.PRETRAIN]
    assert dvcyaml.PRETRAIN in stages["experiment"]["do"]["deps"]
    assert dvcyaml.PRETRAIN in stages["posthoc"]["do"]["deps"]
    assert dvcyaml.PRETRAIN == pretrained.PRETRAIN_DIR.format(profile="${profile}")
