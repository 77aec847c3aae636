"""The apiserver's watch-cache read waits, as the benchmarks account them per phase."""

from __future__ import annotations

import math

from bench import harness

RB = 'group="rbac.authorization.k8s.io",resource="rolebindings"'
H = "apiserver_watch_cache_read_wait_seconds"


def snapshot(b1: int, b2: int, b3: int, n: int, total: float) -> str:
    """A /metrics page: the rolebindings histogram (buckets at 5 ms, 100 ms, 600 ms, +Inf),
    another resource's count, and an unrelated metric."""
    return "\n".join(
        [
            f"# TYPE {H} histogram",
            f'{H}_bucket{{{RB},le="0.005"}} {b1}',
            f'{H}_bucket{{{RB},le="0.1"}} {b2}',
            f'{H}_bucket{{{RB},le="0.6"}} {b3}',
            f'{H}_bucket{{{RB},le="+Inf"}} {n}',
            f"{H}_sum{{{RB}}} {total}",
            f"{H}_count{{{RB}}} {n}",
            f'{H}_count{{group="",resource="pods"}} 7',
            'apiserver_request_total{code="200"} 12',
        ]
    )


def test_read_waits_parses_the_histogram_by_group_and_resource() -> None:
    waits = harness.read_waits(snapshot(1, 2, 3, 4, 1.5))
    rb = waits["rbac.authorization.k8s.io/rolebindings"]
    assert (rb["count"], rb["sum"]) == (4.0, 1.5)
    assert rb["buckets"] == {"0.005": 1.0, "0.1": 2.0, "0.6": 3.0, "+Inf": 4.0}
    assert waits["core/pods"]["count"] == 7.0
    assert set(waits) == {"rbac.authorization.k8s.io/rolebindings", "core/pods"}


def test_waits_between_two_snapshots_counts_only_the_reads_in_between() -> None:
    before = harness.read_waits(snapshot(1, 2, 3, 4, 1.0))
    # 100 more reads: 10 at most 5 ms, 40 at most 100 ms, 45 at most 600 ms, 5 longer
    after = harness.read_waits(snapshot(11, 52, 98, 104, 31.0))
    waits = harness.waits_between(before, after)
    assert set(waits) == {"rbac.authorization.k8s.io/rolebindings"}  # pods: none in between
    rb = waits["rbac.authorization.k8s.io/rolebindings"]
    assert rb["reads"] == 100
    assert rb["meanSeconds"] == 0.3
    assert rb["p50AtMostSeconds"] == 0.1  # 50 of the 100 waited at most 100 ms
    assert math.isinf(rb["p99AtMostSeconds"])  # 5 reads waited longer than the last bound


def test_no_metrics_no_waits() -> None:
    assert harness.read_waits("apiserver_request_total 1\n") == {}
    assert harness.waits_between({}, {}) == {}
