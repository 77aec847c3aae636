"""Each benchmark's summary of its runs: goals on the median of 3 runs, errors counted."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench import remediation, sessions


def session_run(op: float, floor: float, errors: int = 0) -> dict[str, Any]:
    return {
        "ready": {"operator": {"p99": op}, "floor": {"p99": floor}, "errors": ["x"] * errors},
        "revocation": {"operator": {"to403": {"p99": 0.05}, "errors": []}, "floor": {}},
        "rss": {
            "withSessionsMiB": 150.0,
            "activeSessions": 1000,
            "creation": {"active": 1000, "seconds": 25.0, "failureCount": 1},
            "floorCreation": {"issued": 1000, "seconds": 10.0},
        },
        "loadavg": [1.0, 1.0, 1.0],
    }


def test_sessions_goal_on_the_median_errors_counted_failed_run_named() -> None:
    runs = [session_run(1.2, 1.0), session_run(9.0, 1.0, errors=2), session_run(1.4, 1.0)]
    s = sessions.summarize(runs, 3)
    assert s["ready"]["operatorMedianP99"] == 1.4
    assert s["goalMet"] is True  # 1.4x <= 1.5x although one run was 9x
    assert s["errorsPerRun"] == [1, 3, 1]  # sample errors + failed creations
    assert s["activationPerSecond"] == [40.0, 40.0, 40.0]
    assert s["floorActivationPerSecond"] == [100.0, 100.0, 100.0]
    assert s["floorOverOperatorRate"] == [2.5, 2.5, 2.5]
    assert s["manySessions"]["floorPerSecondMedian"] == 100.0
    assert s["manySessions"]["floorOverOperator"] == 2.5
    failed = sessions.summarize([*runs[:2], {"error": "RuntimeError: boom"}], 3)
    assert failed["goalMet"] is False
    assert failed["runErrors"] == [None, None, "RuntimeError: boom"]
    assert failed["errorsPerRun"][2] == 1


@pytest.mark.parametrize(
    ("active", "seconds", "rss", "met"),
    [
        pytest.param(1000, 25.0, 200.0, True, id="1000-at-40-per-s-in-200-MiB-meets-it"),
        pytest.param(1000, 26.0, 150.0, False, id="slower-than-40-per-s-does-not"),
        pytest.param(1000, 20.0, 201.0, False, id="more-than-200-MiB-does-not"),
        pytest.param(100, 1.0, 100.0, False, id="a-quick-run-of-100-never-does"),
    ],
)
def test_many_sessions_goal_on_the_medians(
    active: int, seconds: float, rss: float, met: bool
) -> None:
    run = session_run(1.0, 1.0)
    run["rss"].update(
        withSessionsMiB=rss,
        activeSessions=active,
        creation={"active": active, "seconds": seconds, "failureCount": 0},
    )
    s = sessions.summarize([run] * 3, 3)
    assert s["manySessions"]["goalMet"] is met
    assert s["goalMet"] is met  # session-ready met (1x): the verdict is the many-sessions one


def test_fewer_than_three_runs_never_meet_a_goal() -> None:
    assert sessions.summarize([session_run(1.0, 1.0)], 1)["goalMet"] is False
    one = {"kinds": {"approval": {"p99": 0.1}, "approvalFloor": {"p99": 0.1}}}
    assert remediation.summarize([one], 1)["goalMet"] is False
    assert remediation.summarize([one] * 3, 3)["goalMet"] is True


def test_remediation_goal_needs_both_the_ratio_and_300_ms() -> None:
    def run(op: float, floor: float) -> dict[str, Any]:
        kinds = {"approval": {"p99": op, "errors": ["e"]}, "approvalFloor": {"p99": floor}}
        return {"kinds": kinds}

    assert remediation.summarize([run(0.25, 0.2)] * 3, 3)["goalMet"] is True
    assert remediation.summarize([run(0.35, 0.2)] * 3, 3)["goalMet"] is False  # over 300 ms
    assert remediation.summarize([run(0.25, 0.1)] * 3, 3)["goalMet"] is False  # 2.5x the floor
    assert remediation.summarize([run(0.25, 0.2)] * 3, 3)["errorsPerRun"] == [1, 1, 1]


def test_a_run_without_the_rate_floor_has_no_floor_number() -> None:
    run = session_run(1.0, 1.0)
    del run["rss"]["floorCreation"]
    s = sessions.summarize([run], 1)
    assert math.isnan(s["floorActivationPerSecond"][0])
    assert math.isnan(s["manySessions"]["floorOverOperator"])


def test_the_rate_floor_with_the_operators_identity_is_summarized_per_run() -> None:
    with_op = session_run(1.0, 1.0)
    with_op["rss"]["floorOperatorIdentityCreation"] = {"issued": 1000, "seconds": 50.0}
    s = sessions.summarize([with_op, session_run(1.0, 1.0)], 2)
    assert s["floorOperatorIdentityActivationPerSecond"][0] == 20.0
    assert math.isnan(s["floorOperatorIdentityActivationPerSecond"][1])  # an older run: none


def test_cpu_per_session_against_what_each_goal_leaves() -> None:
    run = session_run(2.0, 1.0)
    run["ready"]["sessionsPerBatch"] = 50
    run["ready"]["batches"] = [
        {"kind": "operator", "sessions": 50, "cpuSeconds": {"operator": 1.5, "etcd": 2.5}},
        {"kind": "operator", "sessions": 50, "cpuSeconds": {"kube-apiserver": 5.0}},
        {"kind": "operator", "sessions": 50, "cpuSeconds": {"kube-apiserver": 6.0}},
        {"kind": "floor", "sessions": 50, "cpuSeconds": {"kube-apiserver": 1.0}},
        {"kind": "floorOperatorIdentity", "sessions": 0, "cpuSeconds": {"kube-apiserver": 1.0}},
        {"kind": "floor", "n": 50},  # a batch recorded before the CPU accounting: left out
    ]
    run["phases"] = {
        "rss": {"cpuSeconds": {"operator": 20.0, "kube-apiserver": 50.0}},
        "rssFloorOperatorId": {"cpuSeconds": {"harness": 10.0, "kube-apiserver": 30.0}},
    }
    run["rss"]["floorOperatorIdentityCreation"] = {"issued": 1000, "seconds": 30.0}
    cpu = sessions.summarize([run, {"error": "RuntimeError: boom"}], 2, cores=2)["cpu"]
    assert cpu["readyCpuMsPerSession"]["operator"][0] == 100.0  # median of 80, 100, 120
    assert cpu["readyCpuMsPerSession"]["floor"][0] == 20.0
    assert math.isnan(cpu["readyCpuMsPerSession"]["floorOperatorIdentity"][0])  # no sessions
    assert cpu["readyBudgetMsPerSession"][0] == 60.0  # 1.5 x 1 s x 2 cores / 50 sessions
    assert cpu["manyCpuMsPerSession"][0] == 70.0  # 70 CPU seconds over 1,000 Active
    assert cpu["manyCpuMsPerSessionWithoutOperator"][0] == 50.0
    assert cpu["manyBudgetMsPerSession"] == 50.0  # 2 cores at 40 sessions/s
    assert cpu["manyFloorOperatorIdentityCpuMsPerIssue"][0] == 40.0
    assert math.isnan(cpu["readyCpuMsPerSession"]["operator"][1])  # the failed run
    assert math.isnan(cpu["manyCpuMsPerSession"][1])
    assert math.isnan(cpu["manyFloorOperatorIdentityCpuMsPerIssue"][1])
