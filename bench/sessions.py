"""Benchmark: IncidentSession latency and revocation, against a floor measured in the same run.

A program, not a test. It starts its own local control plane (etcd + kube-apiserver +
kube-controller-manager, see ``agent_authority.localcluster``) and the real operator as a child
process (``agent-authority run``, under its own restricted identity), then measures:

1. **Session-ready latency**: from the agent's ``create`` of an IncidentSession to the first
   successful read (HTTP 200 on ``GET /api/v1/namespaces/<shop>/pods``) with the token the operator
   minted, for ``--sessions`` sessions created at once, over ``--rounds`` rounds. Next to it the
   **floor**: the same objects (ServiceAccount, Secret, Roles, RoleBindings, TokenRequest bound to
   the Secret, token stored in the Secret) created by calling ``credentials.issue`` (the function
   the session controller calls: the same calls, order and overlap) directly with the admin
   client, for the same number of concurrent "sessions", then the token polled until it reads.
   Operator and floor batches take turns. Reported: p50/p99/max and the ratio operator/floor
   (goal: at most 1.5x at p99, judged on the median of the runs' p99s).
2. **Revocation latency**: for ``--revocations`` active sessions, ``spec.ended=true`` is patched
   (as the agent) and the old token is polled every ``--poll-ms`` until it gets 403 (RBAC gone) and
   then until it gets 401 (the token no longer authenticates). Floor: the RoleBindings, then the
   Secret and the ServiceAccount of a floor identity deleted directly with the admin client.
3. **Operator memory**: VmRSS of the operator process with 0 sessions (fresh, and again after the
   latency phases) and with ``--rss-sessions`` Active sessions, created ``--sessions`` at a time;
   and how long those took to become Active.

Each of ``--runs`` (3) full runs starts its own control plane and operator. A sample that fails
is recorded with its error (counted per run), never fatal; a failed run is recorded and the next
one runs. It prints tables, writes ``bench/results/sessions-<UTC date-time>.json`` (and keeps the
operator's JSON log of each run next to it), and stops every process it started, also on Ctrl-C
or SIGTERM. ``bench/report.py`` renders the docs tables from the JSON.

Usage (from the repository root)::

    .venv/bin/python bench/sessions.py                 # 3 runs of 50 sessions x 3 rounds, 30, 1000
    .venv/bin/python bench/sessions.py --quick         # a smoke run (about a minute)
    .venv/bin/python bench/sessions.py --trace         # also profile the operator's API calls

Besides the admin floor, the ready phase runs the same direct calls with the *operator's* identity:
a Role or RoleBinding created by anyone outside ``system:masters`` goes through the apiserver's RBAC
escalation check, which the operator (deliberately not cluster-admin) always pays.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime
import http.client
import json
import math
import os
import pathlib
import re
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

# ``tests.e2e`` (the operator-process helper) lives in the checkout, not in the installed package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from kubernetes import client, watch

from agent_authority.cli import dev
from agent_authority.kube import api, credentials, errors, manifests, session_refs
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION, base, grant
from bench import harness, stats

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLURAL = "incidentsessions"
AGENT = "agent-alice"
AGENT_GROUP = "ai-agents"
SESSIONS_NS = "bench-agents"
SHOP_NS = "bench-shop"
ROUND_LABEL = "bench.agentauthority.io/batch"
MAX_PER_GRANT = 1000  # AgentGrant.spec.session.maxConcurrentSessions is capped at 1000
TOKEN_SECONDS = 3600
WORKER_THREADS = 64  # the operator's own executor size (agent_authority.runtime.WORKER_THREADS)
READY_TIMEOUT = 60.0
GOAL_READY_RATIO = 1.5  # session-ready p99, operator / floor (median of runs; issue 8 item 3)
GOAL_SESSIONS = 1000  # the many-sessions goal is about this many Active sessions...
GOAL_PER_SECOND = 40.0  # ...becoming Active at least this fast (median of runs)...
GOAL_RSS_MIB = 200.0  # ...with the operator's RSS at most this (median of runs)
POD = "checkout-0"
RESULTS = ROOT / "bench" / "results"
T = TypeVar("T")


# -- small utilities ---------------------------------------------------------------------------


say = harness.say
percentile = stats.percentile
summary = stats.summary
ratio = stats.ratio


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


free_port = harness.free_port
kube_for = harness.kube_for


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> api.Json:
    """One API call; the response as JSON (``agent_authority.kube.api.sync``)."""
    return api.sync(fn, *args, **kwargs)


# -- processes: CPU and memory from /proc (bench/harness.py) ------------------------------------

status_kib = harness.status_kib
Processes = harness.Processes
Phase = harness.Phase
other_control_planes = harness.other_control_planes


class RssSampler(threading.Thread):
    """Samples the operator's VmRSS every second (the timeline goes into the JSON result)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.started = time.monotonic()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(1.0):
            rss = status_kib(self.pid, "VmRSS") / 1024
            self.samples.append((round(time.monotonic() - self.started, 1), round(rss, 1)))

    def stop(self) -> None:
        self._stop.set()


# -- presenting a token ----------------------------------------------------------------------------


class Prober:
    """Presents a bearer token to the apiserver over a kept-alive connection per poller."""

    def __init__(self, local: cluster.LocalCluster, poll_seconds: float) -> None:
        self.port = local.apiserver_port
        self.context = ssl.create_default_context(cafile=str(local.ca_file))
        self.every = poll_seconds

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=5)

    def status(self, conn: http.client.HTTPSConnection, path: str, token: str) -> int:
        for attempt in (1, 2):
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                return int(response.status)
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects on the next request
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def until(
        self,
        conn: http.client.HTTPSConnection,
        path: str,
        token: str,
        want: set[int],
        timeout: float,
    ) -> Poll:
        """Poll every ``self.every`` s until a status in ``want`` (or ``timeout`` s)."""
        result = Poll()
        started = time.monotonic()
        while True:
            sent = time.monotonic()
            code = self.status(conn, path, token)
            done = time.monotonic()
            result.polls += 1
            result.seen[code] += 1
            result.code = code
            if code in want:
                result.sent, result.done = sent, done
                return result
            result.previous_sent = sent
            if done - started > timeout:
                return result
            time.sleep(max(0.0, started + result.polls * self.every - time.monotonic()))


@dataclasses.dataclass
class Poll:
    """How polling ended: when the matching request was sent and answered (monotonic; None on
    timeout), when the poll before it was sent, the last status, and every status seen."""

    sent: float | None = None
    done: float | None = None
    previous_sent: float = 0.0
    code: int = 0
    polls: int = 0
    seen: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)


# -- the world: namespaces, the agent's RBAC, the grant(s) -----------------------------------------


def grant_spec(max_sessions: int) -> dict[str, Any]:
    return {
        "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency", "crashloop"]},
        "read": [
            {
                "name": "workloads",
                "namespaces": [SHOP_NS],
                "apiGroups": ["", "apps"],
                "resources": ["pods", "pods/log", "deployments"],
                "verbs": ["get", "list"],
            },
            {"name": "config", "namespaces": [SHOP_NS], "resources": ["configmaps"]},
        ],
        "session": {
            "maxTtlSeconds": TOKEN_SECONDS,
            "maxConcurrentSessions": max_sessions,
            # Probes racing the RBAC informer may see one 403; do not let it revoke the session.
            "maxDeniedRequests": 1000,
        },
    }


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def create_grant(admin: api.Kube, name: str, max_sessions: int) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentGrant",
        "metadata": {"name": name},
        "spec": grant_spec(max_sessions),
    }
    call(admin.custom.create_cluster_custom_object, GROUP, VERSION, "agentgrants", body)

    def valid() -> bool:
        found = call(admin.custom.get_cluster_custom_object, GROUP, VERSION, "agentgrants", name)
        conditions = (found.get("status") or {}).get("conditions", [])
        return any(c["type"] == "Valid" and c["status"] == "True" for c in conditions)

    wait_for(valid, 30, f"grant {name} to be Valid")


def setup_world(admin: api.Kube) -> None:
    core, rbac = admin.core, admin.rbac
    for ns in (SESSIONS_NS, SHOP_NS):
        call(core.create_namespace, {"metadata": {"name": ns}})
    # The operator writes identities and tokens only where its session Role is installed.
    manifests.apply(admin.client, dev.session_namespace_rbac([SESSIONS_NS]))
    manifests.apply(admin.client, dev.scope_namespace_rbac([SHOP_NS]))  # RBAC writes there
    call(
        core.create_namespaced_pod,
        SHOP_NS,
        {
            "metadata": {"name": POD, "labels": {"app": "checkout"}},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/checkout:1"}]},
        },
    )
    call(
        rbac.create_namespaced_role,
        SESSIONS_NS,
        {
            "metadata": {"name": "open-sessions"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "list", "watch", "patch"],
                }
            ],
        },
    )
    call(
        rbac.create_namespaced_role_binding,
        SESSIONS_NS,
        {
            "metadata": {"name": "open-sessions"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "open-sessions",
            },
            "subjects": [
                {"kind": "Group", "name": AGENT_GROUP, "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )


def session_body(name: str, grant_name: str, batch: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IncidentSession",
        "metadata": {"name": name, "labels": {ROUND_LABEL: batch}},
        "spec": {
            "grantRef": {"name": grant_name},
            "incident": {"id": f"INC-{batch}", "severity": "SEV2", "class": "latency"},
            "purpose": "benchmark",
            "ttlSeconds": TOKEN_SECONDS,
        },
    }


# -- watching sessions become Active --------------------------------------------------------------


class ActiveWatcher(threading.Thread):
    """One watch on the sessions namespace; records when each session is first seen Active.

    An agent would watch (or poll) its own session; one shared watch measures the same moment
    without adding 50 pollers' load to a 2-core machine.
    """

    def __init__(self, admin: api.Kube) -> None:
        super().__init__(daemon=True, name="active-watcher")
        self.custom = admin.custom
        self.lock = threading.Lock()
        self.active: dict[str, tuple[float, dict[str, Any]]] = {}
        self.phases: dict[str, str] = {}
        self.events: dict[str, threading.Event] = collections.defaultdict(threading.Event)
        self._stop = threading.Event()
        self.errors = 0

    def expect(self, name: str) -> threading.Event:
        with self.lock:
            return self.events[name]

    def seen(self, name: str) -> tuple[float, dict[str, Any]]:
        with self.lock:
            return self.active[name]

    def _see(self, body: dict[str, Any], now: float) -> None:
        name = body["metadata"]["name"]
        phase = (body.get("status") or {}).get("phase") or "Pending"
        with self.lock:
            self.phases[name] = phase
            if phase in {"Active", "Denied"} and name not in self.active:
                self.active[name] = (now, body)
                self.events[name].set()

    def run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = call(
                        self.custom.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        SESSIONS_NS,
                        PLURAL,
                    )
                    now = time.monotonic()
                    for item in listing["items"]:
                        self._see(item, now)
                    version = listing["metadata"]["resourceVersion"]
                stream = watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    SESSIONS_NS,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=10,
                ):
                    now = time.monotonic()
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "DELETED":
                        self._see(obj, now)
                    if self._stop.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except (errors.KubeError, client.ApiException) as e:
                self.errors += 1
                version = "" if e.status == 410 else version
                time.sleep(0.2)
            except Exception:  # connection reset and the like: retry from the last version
                self.errors += 1
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


# -- the operator path -----------------------------------------------------------------------------


@dataclasses.dataclass
class ReadySample:
    name: str
    ready: float | None
    steps: dict[str, float]
    refused_probes: int = 0
    error: str | None = None
    created_wall: float = 0.0


@dataclasses.dataclass
class Bench:
    local: cluster.LocalCluster
    admin: api.Kube
    agent: api.Kube
    watcher: ActiveWatcher
    prober: Prober
    grant: str
    floor: FloorClients
    shop_path: str = f"/api/v1/namespaces/{SHOP_NS}/pods"
    pod_path: str = f"/api/v1/namespaces/{SHOP_NS}/pods/{POD}"
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)


def read_token(agent: api.Kube, secret: str) -> str:
    """The session token, read the way the requester reads it (its RBAC on that one Secret)."""
    found = call(agent.core.read_namespaced_secret, secret, SESSIONS_NS)
    return base64.b64decode(found["data"]["token"]).decode()


def operator_session(b: Bench, name: str, batch: str, start: threading.Barrier) -> ReadySample:
    """:func:`_operator_session`, with any error recorded in the sample instead of raised."""
    try:
        return _operator_session(b, name, batch, start)
    except Exception as e:
        return ReadySample(name, None, {}, error=f"{type(e).__name__}: {e}")


def _operator_session(b: Bench, name: str, batch: str, start: threading.Barrier) -> ReadySample:
    """Create one session as the agent, wait for Active, read the token, poll until it reads.

    The token Secret is read once, at the instant Active is seen: a 403 there is an error of the
    sample (Active must mean usable), not something to retry."""
    done = b.watcher.expect(name)
    with contextlib.suppress(threading.BrokenBarrierError):  # another sample failed: go anyway
        start.wait(READY_TIMEOUT)
    wall, t0 = time.time(), time.monotonic()
    try:
        call(
            b.agent.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            SESSIONS_NS,
            PLURAL,
            session_body(name, b.grant, batch),
        )
    except errors.KubeError as e:
        return ReadySample(name, None, {}, error=f"create refused: {e.status} {e}")
    t_created = time.monotonic()
    if not done.wait(READY_TIMEOUT):
        phase = b.watcher.phases.get(name, "unseen")
        return ReadySample(name, None, {}, error=f"not Active after {READY_TIMEOUT:.0f} s: {phase}")
    t_active, body = b.watcher.seen(name)
    if body["status"]["phase"] != "Active":
        return ReadySample(name, None, {}, error=f"Denied: {body['status'].get('conditions')}")
    try:
        token = read_token(b.agent, body["status"]["secretName"])
    except errors.KubeError as e:
        return ReadySample(name, None, {}, error=f"token Secret unreadable at Active: {e.status}")
    t_token = time.monotonic()
    conn = b.prober.connect()
    try:
        poll = b.prober.until(conn, b.shop_path, token, {200}, READY_TIMEOUT)
    finally:
        conn.close()
    t_ready, polls = poll.done, poll.polls
    if t_ready is None:
        return ReadySample(name, None, {}, error=f"token never read: last status {poll.code}")
    b.tokens[name] = token
    steps = {
        "admission": t_created - t0,
        "createdToActive": max(0.0, t_active - t_created),
        "readToken": t_token - max(t_active, t_created),
        "firstRead": t_ready - t_token,
    }
    return ReadySample(name, t_ready - t0, steps, polls - 1, created_wall=wall)


def operator_batch(b: Bench, batch: str, count: int) -> list[ReadySample]:
    start = threading.Barrier(count)
    names = [f"op-{batch}-{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(count)]
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda n: operator_session(b, n, batch, start), names))


def delete_sessions(b: Bench, selector: str, timeout: float = 180) -> float:
    """Delete sessions (the operator revokes them and lifts its finalizer); seconds until gone."""
    custom = b.admin.custom
    started = time.monotonic()
    call(
        custom.delete_collection_namespaced_custom_object,
        GROUP,
        VERSION,
        SESSIONS_NS,
        PLURAL,
        label_selector=selector,
    )

    def gone() -> bool:
        found = call(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            SESSIONS_NS,
            PLURAL,
            label_selector=selector,
            limit=1,
        )
        return not found["items"]

    wait_for(gone, timeout, f"sessions {selector} to be deleted", every=0.5)
    return time.monotonic() - started


# -- the floor: the same credentials, created directly ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class FloorRef(session_refs.SessionRef):
    """A floor identity: named ``fl-…`` so the operator's audit receiver ignores it, and owned by
    a ConfigMap (so that the garbage collector keeps it, as it keeps a live session's objects)."""

    @property
    def base_name(self) -> str:
        return "fl-" + super().base_name[3:]


def floor_owners(admin: api.Kube, batch: str, count: int) -> list[FloorRef]:
    """One owner ConfigMap per floor identity, created before the clock starts."""
    refs = []
    for i in range(count):
        cm = call(
            admin.core.create_namespaced_config_map,
            SESSIONS_NS,
            {"metadata": {"name": f"floor-{batch}-{i:03d}", "labels": {ROUND_LABEL: batch}}},
        )
        refs.append(
            FloorRef(
                namespace=SESSIONS_NS,
                name=cm["metadata"]["name"],
                uid=cm["metadata"]["uid"],
                api_version="v1",
                kind="ConfigMap",
            )
        )
    return refs


async def floor_session(
    kube: api.Kube,
    b: Bench,
    ref: FloorRef,
    rules: Sequence[grant.PolicyRule],
    probes: concurrent.futures.ThreadPoolExecutor,
) -> ReadySample:
    """The operator's credential work for one session (``credentials.issue``: the very calls, in
    the very order and overlap of the session controller), then the token polled until it reads.
    Any error is recorded in the sample."""
    requester = base.UserInfo(username=AGENT, groups=[AGENT_GROUP])
    t0 = time.monotonic()
    try:
        token = await credentials.issue(kube, ref, rules, requester, TOKEN_SECONDS)
    except Exception as e:
        return ReadySample(ref.name, None, {}, error=f"{type(e).__name__}: {e}")
    t_minted = time.monotonic()

    def first_read() -> Poll:
        conn = b.prober.connect()
        try:
            return b.prober.until(conn, b.shop_path, token.token, {200}, READY_TIMEOUT)
        finally:
            conn.close()

    try:
        poll = await asyncio.get_running_loop().run_in_executor(probes, first_read)
    except Exception as e:
        return ReadySample(ref.name, None, {}, error=f"first read: {type(e).__name__}: {e}")
    t_ready, polls = poll.done, poll.polls
    if t_ready is None:
        return ReadySample(ref.name, None, {}, error=f"token never read: last status {poll.code}")
    b.tokens[ref.name] = token.token
    steps = {"issue": t_minted - t0, "firstRead": t_ready - t_minted}
    return ReadySample(ref.name, t_ready - t0, steps, polls - 1)


def floor_batch(
    b: Bench,
    refs: Sequence[FloorRef],
    rules: Sequence[grant.PolicyRule],
    identity: pathlib.Path,
) -> list[ReadySample]:
    """The floor for ``refs``, all at once, with the client of ``identity`` (a kubeconfig)."""

    async def run(kube: api.Kube) -> list[ReadySample]:
        # As the operator: one shared client (its pool of connections) on one event loop.
        with concurrent.futures.ThreadPoolExecutor(len(refs)) as probes:
            return list(
                await asyncio.gather(*[floor_session(kube, b, r, rules, probes) for r in refs])
            )

    return b.floor.run(identity, run)


def delete_floor(b: Bench, refs: Sequence[FloorRef]) -> None:
    async def run() -> None:
        kube = api.Kube.from_kubeconfig(str(b.local.kubeconfig))
        try:
            await asyncio.gather(*[credentials.revoke(kube, r) for r in refs])
        finally:
            await kube.close()

    asyncio.run(run())
    for ref in refs:
        call(b.admin.core.delete_namespaced_config_map, ref.name, SESSIONS_NS)


# -- revocation ------------------------------------------------------------------------------------


@dataclasses.dataclass
class RevocationSample:
    name: str
    trigger: float  # duration of the revoking API call(s)
    forbidden: float | None  # start -> the first request answered 403 was sent
    unauthorized: float | None  # start -> the first request answered 401 was sent
    polls: int
    poll_interval: float  # achieved mean seconds between polls
    resolution403: float  # the request before the first 403 was sent this much earlier
    statuses: dict[str, int]
    error: str | None = None
    triggered_wall: float = 0.0


def measure_revocation(
    b: Bench, name: str, token: str | None, trigger: Callable[[], None]
) -> RevocationSample:
    """:func:`_measure_revocation`, with any error recorded in the sample instead of raised."""
    try:
        if token is None:
            raise RuntimeError("no token (the session was not measured ready)")
        return _measure_revocation(b, name, token, trigger)
    except Exception as e:
        return RevocationSample(name, 0, None, None, 0, 0, 0, {}, f"{type(e).__name__}: {e}")


def _measure_revocation(
    b: Bench, name: str, token: str, trigger: Callable[[], None]
) -> RevocationSample:
    """200 first; then revoke (in another thread) while polling: a single pod until 403, then
    ``/version`` until 401. Latencies are to when the first refused request was *sent*: the
    apiserver decides at the start of a request.

    Single-object GETs are used because a LIST right after any write in the cluster may wait up
    to ~100 ms for the watch cache to be provably fresh (consistent reads from cache), which
    would blur when the refusal began. ``/version`` is readable by every authenticated identity
    and is not audited, so the 401 phase neither depends on RBAC nor makes the apiserver post a
    forbidden event per poll to the operator.
    """
    conn = b.prober.connect()
    try:
        before = b.prober.status(conn, b.pod_path, token)
        if before != 200:
            return RevocationSample(
                name, 0, None, None, 0, 0, 0, {}, f"not readable before: {before}"
            )
        took: list[float] = []

        def run() -> None:
            began = time.monotonic()
            trigger()
            took.append(time.monotonic() - began)

        revoker = threading.Thread(target=run, name=f"revoke-{name}")
        wall, t0 = time.time(), time.monotonic()
        revoker.start()
        denied = b.prober.until(conn, b.pod_path, token, {401, 403}, 10)
        dead = b.prober.until(conn, "/version", token, {401}, 25)
        t_end = time.monotonic()
        revoker.join(30)
    finally:
        conn.close()
    polls = denied.polls + dead.polls
    return RevocationSample(
        name,
        took[0] if took else math.nan,
        None if denied.sent is None else denied.sent - t0,
        None if dead.sent is None else dead.sent - t0,
        polls,
        (t_end - t0) / polls if polls else 0.0,
        0.0 if denied.sent is None else denied.sent - max(t0, denied.previous_sent),
        {str(k): v for k, v in sorted((denied.seen + dead.seen).items())},
        None if denied.sent and dead.sent else f"timed out; last status {dead.code}",
        wall,
    )


def end_session(b: Bench, name: str) -> Callable[[], None]:
    def trigger() -> None:
        call(
            b.agent.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            SESSIONS_NS,
            PLURAL,
            name,
            {"spec": {"ended": True}},
        )

    return trigger


def floor_revoke(kube: api.Kube, ref: FloorRef) -> Callable[[], None]:
    """RoleBindings deleted directly (in parallel), then the Secret and the ServiceAccount."""
    bindings = [
        (ref.base_name, SHOP_NS),
        (ref.base_name, SESSIONS_NS),
        (f"{ref.base_name}-requester", SESSIONS_NS),
    ]

    async def run() -> None:
        await asyncio.gather(
            *[
                api.ignore_missing(kube.rbac.delete_namespaced_role_binding, name, ns)
                for name, ns in bindings
            ]
        )
        await api.ignore_missing(kube.core.delete_namespaced_secret, ref.secret, ref.namespace)
        await api.ignore_missing(
            kube.core.delete_namespaced_service_account, ref.service_account, ref.namespace
        )

    return lambda: FloorLoop.run(run())


class FloorLoop:
    """One event loop, in its own thread, for the floor's revocations: its client keeps warm
    connections from one revocation to the next, as the operator's does (``api.Kube`` sends on
    the event loop it is called from, one connection pool per loop)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _lock = threading.Lock()

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        with cls._lock:
            if cls._loop is None:
                cls._loop = asyncio.new_event_loop()
                cls._loop.set_default_executor(
                    concurrent.futures.ThreadPoolExecutor(WORKER_THREADS)
                )
                threading.Thread(target=cls._loop.run_forever, daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result()


class FloorClients:
    """The floors' clients, one per identity (a kubeconfig), on :class:`FloorLoop`'s event loop.
    Like the operator's one client, each keeps its pool of warm connections from one batch to
    the next; a client per batch would open, and TLS-handshake, every connection again (a
    cost the operator, whose connections stay open, does not pay)."""

    def __init__(self) -> None:
        self._kubes: dict[str, api.Kube] = {}

    def client(self, identity: pathlib.Path) -> api.Kube:
        """The client of ``identity``; it sends on whichever loop calls it (``FloorLoop``'s)."""
        kube = self._kubes.get(str(identity))
        if kube is None:
            kube = self._kubes[str(identity)] = api.Kube.from_kubeconfig(str(identity))
        return kube

    def run(self, identity: pathlib.Path, work: Callable[[api.Kube], Coroutine[Any, Any, T]]) -> T:
        return FloorLoop.run(work(self.client(identity)))

    def close(self) -> None:
        kubes, self._kubes = list(self._kubes.values()), {}

        async def close_all() -> None:
            await asyncio.gather(*(k.close() for k in kubes))

        FloorLoop.run(close_all())


def revocations(
    b: Bench,
    operator_names: Sequence[str],
    floor_refs: Sequence[FloorRef],
    interval: float,
) -> tuple[list[RevocationSample], list[RevocationSample]]:
    """Interleave operator and floor revocations, one every ``interval / 2`` s (the floor's with
    the admin floor's client, closed with the others at the end of the run)."""
    kube = b.floor.client(b.local.kubeconfig)
    return _revocations(b, kube, operator_names, floor_refs, interval)


def _revocations(
    b: Bench,
    kube: api.Kube,
    operator_names: Sequence[str],
    floor_refs: Sequence[FloorRef],
    interval: float,
) -> tuple[list[RevocationSample], list[RevocationSample]]:
    count = min(len(operator_names), len(floor_refs))
    op_futures, floor_futures = [], []
    with concurrent.futures.ThreadPoolExecutor(2 * count) as pool:
        for i in range(count):
            name = operator_names[i]
            op_futures.append(
                pool.submit(measure_revocation, b, name, b.tokens.get(name), end_session(b, name))
            )
            time.sleep(interval / 2)
            ref = floor_refs[i]
            floor_futures.append(
                pool.submit(
                    measure_revocation,
                    b,
                    ref.name,
                    b.tokens.get(ref.name),
                    floor_revoke(kube, ref),
                )
            )
            time.sleep(interval / 2)
        return [f.result() for f in op_futures], [f.result() for f in floor_futures]


# -- many sessions: memory -------------------------------------------------------------------------


def many_sessions(
    b: Bench, grants: Sequence[str], total: int, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Create ``total`` sessions, ``concurrency`` in flight at a time; wait until each is Active."""
    deadline = time.monotonic() + timeout
    names = [f"rss-{i:04d}-{uuid.uuid4().hex[:4]}" for i in range(total)]

    def one(i: int) -> tuple[str, float | None, float, str | None]:
        try:
            return _one(i)
        except Exception as e:
            return names[i], None, 0.0, f"{type(e).__name__}: {e}"

    def _one(i: int) -> tuple[str, float | None, float, str | None]:
        name = names[i]
        done = b.watcher.expect(name)
        t0 = time.monotonic()
        try:
            call(
                b.agent.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                SESSIONS_NS,
                PLURAL,
                session_body(name, grants[i // MAX_PER_GRANT], "rss"),
            )
        except errors.KubeError as e:
            return name, None, 0.0, f"create refused: {e.status} {e}"
        if not done.wait(max(0.0, deadline - time.monotonic())):
            return name, None, 0.0, f"not Active: {b.watcher.phases.get(name, 'unseen')}"
        t_active, body = b.watcher.seen(name)
        if body["status"]["phase"] != "Active":
            return name, None, 0.0, f"Denied: {body['status'].get('conditions')}"
        return name, t_active - t0, t_active, None

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(total)))
    finished = time.monotonic()
    latencies = [t for _, t, _, _ in results if t is not None]
    failures = [(n, err) for n, _, _, err in results if err]
    # When the k-th session became Active: the slope shows whether each new session costs more.
    actives = sorted(at - started for _, t, at, _ in results if t is not None)
    step = max(1, total // 10)
    timeline = [(k, round(actives[k - 1], 1)) for k in range(step, len(actives) + 1, step)]
    return {
        "requested": total,
        "active": len(latencies),
        "seconds": finished - started,
        "createToActive": summary(latencies),
        "kthActiveAtSeconds": timeline,
        "failures": failures[:20],
        "failureCount": len(failures),
    }


def floor_many(
    b: Bench,
    refs: Sequence[FloorRef],
    rules: Sequence[grant.PolicyRule],
    identity: pathlib.Path,
    concurrency: int,
) -> dict[str, Any]:
    """The many-sessions phase's floor: one ``credentials.issue`` per session (the very calls the
    controller makes for each, in the same order and overlap), ``concurrency`` in flight, with
    the client of ``identity``; each counts once ``issue`` returns (the token in hand). The
    operator's rate over this one is the cost of everything it adds per session."""

    async def run(kube: api.Kube) -> tuple[float, list[tuple[float | None, str | None]]]:
        slots = asyncio.Semaphore(concurrency)
        requester = base.UserInfo(username=AGENT, groups=[AGENT_GROUP])

        async def one(ref: FloorRef) -> tuple[float | None, str | None]:
            async with slots:
                t0 = time.monotonic()
                try:
                    await credentials.issue(kube, ref, rules, requester, TOKEN_SECONDS)
                except Exception as e:
                    return None, f"{ref.name}: {type(e).__name__}: {e}"
                return time.monotonic() - t0, None

        started = time.monotonic()
        results = list(await asyncio.gather(*[one(r) for r in refs]))
        return time.monotonic() - started, results

    seconds, results = b.floor.run(identity, run)
    latencies = [t for t, _ in results if t is not None]
    failures = [err for _, err in results if err]
    return {
        "requested": len(refs),
        "issued": len(latencies),
        "inFlight": concurrency,
        "seconds": seconds,
        "perSecond": stats.ratio(len(latencies), seconds),
        "issueLatency": summary(latencies),
        "failures": failures[:20],
        "failureCount": len(failures),
    }


# -- the operator's own account of where time goes (its JSON log) ---------------------------------

LOG_MARKS = {
    "Webhook 'stamp-requester' succeeded.": "mutated",
    "Webhook 'admit-session' succeeded.": "admitted",
}
STAGES = (
    ("create", "mutated", "create call -> mutating webhook done"),
    ("mutated", "admitted", "-> validating webhook done (admission policy)"),
    ("admitted", "observed", "-> the agent's watch sees Active (reads, credentials, status)"),
    ("observed", "ready", "-> agent read the token and it read pods"),
)


def operator_stages(log: pathlib.Path, samples: Sequence[ReadySample]) -> dict[str, Any]:
    """Where a session's time goes, from the operator's JSON log and the agent's clock.

    Per session: the agent's create (wall clock), the end of each admission webhook, the agent
    seeing Active, the first 200 (``--trace`` splits the handler call by call). The operator and
    the harness run on the same machine, so their wall clocks agree.
    """
    marks: dict[str, dict[str, float]] = {}
    for s in samples:
        if s.created_wall and s.ready is not None:
            observed = s.steps["admission"] + s.steps["createdToActive"]
            marks[s.name] = {
                "create": s.created_wall,
                "observed": s.created_wall + observed,
                "ready": s.created_wall + s.ready,
            }
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message", ""))
        name = str((record.get("object") or {}).get("name") or "")
        mark = LOG_MARKS.get(message)
        if mark is None or name not in marks or mark in marks[name]:
            continue
        stamp = datetime.datetime.fromisoformat(str(record["timestamp"])).timestamp()
        marks[name][mark] = stamp
    out: dict[str, Any] = {}
    for a, z, what in STAGES:
        values = [m[z] - m[a] for m in marks.values() if a in m and z in m]
        out[f"{a}->{z}"] = {"what": what, **summary(values)}
    return out


# -- opt-in tracing of the operator's API calls (--trace) -----------------------------------------

TRACE_SHIM = ROOT / "bench" / "operator_trace"


def _phase_of(name: str) -> str:
    return "ready" if name.startswith("op-") else "rss" if name.startswith("rss-") else "other"


def trace_profile(
    path: pathlib.Path, op: Sequence[ReadySample], revoked: Sequence[RevocationSample]
) -> dict[str, Any]:
    """Where the operator's time goes, from ``bench/operator_trace`` records (one per API call).

    - per (phase, handler, call): how many, call time (HTTP and JSON decoding, in the worker
      thread) and time waiting for a worker thread;
    - per ready-phase session: when the ``opened`` handler made its first call, relative to the
      agent's create, and when its Active status write returned;
    - per revoked session: from the agent's patch to the ``ended`` handler's first call and to its
      RoleBindings being deleted.
    """
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    calls: dict[tuple[str, str, str], list[tuple[float, float]]] = collections.defaultdict(list)
    by_object: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in records:
        calls[(_phase_of(r["o"]), r["h"] or "(kopf)", r["f"])].append(
            (r["e"] - r["b"], r["b"] - r["s"])
        )
        by_object[r["o"]].append(r)
    table = {
        " ".join(key): {
            "count": len(values),
            "httpP50": percentile([h for h, _ in values], 0.5),
            "httpP99": percentile([h for h, _ in values], 0.99),
            "threadWaitP50": percentile([w for _, w in values], 0.5),
            "threadWaitP99": percentile([w for _, w in values], 0.99),
        }
        for key, values in sorted(calls.items())
    }
    stages: dict[str, list[float]] = collections.defaultdict(list)
    for sample in op:
        mine = sorted(by_object.get(sample.name, []), key=lambda r: r["s"])
        opened = [r for r in mine if r["h"] == "opened" and r["f"] != "kopf.patch"]
        status = [r for r in opened if r["f"] == "patch_namespaced_custom_object_status"]
        if not sample.created_wall or not opened:
            continue
        stages["create -> handler's first call"].append(opened[0]["s"] - sample.created_wall)
        if status:  # the first status write of the handler is the one that makes it Active
            stages["handler: first call -> Active written"].append(status[0]["e"] - opened[0]["s"])
        stages["handler: first call -> last call done"].append(
            max(r["e"] for r in opened) - opened[0]["s"]
        )
        stages["handler: sum of call times"].append(sum(r["e"] - r["b"] for r in opened))
        stages["handler: sum of thread waits"].append(sum(r["b"] - r["s"] for r in opened))
        stages["handler: calls"].append(float(len(opened)))
    for rev in revoked:
        mine = [r for r in by_object.get(rev.name, []) if str(r["h"]).startswith("ended")]
        if not rev.triggered_wall or not mine:
            continue
        stages["end patch -> 'ended' handler's first call"].append(
            min(r["s"] for r in mine) - rev.triggered_wall
        )
        deletes = [r for r in mine if r["f"] == "delete_namespaced_role_binding"]
        if deletes:
            stages["end patch -> its RoleBindings deleted"].append(
                max(r["e"] for r in deletes) - rev.triggered_wall
            )
    return {
        "calls": table,
        "stages": {k: summary(v) for k, v in stages.items()},
        "rssGrowth": rss_growth(records),
        "records": len(records),
    }


def rss_growth(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean time per call kind for the first and the last tenth of the many-sessions phase
    (sessions are numbered in creation order): what costs more as sessions accumulate."""
    index = re.compile(r"^rss-(\d+)-")
    numbered = [(int(m.group(1)), r) for r in records if (m := index.match(r["o"]))]
    if not numbered:
        return {}
    total = max(i for i, _ in numbered) + 1
    tenth = max(1, total // 10)
    out: dict[str, dict[str, float]] = {}
    keys = sorted({f"{r['h'] or '(kopf)'} {r['f']}" for _, r in numbered})
    for key in keys:
        first = [r["e"] - r["b"] for i, r in numbered if i < tenth and _key(r) == key]
        last = [r["e"] - r["b"] for i, r in numbered if i >= total - tenth and _key(r) == key]
        if first and last:
            out[key] = {
                "firstTenthMean": sum(first) / len(first),
                "lastTenthMean": sum(last) / len(last),
                "callsPerSession": len(last) / tenth,
            }
    return out


def _key(record: dict[str, Any]) -> str:
    return f"{record['h'] or '(kopf)'} {record['f']}"


def print_trace(profile: dict[str, Any]) -> None:
    growth = profile.get("rssGrowth") or {}
    if growth:
        print(
            "\nMany-sessions phase: mean time per call (HTTP + JSON decode), "
            "first vs last tenth of the sessions"
        )
        for key, g in sorted(growth.items(), key=lambda kv: -kv[1]["lastTenthMean"]):
            print(
                f"  {key[:58]:<58}{ms(g['firstTenthMean']):>9} ->{ms(g['lastTenthMean']):>9}"
                f"  ({g['callsPerSession']:.1f} per session)"
            )
    print(f"\nOperator trace ({profile['records']} calls recorded)")
    print("  per session (p50 / p99):")
    for what, s in profile["stages"].items():
        if what == "handler: calls":
            print(f"    {what:<48}{s['p50']:>9.0f} /{s['p99']:>9.0f}")
        else:
            print(f"    {what:<48}{ms(s['p50']):>9} /{ms(s['p99']):>9}")
    print(
        f"  {'phase handler call':<62}{'count':>7}{'call p50/p99':>20}{'thread wait p50/p99':>22}"
    )
    for key, c in profile["calls"].items():
        print(
            f"  {key[:62]:<62}{c['count']:>7}{ms(c['httpP50']):>11}/{ms(c['httpP99']):>8}"
            f"{ms(c['threadWaitP50']):>13}/{ms(c['threadWaitP99']):>8}"
        )


# -- reporting -------------------------------------------------------------------------------------


def ready_table(kinds: dict[str, list[ReadySample]]) -> dict[str, Any]:
    """The session-ready table; ratios are against the first floor (admin identity)."""
    stats = {k: summary([s.ready for s in v if s.ready is not None]) for k, v in kinds.items()}
    o, f = stats["operator"], stats["floor"]
    ratios = {k: ratio(o[k], f[k]) for k in ("p50", "p90", "p99", "max", "mean")}
    labels = {
        "operator": "operator",
        "floor": "floor (admin)",
        "floorOperatorIdentity": "floor (operator's id)",
    }
    print("\nSession-ready latency: create -> token authenticates and reads pods (HTTP 200)")
    print(f"  {'':<24}{'n':>5}{'p50':>11}{'p90':>11}{'p99':>11}{'max':>11}")
    for key, st in stats.items():
        print(
            f"  {labels[key]:<24}{st['n']:>5}{ms(st['p50']):>11}{ms(st['p90']):>11}"
            f"{ms(st['p99']):>11}{ms(st['max']):>11}"
        )
    print(
        f"  {'ratio operator/floor':<24}{'':>5}{ratios['p50']:>10.2f}x{ratios['p90']:>10.2f}x"
        f"{ratios['p99']:>10.2f}x{ratios['max']:>10.2f}x"
    )
    print(
        f"  this run's p99 ratio: {ratios['p99']:.2f}x (the goal is judged on the median of runs)"
    )
    others = {
        k: {q: ratio(o[q], stats[k][q]) for q in ("p50", "p99")}
        for k in stats
        if k not in {"operator", "floor"}
    }
    for k, r in others.items():
        print(f"  ratio operator/{labels[k]}: p50 {r['p50']:.2f}x, p99 {r['p99']:.2f}x")
    # The same, up to the token being in the agent's hands (without the first read).
    in_hand = {
        k: summary([s.ready - s.steps["firstRead"] for s in v if s.ready is not None and s.steps])
        for k, v in kinds.items()
    }
    in_hand_ratio = {q: ratio(in_hand["operator"][q], in_hand["floor"][q]) for q in ("p50", "p99")}
    print(
        f"  create -> token in hand (no first read), p50 / p99: operator "
        f"{ms(in_hand['operator']['p50'])} / {ms(in_hand['operator']['p99'])}, floor (admin) "
        f"{ms(in_hand['floor']['p50'])} / {ms(in_hand['floor']['p99'])}: ratio "
        f"{in_hand_ratio['p50']:.2f}x / {in_hand_ratio['p99']:.2f}x"
    )
    breakdown: dict[str, dict[str, float]] = {}
    for label, samples in kinds.items():
        keys = list(next((s.steps for s in samples if s.steps), {}))
        breakdown[label] = {}
        parts = []
        for key in keys:
            values = [s.steps[key] for s in samples if key in s.steps]
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            breakdown[label][key + "P50"] = p50
            breakdown[label][key + "P99"] = p99
            parts.append(f"{key} {ms(p50)} / {ms(p99)}")
        print(f"  {labels[label]} steps (p50 / p99): " + "; ".join(parts))
    refused = {k: sum(1 for s in v if s.refused_probes) for k, v in kinds.items()}
    print(f"  sessions whose first probe was refused (RBAC not yet served): {refused}")
    errors = [f"{s.name}: {s.error}" for v in kinds.values() for s in v if s.error]
    for err in errors:
        print(f"  ERROR {err}")
    return {
        **stats,
        "samplesSeconds": {
            k: [round(s.ready, 4) for s in v if s.ready is not None] for k, v in kinds.items()
        },
        "ratio": ratios,
        "ratioToOtherFloors": others,
        "tokenInHand": in_hand,
        "tokenInHandRatio": in_hand_ratio,
        "steps": breakdown,
        "firstProbeRefused": refused,
        "errors": errors,
    }


def revocation_table(op: list[RevocationSample], fl: list[RevocationSample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print("\nRevocation latency: revoking call -> old token gets 403 / gets 401")
    print(f"  {'':<30}{'n':>4}{'403 p50':>10}{'403 p99':>10}{'401 p50':>10}{'401 p99':>10}")
    for label, samples in (
        ("operator (spec.ended=true)", op),
        ("floor (delete RoleBindings..)", fl),
    ):
        f403 = summary([s.forbidden for s in samples if s.forbidden is not None])
        f401 = summary([s.unauthorized for s in samples if s.unauthorized is not None])
        trigger = summary([s.trigger for s in samples])
        interval = summary([s.poll_interval for s in samples if s.polls])
        resolution = summary([s.resolution403 for s in samples if s.forbidden is not None])
        print(
            f"  {label:<30}{f403['n']:>4}{ms(f403['p50']):>10}{ms(f403['p99']):>10}"
            f"{ms(f401['p50']):>10}{ms(f401['p99']):>10}"
        )
        print(
            f"  {'':<30}  revoking call p50 {ms(trigger['p50'])}; poll interval mean "
            f"{ms(interval['mean'])}; last 200 sent {ms(resolution['mean'])} before first 403"
        )
        errors = [f"{s.name}: {s.error}" for s in samples if s.error]
        for err in errors:
            print(f"  ERROR {err}")
        key = "operator" if samples is op else "floor"
        out[key] = {
            "to403": f403,
            "to401": f401,
            "revokingCall": trigger,
            "pollInterval": interval,
            "resolution403": resolution,
            "errors": errors,
            "samples": [dataclasses.asdict(s) for s in samples],
        }
    out["ratio403"] = {
        k: ratio(out["operator"]["to403"][k], out["floor"]["to403"][k]) for k in ("p50", "p99")
    }
    print(
        f"  403 ratio operator/floor: p50 {out['ratio403']['p50']:.2f}x, "
        f"p99 {out['ratio403']['p99']:.2f}x"
    )
    return out


machine = harness.machine
status_meminfo = harness.status_meminfo


# -- the program -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sessions", type=int, default=50, help="concurrent sessions per batch")
    p.add_argument("--rounds", type=int, default=3, help="rounds of 3 batches (operator, 2 floors)")
    p.add_argument("--revocations", type=int, default=30, help="sessions revoked (each path)")
    p.add_argument(
        "--revoke-interval", type=float, default=1.0, help="s between two operator revocations"
    )
    p.add_argument("--poll-ms", type=float, default=20.0, help="token poll interval")
    p.add_argument("--rss-sessions", type=int, default=1000, help="active sessions for RSS")
    p.add_argument("--rss-timeout", type=float, default=360.0, help="s to get them Active")
    p.add_argument("--runs", type=int, default=stats.DEFAULT_RUNS, help="full runs (median)")
    p.add_argument("--quick", action="store_true", help="10 sessions, 1 round, 5, 100")
    p.add_argument("--out", type=pathlib.Path, default=None, help="JSON result file")
    p.add_argument(
        "--trace",
        action="store_true",
        help="record the operator's API calls (bench/operator_trace) and profile them; "
        "adds a little overhead, so compare untraced runs with each other",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sessions, args.rounds, args.revocations, args.rss_sessions = 10, 1, 5, 100
    args.revocations = min(args.revocations, args.sessions)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``--runs`` full runs (each on a fresh control plane and operator), then the goal judged on
    the median of the runs' p99s. A run that fails is recorded (``error``) and the others go on."""
    args = parse_args(argv)
    harness.stop_on_sigterm()
    stamp = harness.stamp()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"sessions-{stamp}.json"
    result = harness.result_header("sessions", args, stamp)
    try:
        for i in range(args.runs):
            say(f"== run {i + 1}/{args.runs}")
            run: dict[str, Any] = {"run": i + 1, "phases": {}}
            result["runs"].append(run)
            try:
                run_once(args, run, out.parent / f"{out.stem}.run{i + 1}")
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failed run is recorded; the next one still runs
                run["error"] = f"{type(e).__name__}: {e}"
                say(f"run {i + 1} failed: {run['error']}")
    finally:
        result["summary"] = summarize(result["runs"], args.runs, result["machine"]["cpus"])
        result["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]
        print_summary(result["summary"])
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        say(f"results in {out}")
    return 0


def batch_cpu_account(spent: dict[str, Any], sessions: int) -> dict[str, Any]:
    """What one ready-phase batch of ``sessions`` cost: wall time and CPU seconds per process."""
    return {
        "sessions": sessions,
        **{k: spent[k] for k in ("wallSeconds", "cpuSeconds", "cpuCoresBusy")},
    }


def cpu_budgets(runs: Sequence[dict[str, Any]], cores: int) -> dict[str, Any]:
    """Each run's CPU per session against the CPU a goal leaves, on this machine's ``cores``.

    Every process of a run (control plane, operator, this harness) shares the same cores, so a
    batch of sessions started at once cannot finish before its CPU seconds over ``cores``; the
    ready goal (operator p99 at most :data:`GOAL_READY_RATIO` x the floor's) therefore leaves
    an operator batch at most ``ratio x floor p99 x cores / sessions`` of CPU per session, and
    :data:`GOAL_PER_SECOND` leaves ``cores / rate`` per session in the many-sessions phase.
    Milliseconds per session; NaN where a run has no such number (older results, failed runs).
    """
    kinds = ("operator", "floor", "floorOperatorIdentity")
    ready: dict[str, list[float]] = {k: [] for k in kinds}
    ready_budget: list[float] = []
    many: list[float] = []
    many_without_operator: list[float] = []
    many_floor_operator_id: list[float] = []
    for run in runs:
        batches = (run.get("ready") or {}).get("batches") or []
        for kind in kinds:
            per = [
                stats.ratio(1000 * sum(b["cpuSeconds"].values()), b["sessions"])
                for b in batches
                if b.get("kind") == kind and "cpuSeconds" in b
            ]
            ready[kind].append(stats.median(per) if per else math.nan)
        sessions = _at(run, "ready", "sessionsPerBatch")
        floor_p99 = _at(run, "ready", "floor", "p99")
        ready_budget.append(stats.ratio(1000 * GOAL_READY_RATIO * floor_p99 * cores, sessions))
        cpu = ((run.get("phases") or {}).get("rss") or {}).get("cpuSeconds") or {}
        active = _at(run, "rss", "creation", "active")
        total = sum(cpu.values()) if cpu else math.nan
        many.append(stats.ratio(1000 * total, active))
        many_without_operator.append(
            stats.ratio(1000 * (total - cpu.get("operator", math.nan)), active)
        )
        floor_cpu = ((run.get("phases") or {}).get("rssFloorOperatorId") or {}).get("cpuSeconds")
        many_floor_operator_id.append(
            stats.ratio(
                1000 * sum((floor_cpu or {"": math.nan}).values()),
                _at(run, "rss", "floorOperatorIdentityCreation", "issued"),
            )
        )
    return {
        "cores": cores,
        "readyCpuMsPerSession": ready,
        "readyBudgetMsPerSession": ready_budget,
        "manyCpuMsPerSession": many,
        "manyCpuMsPerSessionWithoutOperator": many_without_operator,
        "manyFloorOperatorIdentityCpuMsPerIssue": many_floor_operator_id,
        "manyBudgetMsPerSession": 1000 * cores / GOAL_PER_SECOND,
    }


def _at(run: dict[str, Any], *path: str) -> float:
    """``run[path...]`` as a number; NaN when the run did not get that far."""
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return float(value) if isinstance(value, int | float) else math.nan


def summarize(runs: Sequence[dict[str, Any]], wanted: int, cores: int = 2) -> dict[str, Any]:
    """Per-run numbers side by side, their medians, and the goals judged on those medians."""
    ready = stats.judge(
        [_at(r, "ready", "operator", "p99") for r in runs],
        [_at(r, "ready", "floor", "p99") for r in runs],
        max_ratio=GOAL_READY_RATIO,
        runs_wanted=max(wanted, stats.DEFAULT_RUNS),  # a goal needs 3 runs at least
    )
    revocation = stats.judge(
        [_at(r, "revocation", "operator", "to403", "p99") for r in runs],
        [_at(r, "revocation", "floor", "to403", "p99") for r in runs],
        max_ratio=math.inf,  # reported, no goal
        runs_wanted=max(wanted, stats.DEFAULT_RUNS),  # a goal needs 3 runs at least
    )
    errors = [sum(len(r.get(k, {}).get("errors", [])) for k in ("ready",)) for r in runs]
    for i, r in enumerate(runs):
        rev = r.get("revocation", {})
        errors[i] += sum(len(rev.get(k, {}).get("errors", [])) for k in ("operator", "floor"))
        errors[i] += int(r.get("rss", {}).get("creation", {}).get("failureCount", 0))
        errors[i] += 1 if "error" in r else 0
    rates = [
        stats.ratio(_at(r, "rss", "creation", "active"), _at(r, "rss", "creation", "seconds"))
        for r in runs
    ]
    floor_rates = [
        stats.ratio(
            _at(r, "rss", "floorCreation", "issued"), _at(r, "rss", "floorCreation", "seconds")
        )
        for r in runs
    ]
    floor_op_rates = [
        stats.ratio(
            _at(r, "rss", "floorOperatorIdentityCreation", "issued"),
            _at(r, "rss", "floorOperatorIdentityCreation", "seconds"),
        )
        for r in runs
    ]
    many = judge_many(
        [_at(r, "rss", "activeSessions") for r in runs],
        rates,
        [_at(r, "rss", "withSessionsMiB") for r in runs],
        max(wanted, stats.DEFAULT_RUNS),
        floor_rates,
    )
    return {
        "ready": ready,
        "revocation403": revocation,
        "manySessions": many,
        "rssWithSessionsMiB": [_at(r, "rss", "withSessionsMiB") for r in runs],
        "rssActiveSessions": [_at(r, "rss", "activeSessions") for r in runs],
        "activationPerSecond": rates,
        "floorActivationPerSecond": floor_rates,
        "floorOverOperatorRate": [
            stats.ratio(f, o) for o, f in zip(rates, floor_rates, strict=True)
        ],
        "floorOperatorIdentityActivationPerSecond": floor_op_rates,
        "loadavg": [r.get("loadavg", [math.nan] * 3) for r in runs],
        "errorsPerRun": errors,
        "runErrors": [r.get("error") for r in runs],
        "cpu": cpu_budgets(runs, cores),
        "goalMet": ready["goalMet"] and many["goalMet"],
    }


def judge_many(
    active: Sequence[float],
    rates: Sequence[float],
    rss: Sequence[float],
    runs_wanted: int,
    floor_rates: Sequence[float] = (),
) -> dict[str, Any]:
    """The many-sessions goal on the medians of the runs: :data:`GOAL_SESSIONS` Active at
    :data:`GOAL_PER_SECOND` or faster, operator RSS at most :data:`GOAL_RSS_MIB`. Fails closed:
    a run with fewer sessions (``--quick``), or a missing number, does not count."""
    full = [
        (rate, mib)
        for n, rate, mib in zip(active, rates, rss, strict=False)
        if not math.isnan(n) and n >= GOAL_SESSIONS and not math.isnan(rate + mib)
    ]
    rate_median, rss_median = stats.median(list(rates)), stats.median(list(rss))
    floor_median = stats.median(list(floor_rates)) if floor_rates else math.nan
    met = (
        len(full) >= runs_wanted
        and stats.median([r for r, _ in full]) >= GOAL_PER_SECOND
        and stats.median([m for _, m in full]) <= GOAL_RSS_MIB
    )
    return {
        "perSecondMedian": rate_median,
        "floorPerSecondMedian": floor_median,
        "floorOverOperator": stats.ratio(floor_median, rate_median),
        "rssMiBMedian": rss_median,
        "goalSessions": GOAL_SESSIONS,
        "goalPerSecond": GOAL_PER_SECOND,
        "goalRssMiB": GOAL_RSS_MIB,
        "runsAtGoalSize": len(full),
        "runsWanted": runs_wanted,
        "goalMet": bool(met),
    }


def print_summary(s: dict[str, Any]) -> None:
    r = s["ready"]
    print(f"\nSession-ready p99 over {len(r['operatorP99s'])} run(s) (goal judged on the median)")
    for i, (o, f) in enumerate(zip(r["operatorP99s"], r["floorP99s"], strict=True)):
        load = s["loadavg"][i]
        print(
            f"  run {i + 1}: operator {ms(o)}, floor {ms(f)}, ratio {ratio(o, f):.2f}x, "
            f"errors {s['errorsPerRun'][i]}, loadavg {load[0]:.2f}"
            + (f"  FAILED: {s['runErrors'][i]}" if s["runErrors"][i] else "")
        )
    print(
        f"  median: operator {ms(r['operatorMedianP99'])}, floor {ms(r['floorMedianP99'])}, "
        f"ratio {r['ratio']:.2f}x; goal <= {r['goalRatio']:.1f}x: "
        f"{'MET' if r['goalMet'] else 'NOT MET'}"
    )
    m = s.get("manySessions")
    if m:
        print(
            f"Many sessions: median {m['perSecondMedian']:.1f} sessions/s (floor "
            f"{m.get('floorPerSecondMedian', math.nan):.1f} issue/s, "
            f"{m.get('floorOverOperator', math.nan):.2f}x faster), RSS "
            f"{m['rssMiBMedian']:.1f} MiB; goal {m['goalSessions']} Active at >= "
            f"{m['goalPerSecond']:g}/s with RSS <= {m['goalRssMiB']:g} MiB "
            f"({m['runsAtGoalSize']} run(s) at that size): "
            f"{'MET' if m['goalMet'] else 'NOT MET'}"
        )


def run_once(args: argparse.Namespace, result: dict[str, Any], base: pathlib.Path) -> None:
    """One full run on its own control plane and operator; fills ``result`` as it goes."""
    log = base.parent / f"{base.name}.operator.log"
    trace = base.parent / f"{base.name}.trace.jsonl"
    result["loadavgAtStart"] = [round(x, 2) for x in os.getloadavg()]
    local = cluster.LocalCluster(
        cluster.Options(audit_url=f"https://127.0.0.1:{free_port()}/audit")
    )
    operator: BenchOperator | None = None
    sampler: RssSampler | None = None
    watcher: ActiveWatcher | None = None
    floor = FloorClients()
    try:
        local.start()
        say(f"control plane ready in {local.startup_seconds:.1f} s at {local.url}")
        audit_port = int(local.options.audit_url.rsplit(":", 1)[1].split("/")[0])
        env = dev.prepare(
            local, metrics_port=free_port(), webhook_port=free_port(), audit_port=audit_port
        )
        env.options.token_seconds = TOKEN_SECONDS
        operator = BenchOperator(local, env, log)
        saved = dict(os.environ)
        if args.trace:  # only the operator process sees these
            os.environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(TRACE_SHIM), os.environ.get("PYTHONPATH", "")) if p
            )
            os.environ["BENCH_TRACE_FILE"] = str(trace)
        try:
            operator.start(timeout=60)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        say(f"operator running (pid {operator.pid}); log: {log}")
        procs = Processes(local, operator.pid)
        result["otherControlPlanesAtStart"] = other_control_planes(procs.pids.values())
        sampler = RssSampler(operator.pid)
        sampler.start()
        time.sleep(3)
        rss: dict[str, Any] = {"freshZeroSessionsMiB": status_kib(operator.pid, "VmRSS") / 1024}
        result["controlPlaneRssAtStartMiB"] = procs.rss_mib()

        admin = kube_for(local.kubeconfig)
        agent = kube_for(local.user_kubeconfig(AGENT, [AGENT_GROUP]))
        setup_world(admin)
        grants = [f"bench-{i}" for i in range(max(1, math.ceil(args.rss_sessions / MAX_PER_GRANT)))]
        for g in grants:
            create_grant(admin, g, MAX_PER_GRANT)
        watcher = ActiveWatcher(kube_for(local.kubeconfig))
        watcher.start()
        b = Bench(
            local, admin, agent, watcher, Prober(local, args.poll_ms / 1000), grants[0], floor
        )

        # Warm-up, one unmeasured batch of each kind at full concurrency: thread and connection
        # pools, webhook TLS, informers (a first batch pays for growing them, every kind alike);
        # and the compiled rules of a session, which the floors create too.
        warm = operator_batch(b, "warm", args.sessions)
        result["warmupErrors"] = [f"{s.name}: {s.error}" for s in warm if s.error]
        good = [s for s in warm if s.error is None]
        if not good:
            raise RuntimeError(f"no warm-up session became usable: {result['warmupErrors'][:3]}")
        body = watcher.seen(good[0].name)[1]
        rules = [grant.PolicyRule.model_validate(r) for r in body["status"]["effectiveRules"]]
        delete_sessions(b, f"{ROUND_LABEL}=warm")
        for i, identity in enumerate((local.kubeconfig, env.kubeconfig)):
            refs = floor_owners(admin, f"warm{i}", args.sessions)
            floor_batch(b, refs, rules, identity)
            delete_floor(b, refs)

        # 1. Session-ready latency, operator and floor batches alternating.
        phase = Phase(procs, "ready", local)
        kinds: dict[str, list[ReadySample]] = {
            "operator": [],
            "floor": [],
            "floorOperatorIdentity": [],
        }
        per_batch: list[dict[str, Any]] = []
        last_op: list[ReadySample] = []
        last_floor: list[FloorRef] = []
        order = list(kinds)
        for r in range(args.rounds):
            batch = f"r{r}"
            for kind in order[r % 3 :] + order[: r % 3]:  # rotate who goes first
                say(f"round {r + 1}/{args.rounds}: {args.sessions} at once, {kind}")
                batch_cpu = Phase(procs, f"{batch}-{kind}")  # the batch only, not its cleanup
                if kind == "operator":
                    last_op = operator_batch(b, batch, args.sessions)
                    kinds[kind] += last_op
                    batch_samples = last_op
                    spent = batch_cpu.end()
                    if r < args.rounds - 1:
                        delete_sessions(b, f"{ROUND_LABEL}={batch}")
                else:
                    identity = local.kubeconfig if kind == "floor" else env.kubeconfig
                    refs = floor_owners(admin, f"{batch}-{kind[:7].lower()}", args.sessions)
                    batch_samples = floor_batch(b, refs, rules, identity)
                    spent = batch_cpu.end()
                    kinds[kind] += batch_samples
                    if kind == "floor" and r == args.rounds - 1:
                        last_floor = refs  # kept for the revocation phase
                    else:
                        delete_floor(b, refs)
                ready = [x.ready for x in batch_samples if x.ready is not None]
                per_batch.append(
                    {
                        "round": r,
                        "kind": kind,
                        **summary(ready),
                        **batch_cpu_account(spent, len(batch_samples)),
                    }
                )
                time.sleep(1)
        result["phases"]["ready"] = phase.end()
        result["ready"] = ready_table(kinds)
        result["ready"]["batches"] = per_batch
        print_batches(per_batch)
        op_samples = kinds["operator"]
        result["ready"]["operatorStages"] = operator_stages(log, op_samples)
        print_stages(result["ready"]["operatorStages"])
        result["ready"]["sessionsPerBatch"] = args.sessions
        result["ready"]["rounds"] = args.rounds

        # 2. Revocation latency.
        say(f"revoking {args.revocations} sessions and {args.revocations} floor identities")
        phase = Phase(procs, "revocation", local)
        live = [s.name for s in last_op if s.ready is not None]
        op_rev, fl_rev = revocations(
            b, live[: args.revocations], last_floor[: args.revocations], args.revoke_interval
        )
        result["phases"]["revocation"] = phase.end()
        result["revocation"] = revocation_table(op_rev, fl_rev)

        # 3. Memory with many active sessions.
        say("deleting every session before the memory phase")
        delete_sessions(b, ROUND_LABEL)
        delete_floor(b, last_floor)
        time.sleep(5)
        rss["afterLatencyPhasesZeroSessionsMiB"] = status_kib(operator.pid, "VmRSS") / 1024
        # The floor of the activation rate, on the same (empty) cluster the operator then gets:
        # the same number of credentials.issue calls, the same number in flight.
        say(f"floor: {args.rss_sessions} credentials.issue calls, {args.sessions} at a time")
        many_refs = floor_owners(admin, "many", args.rss_sessions)
        phase = Phase(procs, "rssFloor", local)
        floor_rate = floor_many(b, many_refs, rules, local.kubeconfig, args.sessions)
        result["phases"]["rssFloor"] = phase.end()
        delete_floor(b, many_refs)
        time.sleep(2)
        # ...and with the operator's own identity: every Role and RoleBinding write then goes
        # through the apiserver's escalation check, as the operator's do.
        say(f"floor (operator's id): {args.rss_sessions} credentials.issue calls")
        many_refs = floor_owners(admin, "manyop", args.rss_sessions)
        phase = Phase(procs, "rssFloorOperatorId", local)
        floor_rate_op = floor_many(b, many_refs, rules, env.kubeconfig, args.sessions)
        result["phases"]["rssFloorOperatorId"] = phase.end()
        delete_floor(b, many_refs)
        time.sleep(2)
        say(f"creating {args.rss_sessions} sessions, {args.sessions} at a time")
        phase = Phase(procs, "rss", local)
        many = many_sessions(b, grants, args.rss_sessions, args.sessions, args.rss_timeout)
        time.sleep(5)
        rss["activeSessions"] = many["active"]
        rss["withSessionsMiB"] = status_kib(operator.pid, "VmRSS") / 1024
        rss["peakMiB"] = status_kib(operator.pid, "VmHWM") / 1024
        rss["threads"] = status_kib(operator.pid, "Threads")
        rss["perSessionKiB"] = (
            (rss["withSessionsMiB"] - rss["afterLatencyPhasesZeroSessionsMiB"])
            * 1024
            / max(1, many["active"])
        )
        result["phases"]["rss"] = phase.end()
        result["rss"] = {
            **rss,
            "creation": many,
            "floorCreation": floor_rate,
            "floorOperatorIdentityCreation": floor_rate_op,
        }
        result["controlPlaneRssAtEndMiB"] = procs.rss_mib()
        print_rss(result["rss"])
        if args.trace:
            result["trace"] = trace_profile(trace, op_samples, op_rev)
            print_trace(result["trace"])
        print_phases(result["phases"])
        result["watchErrors"] = watcher.errors
    finally:
        floor.close()
        if watcher is not None:
            watcher.stop()
        if sampler is not None:
            sampler.stop()
            result["operatorRssTimelineMiB"] = sampler.samples
        if operator is not None:
            operator.stop()
        local.stop()
        result["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]
        result["loadavg"] = result["loadavgAtEnd"]
        say("stopped every process of this run")


BenchOperator = harness.BenchOperator


def print_rss(rss: dict[str, Any]) -> None:
    creation = rss["creation"]
    print("\nOperator memory (VmRSS)")
    print(f"  0 sessions, fresh start:             {rss['freshZeroSessionsMiB']:8.1f} MiB")
    after = rss["afterLatencyPhasesZeroSessionsMiB"]
    print(f"  0 sessions, after the latency runs:  {after:8.1f} MiB")
    print(
        f"  {rss['activeSessions']} active sessions:"
        f"{'':<{max(1, 20 - len(str(rss['activeSessions'])))}}{rss['withSessionsMiB']:8.1f} MiB"
        f"  (peak {rss['peakMiB']:.1f} MiB, {rss['perSessionKiB']:.0f} KiB per session, "
        f"{rss['threads']} threads)"
    )
    c = creation["createToActive"]
    print(
        f"  {creation['active']}/{creation['requested']} Active in {creation['seconds']:.1f} s "
        f"({creation['active'] / creation['seconds']:.1f} sessions/s); create -> Active "
        f"p50 {ms(c['p50'])}, p99 {ms(c['p99'])}, max {ms(c['max'])}"
    )
    for label, key in (
        ("floor", "floorCreation"),
        ("floor (operator's id)", "floorOperatorIdentityCreation"),
    ):
        floor = rss.get(key)
        if not floor:
            continue
        f = floor["issueLatency"]
        print(
            f"  {label}: {floor['issued']}/{floor['requested']} credentials.issue in "
            f"{floor['seconds']:.1f} s ({floor['perSecond']:.1f}/s, {floor['inFlight']} in "
            f"flight; operator/floor rate "
            f"{stats.ratio(creation['active'] / creation['seconds'], floor['perSecond']):.2f}); "
            f"issue p50 {ms(f['p50'])}, p99 {ms(f['p99'])}"
        )
        for err in floor["failures"]:
            print(f"  FLOOR ERROR {err}")
    timeline = creation["kthActiveAtSeconds"]
    rates = []
    previous_k, previous_t = 0, 0.0
    for k, t in timeline:
        rates.append(f"{previous_k}-{k}: {(k - previous_k) / max(t - previous_t, 1e-9):.1f}/s")
        previous_k, previous_t = k, t
    print("  activation rate by slice: " + ", ".join(rates))
    for name, err in creation["failures"]:
        print(f"  ERROR {name}: {err}")


def print_batches(batches: Sequence[dict[str, Any]]) -> None:
    print("  each batch, p50 / p99 (run-to-run spread; kinds rotate which goes first):")
    for kind in dict.fromkeys(x["kind"] for x in batches):
        cells = [
            f"r{x['round']} {ms(x['p50'])} / {ms(x['p99'])}" for x in batches if x["kind"] == kind
        ]
        print(f"    {kind:<22}" + "; ".join(cells))


def print_stages(stages: dict[str, Any]) -> None:
    print("  operator path, stage by stage (p50 / p99), from its JSON log:")
    for stage in stages.values():
        print(f"    {stage['what']:<68}{ms(stage['p50']):>9} /{ms(stage['p99']):>9}")


def print_phases(phases: dict[str, Any]) -> None:
    print("\nWhere the CPU went (seconds of CPU per process; 2 cores = 2.0 busy)")
    for name, p in phases.items():
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(p["cpuSeconds"].items()))
        print(
            f"  {name:<11} wall {p['wallSeconds']:.1f} s, busy {p['cpuCoresBusy']:.2f} cores, "
            f"loadavg {p['loadavgBefore'][0]:.2f} -> {p['loadavgAfter'][0]:.2f}, "
            f"other control planes {p['otherControlPlanesAtEnd']}: {cpu}"
        )
    print("\nReads that waited for a fresh watch cache (apiserver metrics; buckets: at most)")
    for name, p in phases.items():
        for resource, w in sorted(p.get("watchCacheReadWaits", {}).items()):
            print(
                f"  {name:<11} {resource:<40} {w['reads']:>6} reads, mean {ms(w['meanSeconds'])},"
                f" p50 <= {ms(w['p50AtMostSeconds'])}, p99 <= {ms(w['p99AtMostSeconds'])}"
            )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        say(f"interrupted ({e or 'Ctrl-C'}); every process was stopped")
        sys.exit(130)
