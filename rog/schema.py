"""The type and range of every parameter of params.yaml's stage sections, checked once when params resolve.

`SCHEMA` maps a dotted key to a `Rule`; `check_params(params)` raises ParamsError listing every value
that breaks its rule, each with the key, the value and what is allowed::

    train.iterations = -3: expected an integer >= 1

Keys absent from the params are not checked (a checkpoint's params may predate a key); keys of the
defaults without a rule are caught by tests/test_schema.py. Open sections (model.objective.params: any
keys) are only required to be mappings: rog.engine.registries checks their keys and types against the
named objective's or ranking term's options, and its constructor checks their values.
"""
from __future__ import annotations

import copy
import math
import re
from typing import Any, Callable, Iterable, Mapping


class ParamsError(ValueError):
    """params.yaml, a profile, an experiment or an override is invalid."""


class Rule:
    """`ok(value)` says whether a value is allowed; `allowed` says in words what is (a string, or a
    function giving it, for lists read from the code); `coerce(value)` may first turn a value written
    another way into the type (e.g. '1e-3', a string to PyYAML, into 0.001)."""

    def __init__(self, ok: Callable[[Any], bool], allowed: str | Callable[[], str],
                 coerce: Callable[[Any], Any] = lambda v: v):
        self.ok = ok
        self._allowed = allowed
        self.coerce = coerce

    @property
    def allowed(self) -> str:
        return self._allowed() if callable(self._allowed) else self._allowed


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bounds(lo, hi, lo_open: bool, hi_open: bool) -> tuple[Callable[[float], bool], str]:
    def inside(v) -> bool:
        return ((lo is None or (v > lo if lo_open else v >= lo))
                and (hi is None or (v < hi if hi_open else v <= hi)))
    if lo is not None and hi is not None:
        words = f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo is not None:
        words = f" {'>' if lo_open else '>='} {lo}"
    elif hi is not None:
        words = f" {'<' if hi_open else '<='} {hi}"
    else:
        words = ""
    return inside, words


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    inside, words = _bounds(lo, hi, False, False)
    return Rule(lambda v: _is_int(v) and inside(v), f"an integer{words}")


# YAML 1.2 floats that PyYAML (YAML 1.1) reads as strings: 1e-3, 2E+4 (no dot)
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _as_float(v):
    return float(v) if isinstance(v, str) and _EXPONENT_FLOAT.fullmatch(v.strip()) else v


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """A finite int or float within the bounds (open bounds exclude the end); '1e-3' is read as 0.001."""
    inside, words = _bounds(lo, hi, lo_open, hi_open)
    return Rule(lambda v: _is_num(v) and inside(v), f"a finite number{words}", _as_float)


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.ok(v), lambda: f"null or {rule.allowed}", rule.coerce)


def choice(*values: str) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in values, "one of " + ", ".join(values))


class Registered(Rule):
    """A name of a registry of the code (`kind`, e.g. 'objectives'). The registries live above this module
    (rog.losses, rog.models, rog.engine), so their names are passed in by the caller that holds them:
    check_params(params, names={kind: names}) (rog.engine.registries). Without them only a non-empty
    string is required."""

    def __init__(self, kind: str, nullable: bool = False):
        null = "null or " if nullable else ""
        super().__init__(lambda v: (nullable and v is None) or (isinstance(v, str) and bool(v)),
                         f"{null}a name of the {kind} registry")
        self.kind, self.nullable = kind, nullable

    def bind(self, names: Iterable[str]) -> Rule:
        names = tuple(names)
        null = "null or " if self.nullable else ""
        return Rule(lambda v: (self.nullable and v is None) or (isinstance(v, str) and v in names),
                    f"{null}one of " + ", ".join(names))


def choice_from(kind: str, nullable: bool = False) -> Registered:
    """One of the names of the code's registry `kind` (see Registered); nullable: null too (none of them)."""
    return Registered(kind, nullable)


def list_of(item: Rule, length: int | None = None, min_length: int = 0) -> Rule:
    """A list (of `length` items, or at least `min_length`), each allowed by `item`."""
    def ok(v) -> bool:
        return (isinstance(v, list) and len(v) >= min_length and (length is None or len(v) == length)
                and all(item.ok(x) for x in v))
    size = f" of {length} items" if length is not None else " (non-empty)" if min_length else ""
    return Rule(ok, f"a list{size}, each {item.allowed}",
                lambda v: [item.coerce(x) for x in v] if isinstance(v, list) else v)


def span(item: Rule) -> Rule:
    """[low, high], both allowed by `item`, low <= high."""
    return Rule(lambda v: isinstance(v, list) and len(v) == 2 and all(item.ok(x) for x in v) and v[0] <= v[1],
                f"[low, high] with low <= high, each {item.allowed}",
                lambda v: [item.coerce(x) for x in v] if isinstance(v, list) else v)


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
SECTION = Rule(lambda v: isinstance(v, Mapping), "a mapping (its keys are checked by their consumer)")
POSITIVE = integer(1)
COUNT = integer(0)
SEED = integer(0, 2**63 - 1)
PROBABILITY = number(0, 1)
FRACTION = number(0, 1, lo_open=True)          # (0, 1]
RATE = number(0, lo_open=True)                 # > 0
NONNEG = number(0)
MOMENTUM = number(0, 1, hi_open=True)
PIXEL = integer(0, 255)

SCHEMA: dict[str, Rule] = {
    # ---- dataset ----------------------------------------------------------------------------------
    "dataset.name": choice_from("datasets"),
    "dataset.root": TEXT,
    "dataset.train_json": TEXT,
    "dataset.val_json": TEXT,
    "dataset.image_root": TEXT,
    "dataset.cache_images": BOOL,
    "dataset.with_masks": BOOL,
    "dataset.filter_empty_train": BOOL,
    "dataset.min_box_size": NONNEG,
    "dataset.horizontal_flip": BOOL,
    "dataset.resize_min_size": list_of(POSITIVE),
    "dataset.resize_max_size": POSITIVE,
    "dataset.sampler.kind": choice("random", "repeat_factor"),
    "dataset.sampler.repeat_threshold": FRACTION,
    "dataset.sampler.threshold_images": optional(POSITIVE),
    "dataset.glyphs.frequency_exponent": number(1),
    "dataset.sampler.rounding": choice("stochastic", "ceil"),
    "dataset.glyphs.snapshot": TEXT,
    "dataset.glyphs.seed": SEED,
    "dataset.glyphs.num_train": POSITIVE,
    "dataset.glyphs.num_val": COUNT,
    "dataset.glyphs.image_size": integer(16),
    "dataset.glyphs.val_text_fraction": number(0, 1, lo_open=True, hi_open=True),
    "dataset.glyphs.fonts": list_of(TEXT, min_length=1),
    "dataset.glyphs.glyph_size": span(POSITIVE),
    "dataset.glyphs.snippets": span(COUNT),
    "dataset.glyphs.snippet_chars": span(POSITIVE),
    "dataset.glyphs.isolated": span(COUNT),
    "dataset.glyphs.crowded.fraction": PROBABILITY,
    "dataset.glyphs.crowded.glyph_size": span(POSITIVE),
    "dataset.glyphs.crowded.line_gap": COUNT,
    "dataset.glyphs.background.light": span(PIXEL),
    "dataset.glyphs.background.dark": span(PIXEL),
    "dataset.glyphs.background.blotch_fraction": PROBABILITY,
    "dataset.glyphs.background.blotch_amplitude": NONNEG,
    "dataset.glyphs.background.noise_fraction": PROBABILITY,
    "dataset.glyphs.background.noise_sigma": span(NONNEG),
    "dataset.glyphs.background.distractor_contrast": span(PIXEL),
    "dataset.glyphs.distractors": span(COUNT),
    "dataset.glyphs.text_colour_contrast": PIXEL,
    "dataset.glyphs.min_glyph_pixels": COUNT,
    "dataset.glyphs.min_val_images": COUNT,
    "dataset.glyphs.png_compress_level": integer(0, 9),
    # ---- model --------------------------------------------------------------------------------------
    "model.arch": choice_from("archs"),
    "model.backbone.name": choice_from("backbones"),
    "model.backbone.widths": list_of(POSITIVE, length=4),
    "model.backbone.depth": POSITIVE,
    "model.backbone.fpn_channels": POSITIVE,
    "model.backbone.pretrained": BOOL,
    "model.backbone.trainable_layers": integer(0, 5),
    "model.weights": optional(TEXT),
    "model.min_size": POSITIVE,
    "model.max_size": POSITIVE,
    "model.image_mean": list_of(number(0, 1), length=3),
    "model.image_std": list_of(RATE, length=3),
    "model.anchor_sizes": list_of(POSITIVE, min_length=1),
    "model.aspect_ratios": list_of(RATE, min_length=1),
    "model.rpn.pre_nms_top_n_train": POSITIVE,
    "model.rpn.post_nms_top_n_train": POSITIVE,
    "model.rpn.pre_nms_top_n_test": POSITIVE,
    "model.rpn.post_nms_top_n_test": POSITIVE,
    "model.rpn.batch_size_per_image": POSITIVE,
    "model.roi.batch_size_per_image": POSITIVE,
    "model.roi.positive_fraction": FRACTION,
    "model.roi.sampling_ratio": COUNT,
    "model.roi.separable_align": BOOL,
    "model.roi.representation_size": POSITIVE,
    "model.roi.mask_features": choice_from("mask_features"),
    "model.roi.mask_in_channels": optional(POSITIVE),
    "model.roi.mask_head_channels": POSITIVE,
    "model.roi.mask_head_layers": POSITIVE,
    "model.roi.box_loss": choice("l1", "smooth_l1"),
    "model.objective.name": choice_from("objectives"),
    "model.objective.params": SECTION,
    "model.ranking.name": choice_from("ranking_terms", nullable=True),
    "model.ranking.weight": NONNEG,
    "model.ranking.params": SECTION,
    "model.test.score_thresh": PROBABILITY,
    "model.test.nms_thresh": PROBABILITY,
    "model.test.detections_per_img": POSITIVE,
    "model.test.masks_per_img": optional(POSITIVE),
    # ---- train --------------------------------------------------------------------------------------
    "train.seed": SEED,
    "train.iterations": POSITIVE,
    "train.batch_size": POSITIVE,
    "train.optimizer": choice_from("optimizers"),
    "train.lr": RATE,
    "train.momentum": MOMENTUM,
    "train.weight_decay": NONNEG,
    "train.warmup_iterations": COUNT,
    "train.warmup_ratio": FRACTION,
    "train.lr_steps": list_of(FRACTION),
    "train.lr_gamma": RATE,
    "train.grad_clip": optional(RATE),
    "train.checkpoint_every": POSITIVE,
    "train.keep_every": COUNT,
    "train.threads": POSITIVE,
    "train.workers": COUNT,
    "train.processes": POSITIVE,
    "train.device": choice("auto", "cpu", "cuda"),
    "train.diagnostics": BOOL,
    # ---- evaluate -----------------------------------------------------------------------------------
    "evaluate.split": choice("train", "val"),
    "evaluate.batch_size": POSITIVE,
    "evaluate.max_dets": POSITIVE,
    "evaluate.max_dets_sweep": list_of(POSITIVE),
    "evaluate.backend": choice("fast", "lvis"),
    "evaluate.curve": BOOL,
    "evaluate.masks": BOOL,
    "evaluate.norcal_gamma": optional(NONNEG),
    # ---- pretrain -----------------------------------------------------------------------------------
    "pretrain.max_similarity": FRACTION,
    "pretrain.max_classes": integer(2),
    "pretrain.num_train": POSITIVE,
    "pretrain.snippets": span(POSITIVE),
    "pretrain.snippet_chars": span(POSITIVE),
    "pretrain.text_length": POSITIVE,
    "pretrain.seed": SEED,
    "pretrain.iterations": POSITIVE,
    "pretrain.lr": RATE,
    "pretrain.threads": POSITIVE,
    # ---- the compendium's run knobs -----------------------------------------------------------------
    "profile": TEXT,
    "schedule.length": RATE,
}

_MISSING = object()


def lookup(params: Mapping, key: str):
    """The value at dotted `key`, or _MISSING; ParamsError if a section on the way is not a mapping."""
    value: Any = params
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(value, Mapping):
            section = ".".join(parts[:depth])
            raise ParamsError(f"{section} = {value!r}: expected a section (a mapping holding {part}, ...)")
        if part not in value:
            return _MISSING
        value = value[part]
    return value


def rules(names: Mapping[str, Iterable[str]] | None = None) -> dict[str, Rule]:
    """SCHEMA with each Registered rule bound to `names[kind]` where given."""
    names = names or {}
    return {key: rule.bind(names[rule.kind]) if isinstance(rule, Registered) and rule.kind in names else rule
            for key, rule in SCHEMA.items()}


def problems(params: Mapping, names: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """One line per key whose value breaks its rule: 'KEY = VALUE: expected ALLOWED' (registry names
    checked against `names`: see Registered)."""
    found = []
    for key, rule in rules(names).items():
        value = lookup(params, key)
        if value is not _MISSING and not rule.ok(rule.coerce(value)):
            found.append(f"{key} = {value!r}: expected {rule.allowed}")
    return found


def check_params(params: Mapping, names: Mapping[str, Iterable[str]] | None = None) -> dict:
    """`params` with values written another way coerced (Rule.coerce: '1e-3' -> 0.001); ParamsError
    listing every value outside its rule (registry names checked against `names`: see Registered)."""
    found = problems(params, names)
    if found:
        raise ParamsError("invalid parameter" + ("s" if len(found) > 1 else "") + ": " + "; ".join(found))
    out = copy.deepcopy(dict(params))
    for key, rule in SCHEMA.items():
        value = lookup(out, key)
        if value is not _MISSING:
            *sections, name = key.split(".")
            node = out
            for part in sections:
                node = node[part]
            node[name] = rule.coerce(value)
    return out
