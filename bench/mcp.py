"""Benchmark: tool call → result through ``agent-authority mcp`` beside the same direct calls.

    .venv/bin/python bench/mcp.py [--calls 40] [--runs 3]

Starts its own local control plane and the real operator (under its own ClusterRole), opens one
session through the MCP server (stdio, the SDK's own client), then measures, interleaved in the
same run, with the same session token:

1. ``get_resource`` of a Deployment: the tool call → result, against the direct call
   ``kube.agentapi.get`` with the session token (what the tool runs: kubectl's one GET);
2. ``propose_remediation`` (scale beyond the auto limit, so the decision is AwaitingApproval with
   a dry-run diff and no change): the tool call → result, against ``mcp.tools.submit`` called
   directly with the same request body (create, then reads until the operator decided).

The direct calls share the code path the tools run (house rule: a floor measures the same
calls), so the ratio is the MCP server's own cost: JSON-RPC over stdio, schema-free argument
handling, the rules check, the periodic session refresh, the result encoding. Each run prints
p50/p99; the summary is the median over runs of the p99 ratio (goal: at most 1.5). Writes
``bench/results/mcp-<time>.json``. Bounded: a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
# This file is named mcp.py: keep its folder off the path so ``import mcp`` finds the SDK.
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from tests.e2e import agents  # noqa: E402
from tests.e2e.operator_process import OperatorProcess  # noqa: E402

from agent_authority.cli import dev  # noqa: E402
from agent_authority.kube import agentapi, clients  # noqa: E402
from agent_authority.localcluster import cluster  # noqa: E402
from agent_authority.mcp import tools  # noqa: E402
from agent_authority.models import GROUP  # noqa: E402

AGENT = "bench-mcp-agent"
NS, SHOP, GRANT = "bench-mcp-agents", "bench-mcp-shop", "bench-mcp"
EVIDENCE = [{"kind": "metric", "source": "bench", "excerpt": "p99 latency 2.4 s"}]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(_pct(values, 0.5) * 1000, 2),
        "p99_ms": round(_pct(values, 0.99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


def setup(local: cluster.LocalCluster, deployments: int) -> None:
    admin = agents.as_user(local, "admin", ["system:masters"])
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    for name in (NS, SHOP):
        core.create_namespace({"metadata": {"name": name}})
    agents.cluster_role(
        admin,
        "bench-mcp-agent",
        [
            {
                "apiGroups": [GROUP],
                "resources": ["incidentsessions"],
                "verbs": ["create", "get", "list", "watch", "patch"],
            }
        ],
        [AGENT],
    )
    agents.create_grant(
        admin,
        GRANT,
        {
            "subjects": [{"kind": "User", "name": AGENT}],
            "incidents": {"severities": ["SEV1"]},
            "read": [
                {
                    "name": "apps",
                    "namespaces": [SHOP],
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                }
            ],
            "remediations": [
                {
                    "action": "scale-workload",
                    "namespaces": [SHOP],
                    "autonomy": "auto",
                    "limits": {"maxReplicasDelta": 1},
                }
            ],
            "approval": {"timeoutSeconds": 3600},
            "session": {"maxTtlSeconds": 3600, "maxDeniedRequests": 1000},
        },
    )
    for i in range(deployments):
        apps.create_namespaced_deployment(
            SHOP,
            {
                "metadata": {"name": f"d{i}"},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": f"d{i}"}},
                    "template": {
                        "metadata": {"labels": {"app": f"d{i}"}},
                        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x"}]},
                    },
                },
            },
        )


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def _checked(result: Any) -> Any:
    if result.is_error:
        raise RuntimeError(result.content[0].text)
    return result.structured_content


async def measure(local: cluster.LocalCluster, calls: int, runs: int) -> dict[str, Any]:
    kubeconfig = local.user_kubeconfig(AGENT)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent_authority.cli.main", "mcp", "-n", NS, "--kubeconfig", str(kubeconfig)],
        env=dict(os.environ),
    )
    async with Client(params, cache=None) as mcp:
        opened = _checked(
            await mcp.call_tool(
                "open_session",
                {
                    "grant": GRANT,
                    "incident_id": "BENCH-1",
                    "severity": "SEV1",
                    "incident_class": "latency",
                    "purpose": "benchmark",
                },
            )
        )
        base = clients.api_client(str(kubeconfig))
        body = await agentapi.get_session(base, NS, opened["session"])
        token = await agentapi.session_token(base, NS, body["status"]["secretName"])
        direct = agentapi.with_token(base, token)
        get_args = {"resource": "deployments", "name": "d0", "namespace": SHOP}

        def propose_args(i: int, side: str) -> dict[str, Any]:
            return {
                "action": "scale-workload",
                "target": {"kind": "Deployment", "namespace": SHOP, "name": f"d{i}"},
                "params": {"replicas": 3},  # +3 is beyond the auto limit: AwaitingApproval
                "hypothesis": "benchmark",
                "evidence": EVIDENCE,
                "name": f"{side}-{i}",
            }

        async def tool_get() -> None:
            _checked(await mcp.call_tool("get_resource", get_args))

        async def direct_get() -> None:
            await agentapi.get(direct, "apps", "deployments", SHOP, "d0")

        for _ in range(5):  # warm-up, not measured
            await tool_get()
            await direct_get()
        out: dict[str, Any] = {"runs": []}
        index = 0
        for run in range(runs):
            samples: dict[str, list[float]] = {k: [] for k in ("get_mcp", "get_direct")}
            samples.update({"propose_mcp": [], "propose_direct": []})
            for i in range(calls):
                first, second = (tool_get, direct_get) if i % 2 == 0 else (direct_get, tool_get)
                for call in (first, second):
                    key = "get_mcp" if call is tool_get else "get_direct"
                    samples[key].append(await _timed(call))
            for i in range(calls):
                mcp_args = propose_args(index, f"mcp{run}")
                direct_args = propose_args(index + 1, f"direct{run}")
                index += 2

                async def tool_propose(a: dict[str, Any] = mcp_args) -> None:
                    view = _checked(await mcp.call_tool("propose_remediation", a))
                    assert view["phase"] == "AwaitingApproval", view

                async def direct_propose(a: dict[str, Any] = direct_args) -> None:
                    body = tools.request_body(opened["session"], a)
                    done = await tools.submit(direct, NS, body)
                    assert done["status"]["phase"] == "AwaitingApproval", done["status"]

                order = (
                    (tool_propose, direct_propose)
                    if i % 2 == 0
                    else (
                        direct_propose,
                        tool_propose,
                    )
                )
                for call in order:
                    key = "propose_mcp" if call is tool_propose else "propose_direct"
                    samples[key].append(await _timed(call))
            summary = {k: _summary(v) for k, v in samples.items()}
            summary["ratio_p99"] = {
                "get_resource": round(
                    summary["get_mcp"]["p99_ms"] / summary["get_direct"]["p99_ms"], 2
                ),
                "propose_remediation": round(
                    summary["propose_mcp"]["p99_ms"] / summary["propose_direct"]["p99_ms"], 2
                ),
            }
            out["runs"].append(summary)
            print(f"run {run + 1}: " + json.dumps(summary["ratio_p99"]), flush=True)
        await mcp.call_tool("end_session", {})
    out["median_ratio_p99"] = {
        key: statistics.median(r["ratio_p99"][key] for r in out["runs"])
        for key in ("get_resource", "propose_remediation")
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per measurement and run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    audit_port = _port()
    local = cluster.LocalCluster(cluster.Options(audit_url=f"https://127.0.0.1:{audit_port}/audit"))
    local.start()
    operator: OperatorProcess | None = None
    try:
        env = dev.prepare(local, metrics_port=_port(), webhook_port=_port(), audit_port=audit_port)
        env.options.alert_port = _port()
        log = pathlib.Path(tempfile.mkdtemp(prefix="bench-mcp-")) / "operator.log"
        operator = OperatorProcess(local, env, log)
        operator.start()
        setup(local, deployments=2 * args.calls * args.runs + 2)
        results = asyncio.run(measure(local, args.calls, args.runs))
    finally:
        if operator is not None:
            operator.stop()
        local.stop()
    results["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    print(f"{'run':>3}  {'measurement':<15} {'p50 ms':>8} {'p99 ms':>8}")
    for n, run in enumerate(results["runs"], 1):
        for key in ("get_mcp", "get_direct", "propose_mcp", "propose_direct"):
            print(f"{n:>3}  {key:<15} {run[key]['p50_ms']:>8} {run[key]['p99_ms']:>8}")
    print(f"median p99 ratio MCP/direct over runs: {json.dumps(results['median_ratio_p99'])}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"mcp-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
