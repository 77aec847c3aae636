"""Render the result tables of ``docs/benchmarks.md`` from the JSON results in ``bench/results/``.

    .venv/bin/python bench/report.py            # rewrite the generated part of the page
    .venv/bin/python bench/report.py --check    # exit 1 if the page is not what it would write

Only the part between :data:`BEGIN` and :data:`END` is written; the prose around it is not touched.
For each benchmark kind (the ``benchmark`` field of a result) the newest result file is rendered:
every run, the spread, the median of the runs' p99s, the ratio to the floor, the goal and whether
it is met, and the load average of each run. Files that no table function knows (other
benchmarks, the single-run format of earlier results, unreadable files) are listed, not rendered.

Adding a benchmark (e.g. ``bench/gateway.py`` or ``bench/mcp.py``, with their own JSON): write a
function ``(result: dict, path: str) -> list[str]`` returning Markdown lines and register it in
:data:`TABLES` under the benchmark's ``benchmark`` value. :func:`runs_table` renders the common
shape (``runs`` + a :func:`bench.stats.judge` summary).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- BEGIN bench/report.py: generated from bench/results/*.json, do not edit -->"
END = "<!-- END bench/report.py -->"
FORMAT = 2  # results with "runs" (several full runs) and a "summary"

Result = dict[str, Any]
TableFn = Callable[[Result, str], list[str]]


def ms(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or math.isnan(seconds):
        return "n/a"
    return f"{seconds * 1000:,.0f} ms"


def times(value: Any) -> str:
    if not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
        return "n/a"
    return f"{value:.2f}x"


def load(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], int | float):
        return f"{value[0]:.2f}"
    return "n/a"


def runs_table(
    title: str,
    judged: dict[str, Any],
    errors: Sequence[int],
    loadavg: Sequence[Any],
    run_errors: Sequence[str | None],
    goal: str | None,
) -> list[str]:
    """One table: a row per run, then the median row; the goal and its verdict below."""
    lines = [
        f"**{title}**",
        "",
        "| run | operator p99 | floor p99 | ratio | errors in the run | load avg (1 min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    operator, floor = judged.get("operatorP99s", []), judged.get("floorP99s", [])
    ratios = judged.get("runRatios", [])
    for i, (o, f) in enumerate(zip(operator, floor, strict=False)):
        failed = run_errors[i] if i < len(run_errors) else None
        note = f" (run failed: {failed})" if failed else ""
        r = ratios[i] if i < len(ratios) else None
        e = errors[i] if i < len(errors) else "n/a"
        la = loadavg[i] if i < len(loadavg) else None
        lines.append(f"| {i + 1}{note} | {ms(o)} | {ms(f)} | {times(r)} | {e} | {load(la)} |")
    spread = judged.get("spread") or [math.nan, math.nan]
    lines.append(
        f"| **median** | **{ms(judged.get('operatorMedianP99'))}** "
        f"(spread {ms(spread[0])} to {ms(spread[1])}) | **{ms(judged.get('floorMedianP99'))}** "
        f"| **{times(judged.get('ratio'))}** | | |"
    )
    lines.append("")
    if goal is not None:
        verdict = "met" if judged.get("goalMet") else "NOT met"
        measured = f"{judged.get('runsMeasured', 0)} of {judged.get('runsWanted', '?')} runs"
        lines += [f"Goal: {goal}, on the median of the runs' p99s: **{verdict}** ({measured}).", ""]
    return lines


def _header(result: Result, path: str) -> list[str]:
    started, command = result.get("startedAt", "?"), result.get("command", "?")
    quick = (result.get("parameters") or {}).get("quick")
    return [
        f"Result `{path}`, started {started}, `{command}`; "
        f"load average at start {load(result.get('loadavgAtStart'))}."
        + (" **A smoke run (`--quick`), not a measurement.**" if quick else ""),
        "",
    ]


def sessions_tables(result: Result, path: str) -> list[str]:
    s = result["summary"]
    args = (s.get("errorsPerRun", []), s.get("loadavg", []), s.get("runErrors", []))
    ready = s["ready"]
    lines = ["### Sessions (`bench/sessions.py`)", "", *_header(result, path)]
    lines += runs_table(
        "Session-ready: create -> token reads (HTTP 200)",
        ready,
        *args,
        goal=f"operator <= {ready.get('goalRatio', 2.0):g}x the floor",
    )
    lines += runs_table(
        "Revocation: end -> old token refused (403)", s["revocation403"], *args, goal=None
    )
    rss, active = s.get("rssWithSessionsMiB", []), s.get("rssActiveSessions", [])
    rate = s.get("activationPerSecond", [])
    lines += [
        "**Many sessions: operator memory and activation rate**",
        "",
        "| run | active sessions | operator RSS | sessions/s |",
        "|---|---:|---:|---:|",
    ]
    for i in range(len(rss)):
        n = active[i] if i < len(active) else math.nan
        r = rate[i] if i < len(rate) else math.nan
        lines.append(
            f"| {i + 1} | {_num(n, '.0f')} | {_num(rss[i], '.1f')} MiB | {_num(r, '.1f')} |"
        )
    lines.append("")
    many = s.get("manySessions")
    if many:
        verdict = "met" if many.get("goalMet") else "NOT met"
        lines += [
            f"Goal: {many['goalSessions']:,} sessions Active at >= {many['goalPerSecond']:g}"
            f" sessions/s with operator RSS <= {many['goalRssMiB']:g} MiB, on the medians of the"
            f" runs ({_num(many['perSecondMedian'], '.1f')} sessions/s,"
            f" {_num(many['rssMiBMedian'], '.1f')} MiB; {many['runsAtGoalSize']} run(s) at"
            f" that size): **{verdict}**.",
            "",
        ]
    return lines


def remediation_tables(result: Result, path: str) -> list[str]:
    s = result["summary"]
    args = (s.get("errorsPerRun", []), s.get("loadavg", []), s.get("runErrors", []))
    approval = s["approval"]
    goal = (
        f"operator <= {approval.get('goalSeconds', 0.3) * 1000:.0f} ms and <= "
        f"{approval.get('goalRatio', 2.0):g}x the floor"
    )
    return [
        "### Remediation (`bench/remediation.py`)",
        "",
        *_header(result, path),
        *runs_table("Approval -> applied", approval, *args, goal=goal),
        *runs_table("Auto request -> applied", s["auto"], *args, goal=None),
    ]


def _num(value: Any, spec: str) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    return format(value, spec)


def faults_tables(result: Result, path: str) -> list[str]:
    """``bench/faults.py``: each figure per run, its median and spread (min-max)."""
    runs = result["runs"]
    lines = ["### Fault injection (`bench/faults.py`)", "", *_header(result, path)]
    p = result.get("parameters") or {}
    lines += [
        f"Outages of {_num(p.get('outage'), '.0f')} s; churn of {_num(p.get('churn'), '.0f')} s "
        f"with {p.get('kills', '?')} `kill -9`s of the operator per run.",
        "",
        "| figure | "
        + " | ".join(f"run {r.get('run', i + 1)}" for i, r in enumerate(runs))
        + " | median | spread |",
        "|---|" + "---:|" * (len(runs) + 2),
    ]
    for key, s in (result.get("summary") or {}).items():
        cells = [_num((r.get("figures") or {}).get(key), ".1f") for r in runs]
        spread = s.get("spread") or [math.nan, math.nan]
        lines.append(
            f"| {FAULT_LABELS.get(key, key)} | "
            + " | ".join(cells)
            + f" | {_num(s.get('median'), '.1f')} | "
            f"{_num(spread[0], '.1f')}-{_num(spread[1], '.1f')} |"
        )
    churn = [r.get("churn") or {} for r in runs]
    lines += [
        "",
        "Churn per run (sessions, each with one request): "
        + ", ".join(str(c.get("sessions", "n/a")) for c in churn)
        + "; load average at the start of each run: "
        + ", ".join(load(r.get("loadavgAtStart")) for r in runs)
        + ".",
        "",
    ]
    return lines


FAULT_LABELS = {
    "ttlApiserverDown": "access past TTL, apiserver down (s)",
    "ttlApiserverBack": "… of which after the apiserver was back (s)",
    "ttlOperatorDown": "access past TTL, operator down (s)",
    "ttlOperatorBack": "… of which after the operator was ready (s)",
    "endAcrossApiserverOutage": "apiserver back → ended session refused (s)",
    "duplicateRecordIds": "records holding a record id twice",
    "duplicateTransitions": "transitions recorded twice",
    "targetsChangedTwice": "targets changed more than once",
    "unsettled": "objects left without a final phase",
    "trailVerified": "`audit verify` accepted the trail (1 = yes)",
}


TABLES: dict[str, TableFn] = {
    "sessions": sessions_tables,
    "remediation": remediation_tables,
    "faults": faults_tables,
    # More benchmarks register here (see the module docstring): "gateway": gateway_tables, ...
}


def classify(results: pathlib.Path) -> tuple[dict[str, tuple[str, Result]], list[tuple[str, str]]]:
    """The newest renderable result per known kind, and every other result file with why not."""
    newest: dict[str, tuple[str, str, Result]] = {}  # kind -> (sort key, name, result)
    others: list[tuple[str, str]] = []
    for path in sorted(results.glob("*.json")):
        name = path.name
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            others.append((name, f"unreadable: {e}"))
            continue
        if not isinstance(data, dict):
            others.append((name, "not a JSON object"))
            continue
        kind = str(data.get("benchmark") or name.split("-", 1)[0])
        if kind not in TABLES:
            others.append((name, f"benchmark {kind!r}: no table for it in bench/report.py yet"))
            continue
        if data.get("format") != FORMAT or "summary" not in data:
            others.append((name, f"{kind}: an earlier single-run result format"))
            continue
        key = str(data.get("startedAt") or name)
        if kind in newest and newest[kind][0] >= key:
            others.append((name, f"{kind}: older than the newest"))
            continue
        if kind in newest:
            previous = newest[kind]
            others.append((previous[1], f"{kind}: older than the newest"))
        newest[kind] = (key, name, data)
    return {k: (n, d) for k, (_, n, d) in newest.items()}, sorted(others)


def render(results: pathlib.Path) -> str:
    """The generated part of the page (between and including the markers)."""
    known, others = classify(results)
    lines = [BEGIN, ""]
    if not known:
        lines += ["No results in the current format yet: run the benchmarks.", ""]
    for kind in TABLES:
        if kind in known:
            name, data = known[kind]
            try:
                lines += TABLES[kind](data, f"bench/results/{name}")
            except (KeyError, TypeError, IndexError) as e:
                lines += [f"`bench/results/{name}`: could not be rendered ({e!r}).", ""]
    if others:
        lines += ["Other result files (not rendered):", ""]
        lines += [f"- `bench/results/{name}`: {why}" for name, why in others]
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def splice(page: str, generated: str) -> str:
    """``page`` with its generated part replaced (or appended when it has none)."""
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + generated.rstrip("\n") + tail
    return page.rstrip("\n") + "\n\n" + generated


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--results", type=pathlib.Path, default=RESULTS)
    p.add_argument("--doc", type=pathlib.Path, default=DOC)
    p.add_argument("--check", action="store_true", help="fail if the page is out of date")
    args = p.parse_args(argv)
    page = args.doc.read_text() if args.doc.exists() else "# Benchmarks\n"
    updated = splice(page, render(args.results))
    if args.check:
        if updated != page:
            print(f"{args.doc} is out of date: run bench/report.py", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(updated)
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
