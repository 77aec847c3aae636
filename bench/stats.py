"""Statistics every benchmark shares: percentiles, per-run summaries, and goals judged on the
median of several full runs (never on one run).

Pure functions over plain numbers and dicts, so that ``bench/report.py`` and the unit tests use
exactly what the benchmarks use.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

DEFAULT_RUNS = 3


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (as numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean, in seconds."""
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


def ratio(a: float, b: float) -> float:
    """``a / b``; NaN when either is missing or ``b`` is zero."""
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def median(values: Sequence[float]) -> float:
    """The median of the values that are numbers (NaN runs, i.e. failed ones, are left out)."""
    present = [v for v in values if not math.isnan(v)]
    return statistics.median(present) if present else math.nan


def judge(
    operator_p99s: Sequence[float],
    floor_p99s: Sequence[float],
    *,
    max_ratio: float,
    max_seconds: float | None = None,
    runs_wanted: int = DEFAULT_RUNS,
) -> dict[str, Any]:
    """A goal judged on the median of the runs' p99s (seconds): operator median <= ``max_ratio``
    x floor median, and (if given) operator median <= ``max_seconds``.

    Fails closed: not met when fewer runs than ``runs_wanted`` produced a number, or any number
    is missing. ``spread`` is (min, max) of the operator's run p99s.
    """
    op, fl = median(operator_p99s), median(floor_p99s)
    r = ratio(op, fl)
    measured = [v for v in operator_p99s if not math.isnan(v)]
    complete = (
        len(measured) >= runs_wanted
        and len([v for v in floor_p99s if not math.isnan(v)]) >= runs_wanted
    )
    met = complete and not math.isnan(r) and r <= max_ratio
    if max_seconds is not None:
        met = met and not math.isnan(op) and op <= max_seconds
    return {
        "operatorP99s": list(operator_p99s),
        "floorP99s": list(floor_p99s),
        "runRatios": [ratio(o, f) for o, f in zip(operator_p99s, floor_p99s, strict=False)],
        "operatorMedianP99": op,
        "floorMedianP99": fl,
        "spread": [min(measured), max(measured)] if measured else [math.nan, math.nan],
        "ratio": r,
        "goalRatio": max_ratio,
        "goalSeconds": max_seconds,
        "runsWanted": runs_wanted,
        "runsMeasured": len(measured),
        "goalMet": bool(met),
    }
