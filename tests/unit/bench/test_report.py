"""docs/benchmarks.md tables rendered from JSON results, tolerant of what it does not know."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

from bench import report, stats


def _runs(p99s: list[float], floors: list[float]) -> list[dict[str, Any]]:
    return [{"run": i + 1, "loadavg": [3.5 + i, 3.0, 2.0]} for i in range(len(p99s))]


def sessions_result(started: str, p99s: list[float], floors: list[float]) -> dict[str, Any]:
    ready = stats.judge(p99s, floors, max_ratio=2.0)
    return {
        "benchmark": "sessions",
        "format": 2,
        "startedAt": started,
        "command": "python bench/sessions.py --quick",
        "parameters": {"quick": True},
        "loadavgAtStart": [4.0, 3.0, 2.0],
        "runs": _runs(p99s, floors),
        "summary": {
            "ready": ready,
            "revocation403": stats.judge([0.05] * 3, [0.04] * 3, max_ratio=math.inf),
            "rssWithSessionsMiB": [150.0, 151.0, 149.5],
            "rssActiveSessions": [1000, 1000, 998],
            "activationPerSecond": [20.0, 21.5, math.nan],
            "floorActivationPerSecond": [60.0, 43.0, 50.0],
            "loadavg": [r["loadavg"] for r in _runs(p99s, floors)],
            "errorsPerRun": [0, 2, 0],
            "runErrors": [None, None, None],
            "goalMet": ready["goalMet"],
        },
    }


def remediation_result(started: str) -> dict[str, Any]:
    approval = stats.judge([0.2, 0.25, 0.5], [0.15] * 3, max_ratio=2.0, max_seconds=0.3)
    return {
        "benchmark": "remediation",
        "format": 2,
        "startedAt": started,
        "runs": [{"run": 1}, {"run": 2}, {"error": "boom"}],
        "summary": {
            "approval": approval,
            "auto": stats.judge([0.3] * 3, [0.1] * 3, max_ratio=math.inf),
            "errorsPerRun": [0, 0, 1],
            "loadavg": [[1.0], [2.0], [3.0]],
            "runErrors": [None, None, "RuntimeError: boom"],
            "goalMet": approval["goalMet"],
        },
    }


def write(d: pathlib.Path, name: str, data: Any) -> None:
    (d / name).write_text(data if isinstance(data, str) else json.dumps(data))


def test_renders_the_newest_result_of_each_kind_with_runs_median_and_goal(
    tmp_path: pathlib.Path,
) -> None:
    write(tmp_path, "sessions-a.json", sessions_result("2026-12-01T10", [9.0] * 3, [1.0] * 3))
    write(tmp_path, "sessions-b.json", sessions_result("2026-12-01T11", [2.0, 3.0, 2.4], [1.0] * 3))
    write(tmp_path, "remediation-a.json", remediation_result("2026-12-01T11"))
    text = report.render(tmp_path)
    assert text.startswith(report.BEGIN)
    assert text.rstrip().endswith(report.END)
    assert "bench/results/sessions-b.json" in text
    assert "**A smoke run (`--quick`), not a measurement.**" in text
    assert "| 1 | 2,000 ms | 1,000 ms | 2.00x | 0 | 3.50 |" in text
    assert "| 2 | 3,000 ms | 1,000 ms | 3.00x | 2 | 4.50 |" in text
    assert "**2,400 ms** (spread 2,000 ms to 3,000 ms)" in text
    assert "**2.40x**" in text
    assert "operator <= 2x the floor, on the median of the runs' p99s: **NOT met**" in text
    assert "| 3 | 998 | 149.5 MiB | n/a | 50.0 | n/a |" in text
    # The activation rate's floor (credentials.issue calls) beside it, and how much faster.
    assert "| floor issue/s | floor / operator |" in text
    assert "| 1 | 1000 | 150.0 MiB | 20.0 | 60.0 | 3.00x |" in text
    assert "| 2 | 1000 | 151.0 MiB | 21.5 | 43.0 | 2.00x |" in text
    assert "- `bench/results/sessions-a.json`: sessions: older than the newest" in text
    # Remediation: the failed run is named, the absolute goal decides (250 ms median <= 300 ms).
    assert "| 3 (run failed: RuntimeError: boom) |" in text
    assert (
        "operator <= 300 ms and <= 2x the floor, on the median of the runs' p99s: **met**" in text
    )


def test_unknown_old_and_broken_files_are_listed_not_rendered(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "frobnicate-2026.json", {"benchmark": "frobnicate", "p99": 1})
    write(tmp_path, "gateway-2026.json", {"benchmark": "gateway", "p99": 1})
    write(tmp_path, "sessions-old.json", {"benchmark": "sessions", "ready": {}})
    write(tmp_path, "broken.json", "{not json")
    write(tmp_path, "notes.txt", "ignored: not a result")
    text = report.render(tmp_path)
    assert "No results in the current format yet" in text
    assert "`bench/results/frobnicate-2026.json`: benchmark 'frobnicate': no table" in text
    assert "`bench/results/gateway-2026.json`: gateway: an earlier single-run" in text
    assert "`bench/results/sessions-old.json`: sessions: an earlier single-run" in text
    assert "`bench/results/broken.json`: unreadable" in text
    assert "notes.txt" not in text


def test_a_result_missing_fields_is_reported_not_fatal(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "sessions-x.json", {"benchmark": "sessions", "format": 2, "summary": {}})
    assert "could not be rendered" in report.render(tmp_path)


def test_splice_replaces_only_the_generated_part() -> None:
    page = f"# B\n\nprose before\n\n{report.BEGIN}\nold table\n{report.END}\n\nprose after\n"
    new = f"{report.BEGIN}\nnew table\n{report.END}\n"
    out = report.splice(page, new)
    assert out == f"# B\n\nprose before\n\n{report.BEGIN}\nnew table\n{report.END}\n\nprose after\n"
    assert report.splice(out, new) == out
    assert report.splice("# B\n", new) == f"# B\n\n{new}"


def test_check_mode_fails_on_a_stale_page(tmp_path: pathlib.Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    args = ["--results", str(results), "--doc", str(doc)]
    assert report.main([*args, "--check"]) == 1
    assert report.main(args) == 0
    assert report.main([*args, "--check"]) == 0


def gateway_run(
    added200: tuple[float, float], to401: float, closed: float, revoked: float, missed: int = 0
) -> dict[str, Any]:
    """One run of ``bench/gateway.py`` (ms), as ``run_once`` writes it."""

    def rate(gw: float, direct: float, added: tuple[float, float]) -> dict[str, Any]:
        return {
            "gateway": {"p50Ms": gw, "p99Ms": gw * 2, "achievedRps": 50.0},
            "direct": {"p50Ms": direct, "p99Ms": direct * 2},
            "addedP50Ms": added[0],
            "addedP99Ms": added[1],
        }

    return {
        "loadavgAtStart": [1.25, 1.0, 1.0],
        "streams": {"kibPerStream": 140.0},
        "latency": {
            "1rps": rate(4.0, 3.0, (1.0, 2.0)),
            "50rps": rate(5.0, 3.0, (2.0, 4.0)),
            "200rps": rate(6.0, 3.0, added200),
        },
        "ceiling": {
            "gateway": {"rps": 300.0, "operatorCpuMsPerRequest": 0.5},
            "direct": {"rps": 900.0, "operatorCpuMsPerRequest": 0.04},
        },
        "revocationTo401Ms": {"n": 10, "missed": missed, "p50Ms": to401 / 2, "p99Ms": to401},
        "directRevocationTo401Ms": {"n": 2, "missed": 0, "p50Ms": 10_004.0, "p99Ms": 10_009.0},
        "revocationToStreamClosedMs": {"n": 10, "missed": 0, "p50Ms": 5.0, "p99Ms": closed},
        "directWatchStillOpenAfter5s": True,
        "forbiddenToRevokedMs": {
            "gateway": {"n": 5, "missed": 0, "p50Ms": 40.0, "p99Ms": revoked},
            "direct": {"n": 5, "missed": 0, "p50Ms": 500.0, "p99Ms": 900.0},
        },
    }


def gateway_result(runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"startedAt": "2026-12-01T10", "parameters": {"quick": False}, "runs": runs, **extra}


def test_gateway_each_run_median_spread_and_goals_on_the_median() -> None:
    runs = [
        gateway_run((1.5, 9.0), 30.0, 80.0, 90.0),
        gateway_run((1.0, 8.0), 40.0, 99.0, 95.0),
        gateway_run((9.0, 50.0), 400.0, 300.0, 500.0),  # one bad run: the median decides
    ]
    runs[1]["loadavgAtStart"] = [7.5, 1.0, 1.0]
    # No ``median`` block: the medians are computed from the runs.
    text = "\n".join(report.gateway_tables(gateway_result(runs, median={}), "bench/results/g.json"))
    assert "### Session gateway (`bench/gateway.py`)" in text
    assert "not a measurement" not in text
    assert "| GET at 200 rps, **added p50** (ms) | 1.5 | 1.0 | 9.0 | 1.5 | 1.0-9.0 |" in text
    assert "| GET at 200 rps, **added p99** (ms) | 9.0 | 8.0 | 50.0 | 9.0 | 8.0-50.0 |" in text
    assert "| revocation → first 401, gateway p99 (ms) | 30.0 | 40.0 | 400.0 | 40.0 |" in text
    assert "| operator CPU per request, gateway (ms) | 0.50 | 0.50 | 0.50 | 0.50 |" in text
    assert "| throughput ceiling, direct (req/s) | 900.0 | 900.0 | 900.0 | 900.0 |" in text
    assert "| memory per open stream (KiB) | 140.0 | 140.0 | 140.0 | 140.0 |" in text
    assert "| direct watch still open 5 s after its session ended | yes | yes | yes |" in text
    assert "| load average (1 min) at the start of the run | 1.25 | 7.50 | 1.25 |" in text
    assert "at 200 rps, p50 <= 2 ms, on the median of the runs (1.5 ms; 3 of 3 runs): **met**" in (
        text
    )
    assert "at 200 rps, p99 <= 10 ms, on the median of the runs (9.0 ms; 3 of 3 runs): **met**" in (
        text
    )
    assert "first 401, p99 <= 50 ms, on the median of the runs (40.0 ms; 3 of 3 runs): **met**" in (
        text
    )
    assert "stream closed, p99 <= 100 ms, on the median of the runs (99.0 ms" in text
    assert (
        "session Revoked, p99 <= 100 ms, on the median of the runs (95.0 ms; 3 of 3 runs): **met**"
        in text
    )
    assert "NOT met" not in text


def test_gateway_uses_the_written_median_and_fails_closed() -> None:
    runs = [gateway_run((1.0, 5.0), 30.0, 50.0, 60.0, missed=int(i == 0)) for i in range(3)]
    median = {"latency": {"200rps": {"addedP50Ms": 2.5}}, "revocationTo401Ms": {"p99Ms": 30.0}}
    text = "\n".join(report.gateway_tables(gateway_result(runs, median=median), "g.json"))
    # The median bench/gateway.py wrote wins over the one computed from the runs.
    assert "| GET at 200 rps, **added p50** (ms) | 1.0 | 1.0 | 1.0 | 2.5 | 1.0-1.0 |" in text
    assert (
        "at 200 rps, p50 <= 2 ms, on the median of the runs (2.5 ms; 3 of 3 runs): **NOT met**"
        in text
    )
    # A missed sample (a revocation that never got its 401) fails the goal whatever the median.
    assert "| samples missed (no 401, not closed, not Revoked) | 1 | 0 | 0 | | 0-1 |" in text
    assert "first 401, p99 <= 50 ms, on the median of the runs (30.0 ms; 3 of 3 runs; samples" in (
        text
    )
    assert "samples missed): **NOT met**" in text
    # Fewer than 3 runs (a --quick smoke run): not met, and said to be a smoke run.
    quick = gateway_result(runs[1:2], median={}, parameters={"quick": True})
    text = "\n".join(report.gateway_tables(quick, "g.json"))
    assert "**A smoke run (`--quick`), not a measurement.**" in text
    assert "(5.0 ms; 1 of 3 runs): **NOT met**" in text
    assert "**met**" not in text


def mcp_run(get: tuple[float, float], ratios: tuple[float, float]) -> dict[str, Any]:
    def side(p50: float, p99: float) -> dict[str, Any]:
        return {"n": 40, "p50_ms": p50, "p99_ms": p99}

    return {
        "get_mcp": side(*get),
        "get_direct": side(3.0, 20.0),
        "propose_mcp": side(200.0, 600.0),
        "propose_direct": side(180.0, 500.0),
        "ratio_p99": {"get_resource": ratios[0], "propose_remediation": ratios[1]},
    }


def test_mcp_runs_median_ratio_and_goal() -> None:
    runs = [
        mcp_run((8.5, 25.0), (1.25, 1.2)),
        mcp_run((9.0, 80.0), (4.0, 1.6)),
        mcp_run((6.0, 35.0), (1.75, 1.7)),
    ]
    result = {
        "runs": runs,
        "median_ratio_p99": {"get_resource": 1.75, "propose_remediation": 1.6},
        "machine": {"cpus": 2, "loadavg_before": [10.4, 11.0, 10.0], "loadavg_after": [10.6]},
    }
    text = "\n".join(report.mcp_tables(result, "bench/results/m.json"))
    assert "`bench/results/m.json`, 3 run(s) of 40 calls of each" in text
    assert "before 10.40, after 10.60" in text
    assert "| 1 | `get_resource` | 8.5 ms | 25.0 ms | 3.0 ms | 20.0 ms | 1.25x |" in text
    assert (
        "| 3 | `propose_remediation` | 200.0 ms | 600.0 ms | 180.0 ms | 500.0 ms | 1.70x |" in text
    )
    assert "| **median** | `get_resource` | | | | | **1.75x** |" in text
    assert (
        "`get_resource` MCP p99 <= 1.5x direct, on the median of the runs' ratios"
        " (1.75x; 3 of 3 runs): **NOT met**" in text
    )
    # Without the median block, computed from the runs: 1.2, 1.6, 1.7 -> 1.6.
    del result["median_ratio_p99"]
    result["runs"] = [mcp_run((1.0, 2.0), (1.0, r)) for r in (1.2, 1.4, 1.7)]
    text = "\n".join(report.mcp_tables(result, "m.json"))
    assert (
        "`propose_remediation` MCP p99 <= 1.5x direct, on the median of the runs' ratios"
        " (1.40x; 3 of 3 runs): **met**" in text
    )


def test_gateway_and_mcp_files_are_recognised_and_older_ones_listed(tmp_path: pathlib.Path) -> None:
    runs = [gateway_run((1.0, 5.0), 30.0, 50.0, 60.0)] * 3
    write(tmp_path, "gateway-2026-12-01T1000Z.json", gateway_result(runs))  # no median block
    newer = gateway_result(runs, median={}) | {"startedAt": "2026-12-01T11"}
    write(tmp_path, "gateway-2026-12-01T1100Z.json", newer)
    mcp = {"runs": [mcp_run((1.0, 2.0), (1.0, 1.0))] * 3}
    write(tmp_path, "mcp-2026-12-01T1000Z.json", mcp)
    text = report.render(tmp_path)
    assert "could not be rendered" not in text
    assert "Result `bench/results/gateway-2026-12-01T1100Z.json`" in text
    assert "- `bench/results/gateway-2026-12-01T1000Z.json`: gateway: older than the newest" in text
    assert "Result `bench/results/mcp-2026-12-01T1000Z.json`" in text
    assert "no table for it" not in text


def test_a_sessions_result_without_the_rate_floor_still_renders(tmp_path: pathlib.Path) -> None:
    old = sessions_result("2026-12-01T10", [2.0] * 3, [1.0] * 3)
    del old["summary"]["floorActivationPerSecond"]
    write(tmp_path, "sessions-a.json", old)
    text = report.render(tmp_path)
    assert "| 1 | 1000 | 150.0 MiB | 20.0 | n/a | n/a |" in text
    assert "same number of `credentials.issue` calls" not in text


def test_the_operators_identity_rate_floor_gets_its_own_column(tmp_path: pathlib.Path) -> None:
    result = sessions_result("2026-12-01T10", [2.0] * 3, [1.0] * 3)
    result["summary"]["floorOperatorIdentityActivationPerSecond"] = [30.0, 31.0, math.nan]
    write(tmp_path, "sessions-a.json", result)
    text = report.render(tmp_path)
    assert "floor (operator's id) issue/s |" in text
    assert "| 1 | 1000 | 150.0 MiB | 20.0 | 60.0 | 3.00x | 30.0 |" in text
    assert "| 3 | 998 | 149.5 MiB | n/a | 50.0 | n/a | n/a |" in text


def test_cpu_per_session_is_rendered_beside_what_the_goals_leave(tmp_path: pathlib.Path) -> None:
    result = sessions_result("2026-12-01T10", [2.0] * 3, [1.0] * 3)
    write(tmp_path, "sessions-a.json", result)
    assert "CPU per session" not in report.render(tmp_path)  # older results have no such block
    result["summary"]["cpu"] = {
        "cores": 2,
        "readyCpuMsPerSession": {
            "operator": [90.4, math.nan],
            "floor": [20.0, math.nan],
            "floorOperatorIdentity": [40.0, math.nan],
        },
        "readyBudgetMsPerSession": [61.2, math.nan],
        "manyCpuMsPerSession": [87.0, math.nan],
        "manyCpuMsPerSessionWithoutOperator": [65.0, math.nan],
        "manyBudgetMsPerSession": 50.0,
        "manyFloorOperatorIdentityCpuMsPerIssue": [55.5],
    }
    write(tmp_path, "sessions-a.json", result)
    text = report.render(tmp_path)
    assert "every process together (2 cores)" in text
    assert "| 1 | 90 ms | 20 ms | 40 ms | 61 ms | 87 ms | 65 ms | 50 ms | 56 ms |" in text
    assert "| 2 | n/a | n/a | n/a | n/a | n/a | n/a | 50 ms | n/a |" in text
