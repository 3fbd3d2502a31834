"""The report's statistics: the noise rule and the verdicts, as data. The bottom tier of rog.report: pure
functions of numbers, no results/, no registry, no prose. Every page judges through here, so the rule is
stated (and can be changed) in one place:

- the noise of a difference of two means, of n_a and n_b seeds, is sd x sqrt(1/n_a + 1/n_b), sd the seed
  sd (pooled over rows with several seeds; never below a floor, MIN_EFFECT for AP);
- the noise of a change of a difference between two schedules (a at 1x and 2x, b at 1x and 2x) is
  sd x sqrt(1/n_a1 + 1/n_b1 + 1/n_a2 + 1/n_b2);
- a difference is real beyond NOISE_K x its noise: "reproduced" in the expected direction, "opposite"
  the other way; "within noise" otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

MIN_EFFECT = 0.1  # AP points: the floor of the seed sd (no multi-seed row, or a smaller pooled spread)
NOISE_K = 2.0  # a difference is real when it exceeds NOISE_K x the noise of a difference
VERDICTS = ("reproduced", "within noise", "opposite")


@dataclass(frozen=True)
class Verdict:
    """One judged difference. status: one of VERDICTS; difference: the observed one (a - b, or a change of
    differences); threshold: NOISE_K x noise; noise: its noise; n: seeds per mean that enters it (a, b, and
    for a change of differences the second schedule's); metric: what was compared (e.g. 'mask APr'); basis:
    the sd it rests on, in words ('seed sd 0.81 pooled over 4 rows')."""
    status: str
    difference: float
    threshold: float
    noise: float
    n: tuple[int, ...]
    sd: float
    metric: str = ""
    basis: str = ""

    @property
    def real(self) -> bool:
        """Whether the difference exceeds the threshold, either way."""
        return self.status != "within noise"


def floor(sd: float | None, minimum: float = MIN_EFFECT) -> float:
    """The sd used for the noise: `sd`, never below `minimum` (also when unknown: None)."""
    return minimum if sd is None or sd < minimum else sd


def noise(sd: float, *n: int) -> float:
    """The noise of a sum or difference of means of n[0], n[1], ... seeds each: sd x sqrt(sum of 1/n)."""
    return sd * math.sqrt(sum(1 / k for k in n))


def threshold(noise_: float) -> float:
    """What a difference must exceed to be real: NOISE_K x its noise."""
    return NOISE_K * noise_


def judge(difference: float, noise_: float, expected_sign: float = 1.0) -> str:
    """reproduced / opposite when |difference| > NOISE_K x noise (by sign against `expected_sign`), else within
    noise."""
    if abs(difference) <= NOISE_K * noise_:
        return "within noise"
    return "reproduced" if (difference > 0) == (expected_sign > 0) else "opposite"


def verdict(difference: float, sd: float, n: Sequence[int], expected_sign: float = 1.0, metric: str = "",
            basis: str = "") -> Verdict:
    """The Verdict of `difference`, a difference of means of n = (n_a, n_b) seeds, or with four counts a change
    of a difference between two schedules, given the seed sd `sd` (already floored)."""
    noise_ = noise(sd, *n)
    return Verdict(judge(difference, noise_, expected_sign), difference, threshold(noise_), noise_, tuple(n), sd,
                   metric, basis)


def change_verdict(first: float, second: float, sd: float, n_first: Sequence[int], n_second: Sequence[int],
                   expected_sign: float = 1.0, metric: str = "", basis: str = "") -> Verdict:
    """Whether a difference changed between two schedules: second - first, each a difference of two means
    (n_first and n_second seeds per side)."""
    return verdict(second - first, sd, (*n_first, *n_second), expected_sign, metric, basis)


@dataclass(frozen=True)
class Spread:
    """A pooled seed sd: sd (None when no group has two values), the groups pooled, their sizes, and the
    degrees of freedom (sum of n - 1)."""
    sd: float | None
    groups: int
    seeds: tuple[int, ...]
    df: int


def pooled(groups: Iterable[Sequence[float]]) -> Spread:
    """The pooled sample sd of groups of values (each its own mean): sqrt(sum of squared deviations / sum of
    n - 1), over the groups with at least two values."""
    squares, df, seeds = 0.0, 0, []
    for values in groups:
        if len(values) < 2:
            continue
        mean = sum(values) / len(values)
        squares += sum((v - mean) ** 2 for v in values)
        df += len(values) - 1
        seeds.append(len(values))
    return Spread(math.sqrt(squares / df) if df else None, len(seeds), tuple(seeds), df)


__all__ = ["MIN_EFFECT", "NOISE_K", "VERDICTS", "Verdict", "Spread", "floor", "noise", "threshold", "judge",
           "verdict", "change_verdict", "pooled"]
