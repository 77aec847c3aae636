"""Fault injection: the outage scenarios of issue 14, on the local control plane, with figures.

A program, not a test. Each of ``--runs`` (3) runs starts its own local control plane and the
real operator (``agent-authority run`` as a child process, under its own ClusterRole, with its
signed audit trail), then:

1. **TTL with the apiserver down**: a session whose TTL passes while kube-apiserver is stopped
   (from 3 s before the TTL for ``--outage`` s). Figure: how long after its TTL the session's
   token still read (HTTP 200 on its own pods list), polled every 0.1 s around the outage.
2. **TTL with the operator down**: the same with the operator SIGKILLed 3 s before the TTL and
   started again ``--outage`` s later.
3. **End → 403 across an apiserver outage**: the operator is paused (SIGSTOP) while the session
   is ended, the apiserver is stopped 1 s later, the operator resumed, the apiserver started
   again after ``--outage`` s. Figure: apiserver back → the token no longer reads. (The session
   UPDATE webhook is the operator's and fails closed while it is paused, so its configuration
   is deleted for this step; the restart that follows puts it back. The admission policies
   still guard the update.)
4. **Churn with ``kill -9``**: for ``--churn`` s, sessions are opened and ended, each with a
   RemediationRequest scaling its own Deployment from 0 to 1 (applied without approval), while
   the operator is SIGKILLed ``--kills`` times and started again at once. Then everything is
   let settle. Figures: records in the trail holding a record id twice, transitions recorded
   twice (same object, same once-per-object event), targets changed more than once (their
   ``metadata.generation``), objects left without a final phase, and whether
   ``agent-authority audit verify`` accepts the trail.

Figures are per run; the summary gives the median and the spread (min, max) of the runs. It
writes ``bench/results/faults-<UTC date-time>.json``; ``bench/report.py`` renders the newest one
into ``docs/benchmarks.md``.

Usage (from the repository root)::

    .venv/bin/python bench/faults.py              # 3 runs, 10 s outages, 40 s churn, 5 kills
    .venv/bin/python bench/faults.py --quick      # 1 run, 5 s outages, 10 s churn, 1 kill
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# ``tests.e2e`` (agents, probe) lives in the checkout, not in the installed package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from kubernetes import client
from tests.e2e import agents, probe

from agent_authority.audit import attribution
from agent_authority.cli import dev
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from bench import harness, stats

say = harness.say
AGENT, AGENT_GROUP = "agent-faults", "fault-agents"
SESSIONS_NS, SHOP_NS = "faults-agents", "faults-shop"
GRANT = "faults"
POLL = 0.1
SETTLE_TIMEOUT = 180.0
ONCE = {e.value for e in attribution.ONCE_PER_OBJECT} | {"SessionTerminal"}
FIGURES = {
    "ttlApiserverDown": "access past TTL, apiserver down (s)",
    "ttlApiserverBack": "  of which after the apiserver was back (s)",
    "ttlOperatorDown": "access past TTL, operator down (s)",
    "ttlOperatorBack": "  of which after the operator was ready (s)",
    "endAcrossApiserverOutage": "apiserver back -> ended session refused (s)",
    "duplicateRecordIds": "records holding a record id twice",
    "duplicateTransitions": "transitions recorded twice",
    "targetsChangedTwice": "targets changed more than once",
    "unsettled": "objects left without a final phase",
    "trailVerified": "audit verify accepted the trail (1 = yes)",
}


# -- the world -----------------------------------------------------------------------------------


class World:
    """One run's control plane, operator and clients."""

    def __init__(self, local: cluster.LocalCluster, operator: harness.BenchOperator) -> None:
        self.local = local
        self.operator = operator
        self.admin = agents.as_user(local, "admin", ["system:masters"])
        self.agent = agents.as_user(local, AGENT, [AGENT_GROUP])

    def setup(self) -> None:
        core = client.CoreV1Api(self.admin)
        for name in (SESSIONS_NS, SHOP_NS):
            core.create_namespace({"metadata": {"name": name}})
        agents.allow_sessions_in(self.local, SESSIONS_NS)
        agents.allow_scopes_in(self.local, SHOP_NS)
        agents.cluster_role(
            self.admin,
            "faults-agent",
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
            self.admin,
            GRANT,
            {
                "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
                "incidents": {"severities": ["SEV1", "SEV2"]},
                "read": [
                    {
                        "name": "shop",
                        "namespaces": [SHOP_NS],
                        "apiGroups": ["", "apps"],
                        "resources": ["pods", "deployments"],
                    }
                ],
                "remediations": [
                    {
                        "action": "scale-workload",
                        "namespaces": [SHOP_NS],
                        "autonomy": "auto",
                        "limits": {"maxReplicasDelta": 1},
                    }
                ],
                "session": {"maxTtlSeconds": 900, "maxConcurrentSessions": 500},
            },
        )

    def open(self, name: str, ttl: int = 600, timeout: float = 60) -> tuple[dict[str, Any], str]:
        agents.open_session(
            self.agent, SESSIONS_NS, agents.session_body(name, GRANT, ttlSeconds=ttl)
        )
        body = agents.wait_phase(self.admin, SESSIONS_NS, name, {"Active", "Denied"}, timeout)
        if body["status"]["phase"] != "Active":
            raise RuntimeError(f"session {name} was denied: {body['status']}")
        return body, agents.token_of(self.agent, SESSIONS_NS, body)

    def code(self, token: str) -> int | None:
        """The HTTP status of the token's read now; None while the apiserver is unreachable."""
        try:
            return probe.status(self.local, f"/api/v1/namespaces/{SHOP_NS}/pods", token)
        except OSError:
            return None

    def reads(self, token: str) -> bool:
        return self.code(token) == 200


class Poller(threading.Thread):
    """Polls a token every 0.1 s and remembers when it last read."""

    def __init__(self, world: World, token: str) -> None:
        super().__init__(daemon=True)
        self.world, self.token = world, token
        self.answers: list[tuple[float, int | None]] = []  # (when, HTTP status or unreachable)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            code = self.world.code(self.token)
            self.answers.append((time.monotonic(), code))
            self._stop_event.wait(POLL)

    @property
    def last_read(self) -> float | None:
        return max((t for t, code in self.answers if code == 200), default=None)

    def answered_after(self, since: float) -> float | None:
        """When the apiserver first answered (any status) at or after ``since``."""
        return min((t for t, code in self.answers if t >= since and code is not None), default=None)

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(10)


def _expires_in(body: dict[str, Any]) -> float:
    expires = datetime.datetime.fromisoformat(body["status"]["expiresAt"])
    return (expires - datetime.datetime.now(datetime.UTC)).total_seconds()


def _wait_refused(w: World, token: str, timeout: float) -> float:
    """Seconds until the token no longer reads (NaN if it still does after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not w.reads(token):
            return time.monotonic() - started
        time.sleep(POLL / 2)
    return float("nan")


# -- scenarios -----------------------------------------------------------------------------------


def _past_ttl(
    w: World,
    name: str,
    outage: float,
    down: Callable[[], None],
    up: Callable[[], None],
    apiserver: bool,
) -> tuple[float, float]:
    """Access past TTL when ``down`` runs 3 s before it and ``up`` ``outage`` s later; and how
    much of it came after the component was back (the apiserver's first answer; the operator
    ready)."""
    body, token = w.open(name, ttl=int(outage) + 15)  # the TTL passes 3 s into the outage
    poller = Poller(w, token)
    poller.start()
    try:
        deadline = time.monotonic() + _expires_in(body)
        time.sleep(max(0.0, deadline - time.monotonic() - 3))
        down_at = time.monotonic()
        down()
        try:
            time.sleep(outage)
        finally:
            up()
        back = time.monotonic()
        refused = _wait_refused(w, token, 120)
        time.sleep(1)
    finally:
        poller.stop()
    if refused != refused:  # NaN: never refused
        return float("nan"), float("nan")
    last = poller.last_read or deadline
    if apiserver:
        back = poller.answered_after(down_at + outage) or back
    return max(0.0, last - deadline), max(0.0, last - back)


def ttl_apiserver_down(w: World, outage: float) -> tuple[float, float]:
    return _past_ttl(
        w,
        agents.unique("ttl-api"),
        outage,
        w.local.stop_apiserver,
        w.local.start_apiserver,
        apiserver=True,
    )


def ttl_operator_down(w: World, outage: float) -> tuple[float, float]:
    return _past_ttl(
        w,
        agents.unique("ttl-op"),
        outage,
        w.operator.kill,
        lambda: w.operator.start(timeout=90),
        apiserver=False,
    )


def end_across_apiserver_outage(w: World, outage: float) -> float:
    name = agents.unique("end-api")
    _, token = w.open(name)
    webhooks = client.AdmissionregistrationV1Api(w.admin)
    webhooks.delete_validating_webhook_configuration("agentauthority.io")
    time.sleep(2)  # the apiserver stops calling the webhooks
    poller = Poller(w, token)
    try:
        w.operator.pause()
        try:
            agents.end_session(w.agent, SESSIONS_NS, name)
            time.sleep(1.0)  # the watch event reaches the paused operator's socket
            w.local.stop_apiserver()
        finally:
            w.operator.resume()
        down_at = time.monotonic()
        poller.start()
        time.sleep(outage)
        w.local.start_apiserver()
        refused = _wait_refused(w, token, 120)
        if refused != refused:  # NaN: never refused
            return refused
        time.sleep(1)
        poller.stop()
        back = poller.answered_after(down_at + outage)
        if back is None:
            return float("nan")
        return max(0.0, (poller.last_read or back) - back)
    finally:
        poller.stop()
        w.operator.stop()
        w.operator.start(timeout=90)  # puts its webhook configurations back


def churn_with_kills(
    w: World, seconds: float, kills: int, trail: pathlib.Path, key: pathlib.Path
) -> dict[str, Any]:
    """Sessions and requests opened and ended while the operator is killed ``kills`` times."""
    apps = client.AppsV1Api(w.admin)
    custom = client.CustomObjectsApi(w.admin)
    stop = threading.Event()
    opened: list[str] = []
    made: list[tuple[str, str]] = []  # (session, request)
    errors: list[str] = []

    def worker(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            name = f"churn-{index}-{n}"
            try:
                apps.create_namespaced_deployment(SHOP_NS, _deployment(name))
                _, token = w.open(name, timeout=90)
                opened.append(name)
                session_api = _token_client(w.local, token)
                request = f"{name}-rr"
                client.CustomObjectsApi(session_api).create_namespaced_custom_object(
                    GROUP, VERSION, SESSIONS_NS, "remediationrequests", _scale(name, request)
                )
                made.append((name, request))
                time.sleep(1.0)
                agents.end_session(w.agent, SESSIONS_NS, name)
            except Exception as e:  # the operator being down refuses creates: expected, counted
                errors.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
                time.sleep(1.0)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(3)]
    for t in workers:
        t.start()
    interval = seconds / (kills + 1)
    for k in range(kills):
        time.sleep(interval)
        say(f"churn: kill -9 {k + 1}/{kills}")
        w.operator.kill()
        w.operator.start(timeout=90)
    time.sleep(interval)
    stop.set()
    for t in workers:
        t.join(120)

    # Sessions opened but not yet ended when the workers stopped are ended now.
    for name in opened:
        with contextlib.suppress(client.ApiException):
            agents.end_session(w.agent, SESSIONS_NS, name)
    unsettled = _settle(w, custom, opened, made)
    # Each request scales its own Deployment from 0 to 1: one change makes generation 2.
    changed_twice = sum(
        int(apps.read_namespaced_deployment(name, SHOP_NS).metadata.generation or 0) > 2
        for name, _ in made
    )
    records = [json.loads(line) for line in trail.read_text().splitlines() if line.strip()]
    ids = collections.Counter(r.get("recordId") for r in records if r.get("recordId"))
    transitions = collections.Counter(
        ((r.get("object") or {}).get("uid"), _kind(r["event"]))
        for r in records
        if _kind(r["event"]) in ONCE
    )
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            "audit",
            "verify",
            str(trail),
            "--public-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return {
        "sessions": len(opened),
        "requests": len(made),
        "kills": kills,
        "createErrors": len(errors),
        "createErrorSamples": errors[:5],
        "records": len(records),
        "duplicateRecordIds": sum(c - 1 for c in ids.values() if c > 1),
        "duplicateTransitions": sum(c - 1 for c in transitions.values() if c > 1),
        "targetsChangedTwice": changed_twice,
        "unsettled": unsettled,
        "trailVerified": int(verified.returncode == 0),
        "verifyOutput": (verified.stdout + verified.stderr).strip()[-500:],
    }


SESSION_TERMINAL_EVENTS = {e.value for e in attribution.SESSION_TERMINAL}


def _kind(event: str) -> str:
    return "SessionTerminal" if event in SESSION_TERMINAL_EVENTS else event


def _settle(w: World, custom: Any, sessions: Sequence[str], made: Sequence[tuple[str, str]]) -> int:
    """Wait until every session and request reached a final phase; how many did not."""
    final_sessions = {"Ended", "Expired", "Revoked", "Denied"}
    final_requests = {"Succeeded", "Failed", "Denied", "Cancelled", "Expired", "RolledBack"}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    left = len(sessions) + len(made)
    while time.monotonic() < deadline:
        left = 0
        for name in sessions:
            s = custom.get_namespaced_custom_object(
                GROUP, VERSION, SESSIONS_NS, "incidentsessions", name
            )
            left += int((s.get("status") or {}).get("phase") not in final_sessions)
        for _, request in made:
            r = custom.get_namespaced_custom_object(
                GROUP, VERSION, SESSIONS_NS, "remediationrequests", request
            )
            left += int((r.get("status") or {}).get("phase") not in final_requests)
        if left == 0:
            return 0
        time.sleep(2)
    return left


def _deployment(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/x"}]},
            },
        },
    }


def _scale(session: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RemediationRequest",
        "metadata": {"name": name},
        "spec": {
            "sessionRef": {"name": session},
            "action": {
                "type": "scale-workload",
                "target": {"kind": "Deployment", "namespace": SHOP_NS, "name": session},
                "params": {"replicas": 1},
            },
            "hypothesis": "one more replica absorbs the load",
            "evidence": [
                {
                    "kind": "metric",
                    "source": "prometheus",
                    "excerpt": "p99 latency 2.4 s",
                    "sha256": "a" * 64,
                    "observedAt": "2026-11-21T07:00:00Z",
                }
            ],
        },
    }


def _token_client(local: cluster.LocalCluster, token: str) -> Any:
    configuration = client.Configuration()
    configuration.host = local.url
    configuration.ssl_ca_cert = str(local.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


# -- the program -----------------------------------------------------------------------------------


def run_once(args: argparse.Namespace, result: dict[str, Any], base: pathlib.Path) -> None:
    """One run on its own control plane and operator; fills ``result`` as it goes."""
    result["loadavgAtStart"] = [round(x, 2) for x in os.getloadavg()]
    local = cluster.LocalCluster(
        cluster.Options(audit_url=f"https://127.0.0.1:{harness.free_port()}/audit")
    )
    operator: harness.BenchOperator | None = None
    try:
        local.start()
        say(f"control plane ready in {local.startup_seconds:.1f} s at {local.url}")
        audit_port = int(local.options.audit_url.rsplit(":", 1)[1].split("/")[0])
        env = dev.prepare(
            local,
            metrics_port=harness.free_port(),
            webhook_port=harness.free_port(),
            audit_port=audit_port,
        )
        trail = base.parent / f"{base.name}.audit.jsonl"
        env.options.audit_trail = str(trail)
        env.options.alert_port = 0  # no Alertmanager here; its default port may be taken
        operator = harness.BenchOperator(local, env, base.parent / f"{base.name}.operator.log")
        operator.start(timeout=60)
        w = World(local, operator)
        w.setup()
        figures = result.setdefault("figures", {})
        say("scenario: TTL passes with the apiserver down")
        figures["ttlApiserverDown"], figures["ttlApiserverBack"] = ttl_apiserver_down(
            w, args.outage
        )
        say("scenario: TTL passes with the operator down")
        figures["ttlOperatorDown"], figures["ttlOperatorBack"] = ttl_operator_down(w, args.outage)
        say("scenario: end -> 403 across an apiserver outage")
        figures["endAcrossApiserverOutage"] = end_across_apiserver_outage(w, args.outage)
        say(f"scenario: churn for {args.churn:.0f} s with {args.kills} kill -9")
        churn = churn_with_kills(
            w, args.churn, args.kills, trail, trail.with_name(trail.name + ".key.pub")
        )
        result["churn"] = churn
        for key in (
            "duplicateRecordIds",
            "duplicateTransitions",
            "targetsChangedTwice",
            "unsettled",
            "trailVerified",
        ):
            figures[key] = churn[key]
        print_run(result)
    finally:
        if operator is not None:
            operator.stop()
        local.stop()
        result["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread (min, max) of each figure over the runs that measured it."""
    out: dict[str, Any] = {}
    for key in FIGURES:
        values = [float(r["figures"][key]) for r in runs if key in r.get("figures", {})]
        present = [v for v in values if v == v]
        out[key] = {
            "median": stats.median(values),
            "spread": [min(present), max(present)] if present else [float("nan")] * 2,
            "runs": len(values),
        }
    return out


def print_run(result: dict[str, Any]) -> None:
    for key, label in FIGURES.items():
        if key in result.get("figures", {}):
            print(f"  {label:<48} {result['figures'][key]:>8.2f}")


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\n{'figure':<48} {'median':>8} {'min':>8} {'max':>8} runs")
    for key, label in FIGURES.items():
        s = summary[key]
        print(
            f"{label:<48} {s['median']:>8.2f} {s['spread'][0]:>8.2f} {s['spread'][1]:>8.2f}"
            f" {s['runs']}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=stats.DEFAULT_RUNS, help="full runs (median)")
    p.add_argument("--outage", type=float, default=10.0, help="s each outage lasts")
    p.add_argument("--churn", type=float, default=40.0, help="s of session/request churn")
    p.add_argument("--kills", type=int, default=5, help="kill -9 of the operator during churn")
    p.add_argument("--quick", action="store_true", help="1 run, 5 s outages, 10 s churn, 1 kill")
    p.add_argument("--out", type=pathlib.Path, default=None, help="JSON result file")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.outage, args.churn, args.kills = 1, 5.0, 10.0, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.stop_on_sigterm()
    stamp = harness.stamp()
    out = args.out or harness.RESULTS / f"faults-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = harness.result_header("faults", args, stamp)
    result["otherControlPlanesAtStart"] = harness.other_control_planes([])
    failed = 0
    try:
        for i in range(args.runs):
            say(f"== run {i + 1}/{args.runs}")
            run: dict[str, Any] = {"run": i + 1}
            result["runs"].append(run)
            try:
                run_once(args, run, out.parent / f"{out.stem}.run{i + 1}")
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failed run is recorded; the next one still runs
                failed += 1
                run["error"] = f"{type(e).__name__}: {e}"
                say(f"run {i + 1} failed: {run['error']}")
    finally:
        result["summary"] = summarize(result["runs"])
        result["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]
        print_summary(result["summary"])
        harness.write_result(out, result)
        say(f"results in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
