"""The parameter schema (rog/schema.py): every default key typed, every registry entry valid, bad values named."""
from __future__ import annotations

import pytest

from rog import schema
from rog.engine import registries
from rog.config import ParamsError, read_yaml, resolve_run

PARAMS = read_yaml("params.yaml")
SECTIONS = ("dataset", "model", "train", "evaluate", "pretrain", "schedule", "profile")


def leaves(node, prefix: str = "") -> list[str]:
    """Dotted keys of the values of a params tree (an empty or open mapping counts as a value)."""
    if not isinstance(node, dict) or not node:
        return [prefix]
    return [key for k, v in node.items() for key in leaves(v, f"{prefix}.{k}" if prefix else k)]


def test_every_default_key_has_a_rule_and_every_rule_a_key():
    keys = [key for section in SECTIONS for key in leaves({section: PARAMS[section]})]
    assert sorted(keys) == sorted(schema.SCHEMA)


@pytest.mark.parametrize("profile", [None, *PARAMS["profiles"]])
def test_every_profile_and_experiment_is_valid(profile):
    for experiment in [None, *PARAMS["experiments"]]:
        resolved = resolve_run(PARAMS, profile, experiment)
        assert registries.problems(resolved) == []


def test_fixed_lists_agree_with_the_code_and_registries_are_read_from_it():
    from rog.evaluation.lvis_eval import BACKENDS
    from rog.losses.objectives import OBJECTIVES

    assert all(schema.SCHEMA["evaluate.backend"].ok(name) for name in BACKENDS)
    bound = schema.rules(registries.REGISTRIES)["model.objective.name"]
    assert all(bound.ok(name) for name in OBJECTIVES) and not bound.ok("nonsense")
    assert bound.allowed == "one of " + ", ".join(OBJECTIVES)
    # every registry rule of the schema names a registry that rog.engine.registries binds
    kinds = {rule.kind for rule in schema.SCHEMA.values() if isinstance(rule, schema.Registered)}
    assert kinds == set(registries.REGISTRIES)


@pytest.mark.parametrize("override, named", [
    ("train.iterations=-3", "train.iterations = -3: expected an integer >= 1"),
    ("train.iterations=abc", "train.iterations = 'abc': expected an integer >= 1"),
    ("train.iterations=2.5", "train.iterations = 2.5"),
    ("train.checkpoint_every=0", "train.checkpoint_every = 0"),
    ("train.batch_size=0", "train.batch_size = 0"),
    ("train.threads=0", "train.threads = 0"),
    ("train.lr=.nan", "train.lr = nan: expected a finite number > 0"),
    ("train.lr_steps=[0.5,1.5]", "train.lr_steps = [0.5, 1.5]"),
    ("train.grad_clip=-1", "train.grad_clip = -1: expected null or"),
    ("train.device=tpu", "train.device = 'tpu': expected one of auto, cpu, cuda"),
    ("model.ranking.name=focal", "model.ranking.name = 'focal': expected null or one of gap, ap_loss, rs_loss"),
    ("model.ranking.name=1", "model.ranking.name = 1: expected null or a name of the ranking_terms registry"),
    ("model.ranking.weight=-1", "model.ranking.weight = -1: expected a finite number >= 0"),
    ("model.ranking={name: gap, params: {delta: abc}}", "model.ranking.params.delta = 'abc': gap: option delta must be"),
    ("model.ranking={name: gap, params: {gamma: .inf}}", "model.ranking.params.gamma = inf"),
    ("model.ranking={name: gap, params: {exclude_fg: 1}}", "model.ranking.params.exclude_fg = 1: gap: option exclude_fg must be true or false"),
    ("model.ranking={name: ap_loss, params: {weighting: none}}", "model.ranking.params.weighting = 'none': ap_loss has no option 'weighting'; valid: delta"),
    ("model.objective.params={nonsense: 1}", "model.objective.params.nonsense = 1: sigmoid_ce has no option 'nonsense'"),
    ("dataset.name=coco", "dataset.name = 'coco': expected one of lt_glyphs, lvis, openimages"),
    ("model.roi.positive_fraction=1.5", "model.roi.positive_fraction = 1.5: expected a finite number in (0, 1]"),
    ("model.roi.mask_features=stride8", "model.roi.mask_features = 'stride8': expected one of fpn, stride4, stride2"),
    ("model.objective.name=focal", "model.objective.name = 'focal': expected one of sigmoid_ce"),
    ("model.backbone.name=vgg", "model.backbone.name = 'vgg': expected one of tiny"),
    ("model.backbone.widths=[8,16]", "model.backbone.widths = [8, 16]: expected a list of 4 items"),
    ("model.test.nms_thresh=2", "model.test.nms_thresh = 2"),
    ("dataset.sampler.kind=balanced", "dataset.sampler.kind = 'balanced': expected one of random, repeat_factor"),
    ("dataset.glyphs.glyph_size=[30,20]", "dataset.glyphs.glyph_size = [30, 20]: expected [low, high] with low <= high"),
    ("dataset.glyphs.crowded.fraction=-0.1", "dataset.glyphs.crowded.fraction = -0.1"),
    ("evaluate.max_dets_sweep=[0,10]", "evaluate.max_dets_sweep = [0, 10]"),
    ("pretrain.num_train=0", "pretrain.num_train = 0"),
    ("dataset.glyphs.frequency_exponent=0.5", "dataset.glyphs.frequency_exponent = 0.5: expected a finite number >= 1"),
    ("dataset.sampler.threshold_images=0", "dataset.sampler.threshold_images = 0"),
    ("schedule.length=0", "schedule.length must be > 0"),
])
def test_bad_values_are_refused_naming_key_value_and_rule(override, named):
    """resolve_run checks types and ranges; rog.engine.registries.check_params adds the registry names."""
    with pytest.raises(ParamsError) as err:
        registries.check_params(resolve_run(PARAMS, "smoke", "sigmoid_ce", [override]))
    assert named in str(err.value)


def test_all_problems_are_listed_at_once():
    with pytest.raises(ParamsError) as err:
        resolve_run(PARAMS, "smoke", None, ["train.iterations=0", "evaluate.curve=maybe"])
    assert "train.iterations = 0" in str(err.value) and "evaluate.curve = 'maybe'" in str(err.value)


@pytest.mark.parametrize("override", ["train=5", "model.ranking=true", "model.objective.params=3", "dataset.glyphs=null"])
def test_a_scalar_never_replaces_a_section(override):
    key = override.split("=")[0]
    with pytest.raises(ParamsError, match=f"'{key}' is a section, not a value"):
        resolve_run(PARAMS, "smoke", None, [override])


def test_a_profile_or_experiment_with_a_bad_value_is_named():
    params = dict(PARAMS, experiments={"broken": {"train": {"batch_size": "eight"}}})
    with pytest.raises(ParamsError, match="train.batch_size = 'eight'"):
        resolve_run(params, None, "broken")
    params = dict(PARAMS, profiles={"broken": {"train": 3}})
    with pytest.raises(ParamsError, match="'profiles.broken.train' is a section"):
        resolve_run(params, "broken")


def test_open_sections_accept_any_keys_and_values_are_checked_by_the_objective():
    resolved = resolve_run(PARAMS, "smoke", None, ["model.objective.name=eqlv2", "model.objective.params={gamma: 10}"])
    assert resolved["model"]["objective"]["params"] == {"gamma": 10}
    from rog.losses.objectives import build_objective

    with pytest.raises(ValueError, match="eqlv2: unknown parameter"):
        build_objective("eqlv2", 3, **{"gammma": 10})


def test_missing_keys_are_not_checked_but_a_non_section_on_the_way_is():
    assert schema.problems({"train": {"iterations": 5}}) == []
    with pytest.raises(ParamsError, match="train = 5: expected a section"):
        schema.problems({"train": 5})


def test_exponent_floats_that_pyyaml_reads_as_strings_are_numbers():
    resolved = resolve_run(PARAMS, "smoke", None, ["train.lr=1e-3", "train.lr_steps=[5e-1, 0.9]", "train.grad_clip=1E1"])
    assert resolved["train"]["lr"] == 0.001 and resolved["train"]["lr_steps"] == [0.5, 0.9]
    assert resolved["train"]["grad_clip"] == 10.0
    with pytest.raises(ParamsError, match="train.iterations = '1e3': expected an integer"):
        resolve_run(PARAMS, "smoke", None, ["train.iterations=1e3"])
