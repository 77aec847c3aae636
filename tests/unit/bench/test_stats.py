"""The benchmarks' goal logic: judged on the median of the runs' p99s, failing closed."""

from __future__ import annotations

import math

import pytest
from bench import stats

NAN = math.nan

JUDGE_CASES = [
    pytest.param([1.0, 3.0, 2.0], [1.0, 1.0, 1.0], 2.0, None, 2.0, True, id="median-at-goal-met"),
    pytest.param(
        [1.0, 9.0, 1.2], [1.0, 1.0, 1.0], 2.0, None, 1.2, True, id="one-bad-run-does-not-decide"
    ),
    pytest.param([3.0, 2.5, 1.0], [1.0, 1.0, 1.0], 2.0, None, 2.5, False, id="median-above-goal"),
    pytest.param([1.0, NAN, 1.0], [1.0, 1.0, 1.0], 2.0, None, 1.0, False, id="failed-run-not-met"),
    pytest.param([0.2, 0.25, 0.4], [0.2, 0.2, 0.2], 2.0, 0.3, 1.25, True, id="absolute-met"),
    pytest.param([0.35, 0.4, 0.4], [0.3, 0.3, 0.3], 2.0, 0.3, 4 / 3, False, id="absolute-missed"),
    pytest.param([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], 2.0, None, NAN, False, id="no-floor-not-met"),
]


@pytest.mark.parametrize(("op", "floor", "max_ratio", "max_s", "ratio", "met"), JUDGE_CASES)
def test_judge(
    op: list[float],
    floor: list[float],
    max_ratio: float,
    max_s: float | None,
    ratio: float,
    met: bool,
) -> None:
    judged = stats.judge(op, floor, max_ratio=max_ratio, max_seconds=max_s)
    assert judged["goalMet"] is met
    if math.isnan(ratio):
        assert math.isnan(judged["ratio"])
    else:
        assert judged["ratio"] == pytest.approx(ratio)


def test_judge_reports_every_run_and_the_spread() -> None:
    judged = stats.judge([3.0, 1.0, 2.0], [1.0, 2.0, 1.0], max_ratio=2.0)
    assert judged["operatorP99s"] == [3.0, 1.0, 2.0]
    assert judged["runRatios"] == [3.0, 0.5, 2.0]
    assert judged["operatorMedianP99"] == 2.0
    assert judged["floorMedianP99"] == 1.0
    assert judged["spread"] == [1.0, 3.0]
    assert judged["runsMeasured"] == 3


def test_fewer_runs_than_wanted_is_not_met() -> None:
    assert not stats.judge([1.0], [1.0], max_ratio=2.0)["goalMet"]
    assert stats.judge([1.0], [1.0], max_ratio=2.0, runs_wanted=1)["goalMet"]


@pytest.mark.parametrize(
    ("values", "q", "want"),
    [
        pytest.param([1.0, 2.0, 3.0, 4.0], 0.5, 2.5, id="p50-interpolated"),
        pytest.param([float(i) for i in range(101)], 0.99, 99.0, id="p99-of-101"),
        pytest.param([5.0], 0.99, 5.0, id="single-value"),
    ],
)
def test_percentile(values: list[float], q: float, want: float) -> None:
    assert stats.percentile(values, q) == pytest.approx(want)


def test_empty_values_are_nan_not_an_error() -> None:
    assert math.isnan(stats.percentile([], 0.99))
    assert stats.summary([])["n"] == 0
    assert math.isnan(stats.median([NAN, NAN]))
