"""Render the result tables of ``docs/benchmarks.md`` from the JSON results in ``bench/results/``.

    .venv/bin/python bench/report.py            # rewrite the generated part of the page
    .venv/bin/python bench/report.py --check    # exit 1 if the page is not what it would write

Only the part between :data:`BEGIN` and :data:`END` is written; the prose around it is not touched.
For each benchmark kind (the ``benchmark`` field of a result) the newest result file is rendered:
every run, the spread, the median of the runs' p99s, the ratio to the floor, the goal and whether
it is met, and the load average of each run. Files that no table function knows (other
benchmarks, the single-run format of earlier results, unreadable files) are listed, not rendered.

Adding a benchmark: write a function ``(result: dict, path: str) -> list[str]`` returning
Markdown lines and register it in :data:`TABLES` under the benchmark's ``benchmark`` value (or the
file name's prefix, ``gateway-<time>.json``). :func:`runs_table` renders the common shape
(``runs`` + a :func:`bench.stats.judge` summary). A benchmark whose JSON has another shape (as
``bench/gateway.py`` and ``bench/mcp.py``: ``runs`` and a median block, no ``format``) also
registers in :data:`ACCEPTS` a test of which of its files the function can render.
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
sys.path.insert(0, str(ROOT))

from bench import stats  # noqa: E402

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
    started, command = result.get("startedAt", "?"), result.get("command")
    quick = (result.get("parameters") or {}).get("quick")
    at_start = result.get("loadavgAtStart") or (result.get("machine") or {}).get("loadavg")
    return [
        f"Result `{path}`, started {started}"
        + (f", `{command}`" if command else "")
        + f"; load average at start {load(at_start)}."
        + (" **A smoke run (`--quick`), not a measurement.**" if quick else ""),
        "",
    ]


def _ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23x``; n/a when either is missing."""
    value = stats.ratio(_number(a), _number(b))
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


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
    floor = s.get("floorActivationPerSecond", [])
    floor_op = s.get("floorOperatorIdentityActivationPerSecond", [])
    header = (
        "| run | active sessions | operator RSS | sessions/s | floor issue/s | floor / operator |"
    )
    rule = "|---|---:|---:|---:|---:|---:|"
    if floor_op:
        header += " floor (operator's id) issue/s |"
        rule += "---:|"
    lines += ["**Many sessions: operator memory and activation rate**", "", header, rule]
    for i in range(len(rss)):
        n = active[i] if i < len(active) else math.nan
        r = rate[i] if i < len(rate) else math.nan
        f = floor[i] if i < len(floor) else math.nan
        row = (
            f"| {i + 1} | {_num(n, '.0f')} | {_num(rss[i], '.1f')} MiB | {_num(r, '.1f')} |"
            f" {_num(f, '.1f')} | {_ratio(f, r)} |"
        )
        if floor_op:
            row += f" {_num(floor_op[i] if i < len(floor_op) else math.nan, '.1f')} |"
        lines.append(row)
    lines.append("")
    if floor:
        lines += [
            "The floor is the same number of `credentials.issue` calls (the operator's calls for"
            " each session), as many in flight as sessions were, made directly in the same run"
            " with the admin client"
            + (
                "; the floor with the operator's id makes them as the operator's own user, so"
                " each Role and RoleBinding write passes the apiserver's escalation check."
                if floor_op
                else "."
            ),
            "",
        ]
    lines += cpu_table(s.get("cpu"))
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


def cpu_table(cpu: dict[str, Any] | None) -> list[str]:
    """CPU per session, all processes together, against what each goal leaves (the ``cpu``
    block of the sessions summary); nothing for results without it."""
    if not cpu:
        return []
    ready = cpu.get("readyCpuMsPerSession") or {}
    operator = ready.get("operator") or []
    if all(math.isnan(_number(v)) for v in operator):
        return []

    def cell(values: Sequence[Any], i: int) -> str:
        text = _num(_number(values[i]) if i < len(values) else math.nan, ".0f")
        return text if text == "n/a" else f"{text} ms"

    lines = [
        f"**CPU per session, every process together ({cpu.get('cores', '?')} cores), against"
        " what the goals leave**",
        "",
        "| run | ready: operator | ready: floor | ready: floor (operator's id) | ready: left by"
        " the goal | 1,000 sessions: operator | … without the operator's own | left by the"
        " goal | 1,000 `issue` calls: floor (operator's id) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    budget = cell([cpu.get("manyBudgetMsPerSession")], 0)
    for i in range(len(operator)):
        lines.append(
            f"| {i + 1} | {cell(operator, i)} | {cell(ready.get('floor') or [], i)}"
            f" | {cell(ready.get('floorOperatorIdentity') or [], i)}"
            f" | {cell(cpu.get('readyBudgetMsPerSession') or [], i)}"
            f" | {cell(cpu.get('manyCpuMsPerSession') or [], i)}"
            f" | {cell(cpu.get('manyCpuMsPerSessionWithoutOperator') or [], i)}"
            f" | {budget} | {cell(cpu.get('manyFloorOperatorIdentityCpuMsPerIssue') or [], i)} |"
        )
    lines += [
        "",
        "Ready: the CPU seconds of each batch (its sessions started at once; median of the run's"
        " batches)"
        " per session. A batch cannot end before its CPU seconds over the cores, so the ready"
        " goal leaves the operator at most goal ratio x the floor's p99 x cores / sessions per"
        " session; the 1,000-session phase's goal rate leaves cores / rate. The last column is"
        " the CPU of the same phase's floor with the operator's identity: the credential calls"
        " alone, made as the operator's user, with no operator running.",
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


# -- bench/gateway.py ----------------------------------------------------------------------------

# The goals of the session gateway (issue 10), each judged on the median of the runs:
# (label, path in the ``median`` block, path in a run, at most ms).
GATEWAY_GOALS: list[tuple[str, tuple[str, ...], tuple[str, ...], float]] = [
    (
        "added GET latency at 200 rps, p50",
        ("latency", "200rps", "addedP50Ms"),
        ("latency", "200rps", "addedP50Ms"),
        2.0,
    ),
    (
        "added GET latency at 200 rps, p99",
        ("latency", "200rps", "addedP99Ms"),
        ("latency", "200rps", "addedP99Ms"),
        10.0,
    ),
    (
        "revocation → first 401, p99",
        ("revocationTo401Ms", "p99Ms"),
        ("revocationTo401Ms", "p99Ms"),
        50.0,
    ),
    (
        "revocation → open stream closed, p99",
        ("revocationToStreamClosedMs", "p99Ms"),
        ("revocationToStreamClosedMs", "p99Ms"),
        100.0,
    ),
    (
        "forbidden request → session Revoked, p99",
        ("forbiddenToRevokedMs", "gateway", "p99Ms"),
        ("forbiddenToRevokedMs", "gateway", "p99Ms"),
        100.0,
    ),
]

# Phases whose samples can be missed (no 401, stream not closed, never Revoked in time).
GATEWAY_SAMPLED = [
    ("revocationTo401Ms",),
    ("directRevocationTo401Ms",),
    ("revocationToStreamClosedMs",),
    ("forbiddenToRevokedMs", "gateway"),
    ("forbiddenToRevokedMs", "direct"),
]


def _at(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _gateway_rows() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(label, path in a run, path in the ``median`` block) of every figure, in table order."""
    rows: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    for rate in (1, 50, 200):
        key = f"{rate}rps"
        for q in ("p50", "p99"):
            rows += [
                (f"GET at {rate} rps, gateway {q} (ms)", ("latency", key, "gateway", f"{q}Ms"),
                 ("latency", key, f"gateway{q.upper()}Ms")),
                (f"GET at {rate} rps, direct {q} (ms)", ("latency", key, "direct", f"{q}Ms"),
                 ("latency", key, f"direct{q.upper()}Ms")),
                (f"GET at {rate} rps, **added {q}** (ms)", ("latency", key, f"added{q.upper()}Ms"),
                 ("latency", key, f"added{q.upper()}Ms")),
            ]  # fmt: skip
        rows.append(
            (
                f"GET at {rate} rps, gateway rate achieved (req/s)",
                ("latency", key, "gateway", "achievedRps"),
                ("latency", key, "gatewayAchievedRps"),
            )
        )
    for mode in ("gateway", "direct"):
        rows.append(
            (f"throughput ceiling, {mode} (req/s)", ("ceiling", mode, "rps"), ("ceilingRps", mode))
        )
    for mode, note in (("gateway", ""), ("direct", ", background only")):
        rows.append(
            (
                f"operator CPU per request, {mode}{note} (ms)",
                ("ceiling", mode, "operatorCpuMsPerRequest"),
                ("operatorCpuMsPerRequest", mode),
            )
        )
    rows.append(("memory per open stream (KiB)", ("streams", "kibPerStream"), ("kibPerStream",)))
    for key, label in (
        ("revocationTo401Ms", "revocation → first 401, gateway"),
        ("directRevocationTo401Ms", "revocation → first 401, direct (apiserver)"),
        ("revocationToStreamClosedMs", "revocation → open stream closed, gateway"),
    ):
        for q in ("p50", "p99"):
            rows.append((f"{label} {q} (ms)", (key, f"{q}Ms"), (key, f"{q}Ms")))
    for mode, label in (("gateway", "gateway"), ("direct", "audit webhook")):
        for q in ("p50", "p99"):
            path = ("forbiddenToRevokedMs", mode, f"{q}Ms")
            rows.append((f"forbidden → session Revoked, {label} {q} (ms)", path, path))
    return rows


def _gateway_median(
    result: Result, runs: Sequence[Any], run_path: Sequence[str], median_path: Sequence[str]
) -> float:
    """The median of the runs as ``bench/gateway.py`` wrote it, else computed from the runs."""
    written = _number(_at(result.get("median"), median_path))
    if not math.isnan(written):
        return written
    return stats.median([_number(_at(r, run_path)) for r in runs])


def gateway_tables(result: Result, path: str) -> list[str]:
    """``bench/gateway.py``: each figure per run, the median of the runs and the spread (min-max);
    each goal judged on the median, not met when fewer than 3 runs gave it a number or a run
    missed samples of the phase."""
    runs = result["runs"]
    if not isinstance(runs, list):
        raise TypeError("runs is not a list")
    p = result.get("parameters") or {}
    lines = ["### Session gateway (`bench/gateway.py`)", "", *_header(result, path)]
    lines += [
        f"{len(runs)} run(s); GETs for {_num(p.get('seconds_at_1'), 'g')} s at 1 rps and"
        f" {_num(p.get('seconds'), 'g')} s at 50 and 200 rps; {p.get('streams', '?')} streams;"
        f" {p.get('revocations', '?')} revocations through the gateway,"
        f" {p.get('direct_revocations', '?')} direct; {p.get('forbidden', '?')} forbidden requests"
        " each way.",
        "",
        "| figure | "
        + " | ".join(f"run {i + 1}" for i in range(len(runs)))
        + " | median | spread |",
        "|---|" + "---:|" * (len(runs) + 2),
    ]
    for label, run_path, median_path in _gateway_rows():
        values = [_number(_at(r, run_path)) for r in runs]
        present = [v for v in values if not math.isnan(v)]
        lo, hi = (min(present), max(present)) if present else (math.nan, math.nan)
        med = _gateway_median(result, runs, run_path, median_path)
        f = ",.2f" if "CPU" in label else ",.1f"
        lines.append(
            f"| {label} | "
            + " | ".join(_num(v, f) for v in values)
            + f" | {_num(med, f)} | {_num(lo, f)}-{_num(hi, f)} |"
        )
    missed = [
        sum(int(v) for k in GATEWAY_SAMPLED if not math.isnan(v := _number(_at(r, (*k, "missed")))))
        for r in runs
    ]
    still_open = [_at(r, ("directWatchStillOpenAfter5s",)) for r in runs]
    lines += [
        "| samples missed (no 401, not closed, not Revoked) | "
        + " | ".join(str(m) for m in missed)
        + f" | | {min(missed, default=0)}-{max(missed, default=0)} |",
        "| direct watch still open 5 s after its session ended | "
        + " | ".join({True: "yes", False: "no"}.get(v, "n/a") for v in still_open)
        + " | | |",
        "| load average (1 min) at the start of the run | "
        + " | ".join(load(r.get("loadavgAtStart") if isinstance(r, dict) else None) for r in runs)
        + " | | |",
        "",
    ]
    for label, median_path, run_path, limit in GATEWAY_GOALS:
        values = [_number(_at(r, run_path)) for r in runs]
        measured = len([v for v in values if not math.isnan(v)])
        med = _gateway_median(result, runs, run_path, median_path)
        phase = run_path[:-1]
        missed_any = any(_number(_at(r, (*phase, "missed"))) > 0 for r in runs)
        met = measured >= stats.DEFAULT_RUNS and not missed_any and med <= limit
        why = f"{measured} of {stats.DEFAULT_RUNS} runs" + (
            "; samples missed" if missed_any else ""
        )
        lines.append(
            f"- Goal: {label} <= {limit:g} ms, on the median of the runs"
            f" ({_num(med, ',.1f')} ms; {why}): **{'met' if met else 'NOT met'}**."
        )
    lines.append("")
    return lines


# -- bench/mcp.py --------------------------------------------------------------------------------

MCP_GOAL_RATIO = 1.5  # bench/mcp.py: "the median over runs of the p99 ratio (goal: at most 1.5)"
MCP_TOOLS = (("get_resource", "get"), ("propose_remediation", "propose"))


def mcp_tables(result: Result, path: str) -> list[str]:
    """``bench/mcp.py``: p50/p99 of each tool call and its direct call per run, the p99 ratio per
    run and its median over the runs, judged against :data:`MCP_GOAL_RATIO`."""
    runs = result["runs"]
    if not isinstance(runs, list):
        raise TypeError("runs is not a list")
    m = result.get("machine") or {}
    calls = _at(runs[0], ("get_mcp", "n")) if runs else None
    lines = [
        "### MCP tools (`bench/mcp.py`)",
        "",
        f"Result `{path}`, {len(runs)} run(s) of {calls if calls is not None else '?'} calls"
        f" of each; load average (1 min) before {load(m.get('loadavg_before'))},"
        f" after {load(m.get('loadavg_after'))} (not recorded per run).",
        "",
        "| run | tool | MCP p50 | MCP p99 | direct p50 | direct p99 | ratio p99 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs):
        for tool, key in MCP_TOOLS:
            cells = [
                _num(_number(_at(r, (f"{key}_{side}", f"{q}_ms"))), ",.1f") + " ms"
                for side in ("mcp", "direct")
                for q in ("p50", "p99")
            ]
            ratio = _number(_at(r, ("ratio_p99", tool)))
            lines.append(f"| {i + 1} | `{tool}` | " + " | ".join(cells) + f" | {times(ratio)} |")
    medians = result.get("median_ratio_p99") or {}
    verdicts = []
    for tool, _ in MCP_TOOLS:
        med = _number(medians.get(tool))
        if math.isnan(med):
            med = stats.median([_number(_at(r, ("ratio_p99", tool))) for r in runs])
        lines.append(f"| **median** | `{tool}` | | | | | **{times(med)}** |")
        measured = len([r for r in runs if not math.isnan(_number(_at(r, ("ratio_p99", tool))))])
        met = measured >= stats.DEFAULT_RUNS and med <= MCP_GOAL_RATIO
        verdicts.append(
            f"- Goal: `{tool}` MCP p99 <= {MCP_GOAL_RATIO:g}x direct, on the median of the runs'"
            f" ratios ({times(med)}; {measured} of {stats.DEFAULT_RUNS} runs):"
            f" **{'met' if met else 'NOT met'}**."
        )
    return [*lines, "", *verdicts, ""]


TABLES: dict[str, TableFn] = {
    "sessions": sessions_tables,
    "remediation": remediation_tables,
    "faults": faults_tables,
    "gateway": gateway_tables,
    "mcp": mcp_tables,
    # More benchmarks register here (see the module docstring).
}


def _format2(data: Result) -> bool:
    return data.get("format") == FORMAT and "summary" in data


# Which files of a kind its table function renders (default: :func:`_format2`).
# bench/gateway.py keeps its runs even when writing the ``median`` block failed: the medians are
# then computed from the runs.
ACCEPTS: dict[str, Callable[[Result], bool]] = {
    "gateway": lambda d: isinstance(d.get("runs"), list),
    "mcp": lambda d: isinstance(d.get("runs"), list),
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
        if not ACCEPTS.get(kind, _format2)(data):
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
