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
    assert "| 3 | 998 | 149.5 MiB | n/a |" in text
    assert "- `bench/results/sessions-a.json`: sessions: older than the newest" in text
    # Remediation: the failed run is named, the absolute goal decides (250 ms median <= 300 ms).
    assert "| 3 (run failed: RuntimeError: boom) |" in text
    assert (
        "operator <= 300 ms and <= 2x the floor, on the median of the runs' p99s: **met**" in text
    )


def test_unknown_old_and_broken_files_are_listed_not_rendered(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "gateway-2026.json", {"benchmark": "gateway", "p99": 1})
    write(tmp_path, "sessions-old.json", {"benchmark": "sessions", "ready": {}})
    write(tmp_path, "broken.json", "{not json")
    write(tmp_path, "notes.txt", "ignored: not a result")
    text = report.render(tmp_path)
    assert "No results in the current format yet" in text
    assert "`bench/results/gateway-2026.json`: benchmark 'gateway': no table" in text
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
