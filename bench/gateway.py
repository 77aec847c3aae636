"""Benchmark: what the session gateway costs and how fast it cuts off, beside direct calls.

    .venv/bin/python bench/gateway.py [--runs 3] [--quick]

Starts its own local control plane and the real operator (a subprocess under its own ClusterRole,
with the gateway on), opens sessions under two grants with the same read scope, one in
``gateway`` mode and one in ``direct`` mode, and measures in the same run:

1. **Added latency of a GET** (``configmaps/<name>``, a small object) at 1, 50 and 200
   requests/s, open loop (requests start on a fixed schedule, whatever the answers do): the
   gateway session through the gateway, then the direct session straight at the apiserver with
   the same rights. One request function for both (only the base URL and the token differ).
   Reported: p50/p99 of each and the difference (the gateway's added latency).
2. **Throughput ceiling**: 32 closed-loop workers for a few seconds, through the gateway and
   direct.
3. **Memory per open stream**: the operator's VmRSS before and after opening ``--streams``
   watches through the gateway, divided by their number.
4. **Revocation → first 401**: a poller hits the gateway every 5 ms while the agent patches
   ``spec.ended: true``; the time to its first 401. Beside it the direct session's token at the
   apiserver (bounded by the apiserver's 10 s token cache; fewer samples, it is slow).
5. **Revocation → open stream closed**: a watch opened through the gateway, then the session
   ended; time until the stream ends. A direct-mode watch is checked to be still open after 5 s
   (RBAC is checked when a watch starts, so it never closes on revocation).
6. **Forbidden request → session revoked**: time from a forbidden GET to ``phase: Revoked``,
   through the gateway and, direct, through the apiserver's audit webhook (1 s batches).

``--runs`` repeats phases 1-6 on the same cluster, with a freshly started operator each time
(memory per stream is measured first, before any load); the report gives each run and the
median of the runs. The load average is recorded at the start and end of each run: the machine
is shared, and a single-threaded Python gateway suffers more from CPU contention than the
multi-threaded apiserver it is compared with. Prints a table; writes
``bench/results/gateway-<time>.json`` (``--out DIR``: elsewhere, for exploratory runs). Bounded:
a few minutes per run; every request loop has a fixed count or deadline and targets 127.0.0.1
only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime
import gc
import json
import os
import pathlib
import platform
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from kubernetes import client  # noqa: E402
from tests.e2e import agents  # noqa: E402
from tests.e2e.operator_process import OperatorProcess  # noqa: E402

from agent_authority.cli import dev  # noqa: E402
from agent_authority.kube import clients, manifests  # noqa: E402
from agent_authority.localcluster import cluster  # noqa: E402
from agent_authority.models import GROUP, VERSION  # noqa: E402
from bench import harness  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AGENT, AGENT_GROUP = "bench-gw-agent", "bench-gw-agents"
NS, SHOP = "bench-gw", "bench-gw-shop"
RATES = (1, 50, 200)


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


@dataclasses.dataclass
class Target:
    """Where one session's requests go: the gateway or the apiserver."""

    name: str
    base: str
    token: str
    ssl: ssl.SSLContext


# -- the world -----------------------------------------------------------------------------------


def grant_spec(mode: str) -> dict[str, Any]:
    return {
        "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
        "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
        "read": [
            {
                "name": "shop",
                "namespaces": [SHOP],
                "resources": ["configmaps", "pods"],
                "verbs": ["get", "list", "watch"],
            }
        ],
        "session": {"maxTtlSeconds": 3600, "maxConcurrentSessions": 1000, "accessMode": mode},
    }


def setup(local: cluster.LocalCluster, admin: Any) -> None:
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    for name in (NS, SHOP):
        core.create_namespace({"metadata": {"name": name}})
    manifests.apply(clients.api_client(str(local.kubeconfig)), dev.session_namespace_rbac([NS]))
    manifests.apply(clients.api_client(str(local.kubeconfig)), dev.scope_namespace_rbac([SHOP]))
    rbac.create_namespaced_role(
        NS,
        {
            "metadata": {"name": "open"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "patch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": "open"},
            "roleRef": {"apiGroup": agents.RBAC, "kind": "Role", "name": "open"},
            "subjects": [{"kind": "Group", "name": AGENT_GROUP, "apiGroup": agents.RBAC}],
        },
    )
    core.create_namespaced_config_map(SHOP, {"metadata": {"name": "small"}, "data": {"k": "v"}})
    for mode in ("gateway", "direct"):
        agents.create_grant(admin, f"bench-{mode}", grant_spec(mode))


def open_session(local: cluster.LocalCluster, admin: Any, agent: Any, mode: str) -> Target:
    name = agents.unique(f"b{mode[0]}")
    agents.open_session(agent, NS, agents.session_body(name, f"bench-{mode}", ttlSeconds=3600))
    body = agents.wait_phase(admin, NS, name, {"Active", "Denied"}, timeout=60)
    assert body["status"]["phase"] == "Active", body["status"]
    secret = client.CoreV1Api(agent).read_namespaced_secret(body["status"]["secretName"], NS)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    if mode == "gateway":
        context = ssl.create_default_context(cadata=data["ca.crt"])
        return Target(name, data["server"], data["token"], context)
    context = ssl.create_default_context(cafile=str(local.ca_file))
    return Target(name, local.url, data["token"], context)


def end_session(agent: Any, name: str) -> None:
    agents.end_session(agent, NS, name)


# -- requests ------------------------------------------------------------------------------------


class Caller:
    """One pooled HTTPS client; the same GET for every target (only base URL and token differ)."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, ssl=False),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def get(self, target: Target, path: str) -> tuple[int, float]:
        started = time.perf_counter()
        async with self.session.get(
            target.base + path, headers={"Authorization": f"Bearer {target.token}"}, ssl=target.ssl
        ) as response:
            await response.read()
            return response.status, time.perf_counter() - started

    async def close(self) -> None:
        await self.session.close()


OBJECT = f"/api/v1/namespaces/{SHOP}/configmaps/small"


async def open_loop(caller: Caller, target: Target, rate: int, seconds: float) -> dict[str, Any]:
    """Start ``rate`` GETs a second for ``seconds``, on schedule; latencies of the 200s.

    The benchmark's own garbage collector is off while a series runs (and collects before it):
    a full collection of this process's heap, which grows over the runs, stalled it for 80-190 ms
    mid-series, and whichever series it landed in (gateway or direct) got that as its p99."""
    gc.collect()
    gc.disable()
    try:
        return await _open_loop(caller, target, rate, seconds)
    finally:
        gc.enable()


async def _open_loop(caller: Caller, target: Target, rate: int, seconds: float) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.05
    results: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            results.append(await caller.get(target, OBJECT))
        except (aiohttp.ClientError, TimeoutError):
            results.append((0, 0.0))

    await asyncio.gather(*(one(i) for i in range(count)))
    ok = [t for code, t in results if code == 200]
    return {
        "requests": count,
        "ok": len(ok),
        "p50Ms": ms(pct(ok, 50)),
        "p99Ms": ms(pct(ok, 99)),
        "maxMs": ms(max(ok) if ok else None),
        "achievedRps": round(count / max(1e-9, time.perf_counter() - start), 1),
    }


async def ceiling(
    caller: Caller, target: Target, seconds: float, pid: int, workers: int = 32
) -> dict[str, Any]:
    """Closed-loop throughput, and the operator's CPU time per request meanwhile."""
    deadline = time.perf_counter() + seconds
    done = 0
    cpu_before = harness.cpu_seconds(pid)

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            code, _ = await caller.get(target, OBJECT)
            done += code == 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    used = harness.cpu_seconds(pid) - cpu_before
    return {
        "rps": round(done / (time.perf_counter() - started), 1),
        "operatorCpuMsPerRequest": round(used * 1000 / max(1, done), 3),
    }


async def poll_until(
    check: Callable[[], Awaitable[bool]], within: float, every: float = 0.005
) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if await check():
            return time.perf_counter() - started
        await asyncio.sleep(every)
    return None


async def open_watch(caller: Caller, target: Target) -> aiohttp.ClientResponse:
    response = await caller.session.get(
        target.base + f"/api/v1/namespaces/{SHOP}/configmaps?watch=true",
        headers={"Authorization": f"Bearer {target.token}"},
        ssl=target.ssl,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    assert response.status == 200, response.status
    await response.content.readline()  # the ADDED event of the existing object
    return response


async def stream_end(response: aiohttp.ClientResponse) -> None:
    try:
        while await response.content.readany():
            pass
    except aiohttp.ClientError:
        pass


# -- one run -------------------------------------------------------------------------------------


async def run_once(
    args: argparse.Namespace, local: cluster.LocalCluster, admin: Any, agent: Any, pid: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()

    async def blocking(fn: Callable[..., Any], *a: Any) -> Any:
        return await loop.run_in_executor(None, fn, *a)

    caller = Caller()
    out: dict[str, Any] = {}
    try:
        out["loadavgAtStart"] = [round(x, 2) for x in os.getloadavg()]
        streaming = await blocking(open_session, local, admin, agent, "gateway")
        gw = await blocking(open_session, local, admin, agent, "gateway")
        direct = await blocking(open_session, local, admin, agent, "direct")
        for target in (gw, direct):  # warm the connection pools and the token caches
            for _ in range(20):
                assert (await caller.get(target, OBJECT))[0] == 200, target.name

        before = harness.status_kib(pid, "VmRSS")
        streams = [await open_watch(caller, streaming) for _ in range(args.streams)]
        await asyncio.sleep(1)
        after = harness.status_kib(pid, "VmRSS")
        out["streams"] = {
            "open": len(streams),
            "rssBeforeMiB": round(before / 1024, 1),
            "rssAfterMiB": round(after / 1024, 1),
            "kibPerStream": round((after - before) / max(1, len(streams)), 1),
        }
        say(f"streams: {out['streams']}")
        started = time.perf_counter()
        await blocking(end_session, agent, streaming.name)
        await asyncio.gather(*(stream_end(s) for s in streams))
        out["streams"]["allClosedAfterEndMs"] = ms(time.perf_counter() - started)
        for s in streams:
            s.close()

        latency: dict[str, Any] = {}
        for rate in RATES:
            seconds = args.seconds_at_1 if rate == 1 else args.seconds
            g = await open_loop(caller, gw, rate, seconds)
            d = await open_loop(caller, direct, rate, seconds)
            latency[f"{rate}rps"] = {
                "gateway": g,
                "direct": d,
                "addedP50Ms": _diff(g["p50Ms"], d["p50Ms"]),
                "addedP99Ms": _diff(g["p99Ms"], d["p99Ms"]),
            }
            say(
                f"{rate:>4} rps: gateway p50 {g['p50Ms']} p99 {g['p99Ms']} ms | direct p50 "
                f"{d['p50Ms']} p99 {d['p99Ms']} ms"
            )
        out["latency"] = latency
        out["ceiling"] = {
            "gateway": await ceiling(caller, gw, args.ceiling_seconds, pid),
            "direct": await ceiling(caller, direct, args.ceiling_seconds, pid),
        }
        say(f"ceiling: {out['ceiling']}")

        out["revocationTo401Ms"] = await _revocations(
            args.revocations, blocking, local, admin, agent, caller, "gateway"
        )
        out["directRevocationTo401Ms"] = await _revocations(
            args.direct_revocations, blocking, local, admin, agent, caller, "direct"
        )
        out["revocationToStreamClosedMs"] = await _stream_cuts(
            args.revocations, blocking, local, admin, agent, caller
        )
        out["directWatchStillOpenAfter5s"] = await _direct_watch_survives(
            blocking, local, admin, agent, caller
        )
        out["forbiddenToRevokedMs"] = {
            mode: await _forbidden(args.forbidden, blocking, local, admin, agent, caller, mode)
            for mode in ("gateway", "direct")
        }
        say(f"revocation -> 401 {out['revocationTo401Ms']}")
        say(f"direct revocation -> 401 {out['directRevocationTo401Ms']}")
        say(f"revocation -> stream closed {out['revocationToStreamClosedMs']}")
        say(f"forbidden -> revoked {out['forbiddenToRevokedMs']}")
        out["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await caller.close()
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _summary(values: list[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    return {
        "n": len(values),
        "missed": len(values) - len(got),
        "p50Ms": ms(pct(got, 50)),
        "p99Ms": ms(pct(got, 99)),
        "maxMs": ms(max(got) if got else None),
    }


async def _revocations(
    n: int, blocking: Any, local: Any, admin: Any, agent: Any, caller: Caller, mode: str
) -> dict[str, Any]:
    took: list[float | None] = []
    for _ in range(n):
        target = await blocking(open_session, local, admin, agent, mode)
        assert (await caller.get(target, OBJECT))[0] == 200

        async def unauthorized(t: Target = target) -> bool:
            return (await caller.get(t, OBJECT))[0] == 401

        ending = loop_task(blocking(end_session, agent, target.name))
        took.append(await poll_until(unauthorized, within=20))
        await ending
    return _summary(took)


def loop_task(work: Awaitable[Any]) -> asyncio.Future[Any]:
    return asyncio.ensure_future(work)


async def _stream_cuts(
    n: int, blocking: Any, local: Any, admin: Any, agent: Any, caller: Caller
) -> dict[str, Any]:
    took: list[float | None] = []
    for _ in range(n):
        target = await blocking(open_session, local, admin, agent, "gateway")
        watch = await open_watch(caller, target)
        started = time.perf_counter()
        await blocking(end_session, agent, target.name)
        try:
            await asyncio.wait_for(stream_end(watch), timeout=10)
            took.append(time.perf_counter() - started)
        except TimeoutError:
            took.append(None)
        watch.close()
    return _summary(took)


async def _direct_watch_survives(
    blocking: Any, local: Any, admin: Any, agent: Any, caller: Caller
) -> bool:
    target = await blocking(open_session, local, admin, agent, "direct")
    watch = await open_watch(caller, target)
    await blocking(end_session, agent, target.name)
    try:
        await asyncio.wait_for(stream_end(watch), timeout=5)
        survived = False
    except TimeoutError:
        survived = True
    watch.close()
    return survived


async def _forbidden(
    n: int, blocking: Any, local: Any, admin: Any, agent: Any, caller: Caller, mode: str
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(admin)
    took: list[float | None] = []
    for _ in range(n):
        target = await blocking(open_session, local, admin, agent, mode)
        started = time.perf_counter()
        code, _ = await caller.get(target, f"/api/v1/namespaces/{SHOP}/secrets")
        assert code == 403, code

        async def revoked(name: str = target.name) -> bool:
            body = await blocking(
                custom.get_namespaced_custom_object, GROUP, VERSION, NS, "incidentsessions", name
            )
            return bool((body.get("status") or {}).get("phase") == "Revoked")

        polled = await poll_until(revoked, within=20, every=0.01)
        took.append(None if polled is None else time.perf_counter() - started)
    return _summary(took)


# -- the report ----------------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"latency": {}}
    for rate in RATES:
        key = f"{rate}rps"
        summary["latency"][key] = {
            name: median_of(runs, "latency", key, *path)
            for name, path in {
                "gatewayP50Ms": ("gateway", "p50Ms"),
                "gatewayP99Ms": ("gateway", "p99Ms"),
                "directP50Ms": ("direct", "p50Ms"),
                "directP99Ms": ("direct", "p99Ms"),
                "addedP50Ms": ("addedP50Ms",),
                "addedP99Ms": ("addedP99Ms",),
                "gatewayAchievedRps": ("gateway", "achievedRps"),
            }.items()
        }
    summary["ceilingRps"] = {m: median_of(runs, "ceiling", m, "rps") for m in ("gateway", "direct")}
    summary["operatorCpuMsPerRequest"] = {
        m: median_of(runs, "ceiling", m, "operatorCpuMsPerRequest") for m in ("gateway", "direct")
    }
    summary["loadavg1mAtStart"] = [(r.get("loadavgAtStart") or [None])[0] for r in runs]
    summary["kibPerStream"] = median_of(runs, "streams", "kibPerStream")
    for key in ("revocationTo401Ms", "directRevocationTo401Ms", "revocationToStreamClosedMs"):
        summary[key] = {q: median_of(runs, key, q) for q in ("p50Ms", "p99Ms", "maxMs")}
    summary["forbiddenToRevokedMs"] = {
        mode: {q: median_of(runs, "forbiddenToRevokedMs", mode, q) for q in ("p50Ms", "p99Ms")}
        for mode in ("gateway", "direct")
    }
    summary["directWatchStillOpenAfter5s"] = [r.get("directWatchStillOpenAfter5s") for r in runs]
    return summary


def print_table(summary: dict[str, Any]) -> None:
    print("\nsession gateway vs direct (median of runs; ms unless stated)")
    print(f"{'GET at':>8} {'gw p50':>8} {'gw p99':>8} {'dir p50':>8} {'dir p99':>8} "
          f"{'+p50':>7} {'+p99':>7}")  # fmt: skip
    for key, row in summary["latency"].items():
        print(
            f"{key:>8} {row['gatewayP50Ms']!s:>8} {row['gatewayP99Ms']!s:>8} "
            f"{row['directP50Ms']!s:>8} {row['directP99Ms']!s:>8} {row['addedP50Ms']!s:>7} "
            f"{row['addedP99Ms']!s:>7}"
        )
    c = summary["ceilingRps"]
    print(f"throughput ceiling: gateway {c['gateway']} req/s, direct {c['direct']} req/s")
    cpu = summary["operatorCpuMsPerRequest"]
    print(
        f"operator CPU per request: gateway {cpu['gateway']} ms, direct {cpu['direct']} ms "
        "(direct: the operator's background work only)"
    )
    print(f"memory per open stream: {summary['kibPerStream']} KiB")
    for key, label in (
        ("revocationTo401Ms", "revocation -> first 401 (gateway)"),
        ("directRevocationTo401Ms", "revocation -> first 401 (direct, apiserver)"),
        ("revocationToStreamClosedMs", "revocation -> stream closed (gateway)"),
    ):
        row = summary[key]
        print(f"{label}: p50 {row['p50Ms']} p99 {row['p99Ms']} max {row['maxMs']}")
    f = summary["forbiddenToRevokedMs"]
    print(
        f"forbidden -> revoked: gateway p50 {f['gateway']['p50Ms']} p99 {f['gateway']['p99Ms']}; "
        f"audit webhook p50 {f['direct']['p50Ms']} p99 {f['direct']['p99Ms']}"
    )
    print(
        f"direct watch still open 5 s after session end: {summary['directWatchStillOpenAfter5s']}"
    )
    print(f"load average (1 min) at the start of each run: {summary['loadavg1mAtStart']}")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="per rate (50, 200 rps)")
    parser.add_argument("--seconds-at-1", type=float, default=20, help="at 1 rps")
    parser.add_argument("--ceiling-seconds", type=float, default=5)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--revocations", type=int, default=10)
    parser.add_argument("--direct-revocations", type=int, default=2)
    parser.add_argument("--forbidden", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run (1 run, short phases)")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=RESULTS,
        help="directory of the result JSON (default bench/results; exploratory runs: /tmp)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds, args.seconds_at_1, args.ceiling_seconds = 1, 3, 5, 2
        args.streams, args.revocations, args.direct_revocations, args.forbidden = 20, 3, 1, 2
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    result: dict[str, Any] = {"startedAt": stamp, "parameters": vars(args), "machine": machine()}
    local = cluster.LocalCluster(
        cluster.Options(audit_url=f"https://127.0.0.1:{free_port()}/audit")
    )
    operator: OperatorProcess | None = None
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        try:
            local.start()
            say(f"control plane ready in {local.startup_seconds:.1f} s")
            audit_port = int(local.options.audit_url.rsplit(":", 1)[1].split("/")[0])
            env = dev.prepare(
                local,
                metrics_port=free_port(),
                webhook_port=free_port(),
                audit_port=audit_port,
                gateway_port=free_port(),
            )
            env.options.alert_port = free_port()  # not the default: other operators may run
            operator = OperatorProcess(local, env, pathlib.Path(tmp) / "operator.log")
            operator.start(timeout=60)
            admin = agents.as_user(local, "bench-admin", ["system:masters"])
            agent = agents.as_user(local, AGENT, [AGENT_GROUP])
            setup(local, admin)
            runs: list[dict[str, Any]] = []
            result["runs"] = runs
            for i in range(args.runs):
                if i:  # a fresh operator per run: memory per stream is measured from its start
                    operator.restart()
                pid = operator._proc.pid if operator._proc else 0
                say(f"run {i + 1}/{args.runs} (operator pid {pid})")
                runs.append(asyncio.run(run_once(args, local, admin, agent, pid)))
            result["median"] = report(runs)
        finally:
            if operator is not None:
                operator.stop()
            local.stop()
            if result.get("runs"):  # whatever was measured is kept, even if reporting fails
                args.out.mkdir(parents=True, exist_ok=True)
                out = args.out / f"gateway-{stamp}.json"
                out.write_text(json.dumps(result, indent=2, default=str) + "\n")
                say(f"results in {out}")
    print_table(result["median"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
