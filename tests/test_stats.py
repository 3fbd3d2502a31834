"""The report's statistics tier (rog/report/stats.py): the noise rule and the verdict records, by numbers."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from rog.report import stats

ROOT = Path(__file__).resolve().parents[1]


def test_the_noise_of_a_difference_of_means():
    assert stats.noise(1.0, 3, 3) == pytest.approx(math.sqrt(2 / 3))
    assert stats.noise(0.5, 1, 1) == pytest.approx(0.5 * math.sqrt(2))
    assert stats.noise(2.0, 1, 1, 1, 1) == pytest.approx(4.0)       # a change of two one-seed differences
    assert stats.threshold(stats.noise(1.0, 3, 1)) == pytest.approx(stats.NOISE_K * math.sqrt(4 / 3))


@pytest.mark.parametrize("difference, sign, status", [
    (3.0, 1.0, "reproduced"), (-3.0, 1.0, "opposite"), (-3.0, -1.0, "reproduced"), (3.0, -2.5, "opposite"),
    (2.0, 1.0, "within noise"), (-2.0, 1.0, "within noise"), (0.0, 1.0, "within noise")])
def test_verdict_records(difference, sign, status):
    """sd 1, one seed each: noise sqrt(2), threshold 2 sqrt(2) = 2.83; exactly at it is still within noise."""
    found = stats.verdict(difference, 1.0, (1, 1), sign, metric="mask APr", basis="test")
    assert found == stats.Verdict(status, difference, 2 * math.sqrt(2), math.sqrt(2), (1, 1), 1.0, "mask APr", "test")
    assert found.real == (status != "within noise")
    at = stats.verdict(found.threshold, 1.0, (1, 1))
    assert at.status == "within noise"


def test_a_change_of_a_difference_between_two_schedules():
    """1x: 3 seeds a side; 2x: one seed a side; sd 1.2: noise 1.2 x sqrt(1/3 + 1/3 + 1 + 1)."""
    found = stats.change_verdict(first=2.0, second=-4.0, sd=1.2, n_first=(3, 3), n_second=(1, 1))
    assert found.difference == pytest.approx(-6.0)
    assert found.noise == pytest.approx(1.2 * math.sqrt(2 / 3 + 2))
    assert found.threshold == pytest.approx(2 * 1.2 * math.sqrt(2 / 3 + 2))
    assert found.status == "opposite" and found.n == (3, 3, 1, 1)


def test_the_floor_and_the_pooled_sd():
    assert stats.floor(None) == stats.MIN_EFFECT and stats.floor(0.01) == stats.MIN_EFFECT
    assert stats.floor(0.4) == 0.4 and stats.floor(0.3, minimum=1.0) == 1.0
    spread = stats.pooled([[1.0, 3.0], [10.0, 10.0, 13.0], [7.0]])   # the one-value group does not count
    assert spread.seeds == (2, 3) and spread.groups == 2 and spread.df == 3
    assert spread.sd == pytest.approx(math.sqrt((2.0 + 6.0) / 3))
    assert stats.pooled([[5.0], []]).sd is None


def test_the_noise_rule_is_written_only_in_the_statistics_tier():
    """No module of rog/report computes sqrt(1/n_a + 1/n_b) (or sqrt(2) for two runs) but stats.py."""
    formula = re.compile(r"(math|np)\.sqrt\(\s*(1\s*/|2\s*\))")
    found = [p.name for p in (ROOT / "rog/report").glob("*.py") if p.name != "stats.py" and formula.search(p.read_text())]
    assert found == []
