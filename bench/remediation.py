"""Benchmark: remediation requests decided and applied, many in flight, beside a floor.

    .venv/bin/python bench/remediation.py                # 3 runs, 200 per kind, 20 in flight
    .venv/bin/python bench/remediation.py --quick        # a smoke run (small sizes)

Each run starts its own local control plane (etcd + kube-apiserver + kube-controller-manager)
and the real operator (a subprocess under its own ClusterRole), then measures, ``--concurrency``
requests in flight at a time, ``--requests`` of each kind:

1. **approval -> applied** (the goal): a request waiting for approval gets one (the approver's
   status patch, through the approval webhook); time until a watch sees it ``Succeeded`` (the
   Deployment scaled). Floor: on a copy of the RemediationRequest CRD in another API group, which
   no operator or webhook watches, the approver's status patch, then the operator's own drive of
   the request (``controllers.requests.drive``: the very function the operator's handlers call,
   with the operator's identity and client), called directly by the same thread once the patch
   returns: the same reads, SubjectAccessReviews, dry-run, status writes and scale patch, in the
   same order and overlap.
2. **request -> applied** for ``auto`` requests: the agent creates a request with its session
   token; time until a watch sees it ``Succeeded``. Floor: the create, then the same drive.

The floor runs interleaved with the operator, on the same cluster at the same time of the run:
rounds of four batches (both kinds, operator and floor), rotating which goes first. Each run
reports p50/p99 per kind; the goal (approval -> applied p99 <= 300 ms and <= 2x the floor) is
judged on the median of the runs' p99s. A sample that fails is recorded and the run goes on; a run
that fails is recorded and the next run goes on. Writes ``bench/results/remediation-<time>.json``
(render docs with ``bench/report.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, watch  # noqa: E402
from tests.e2e import agents  # noqa: E402

from agent_authority.cli import dev  # noqa: E402
from agent_authority.controllers import requests  # noqa: E402
from agent_authority.kube import api, manifests  # noqa: E402
from agent_authority.localcluster import cluster  # noqa: E402
from agent_authority.models import GROUP, VERSION  # noqa: E402
from bench import harness, stats  # noqa: E402

RR = "remediationrequests"
FLOOR_GROUP = "floor.bench.agentauthority.io"  # a copy of the CRD nobody watches
AGENT, AGENT_GROUP, APPROVER = "bench-agent", "bench-agents", "bench-approver"
RBAC = "rbac.authorization.k8s.io"
EVIDENCE = [
    {"kind": "metric", "source": "bench", "sha256": "b" * 64, "observedAt": "2026-11-21T00:00:00Z"}
]
SESSION = "bench"
TIMEOUT = 60.0
GOAL_RATIO = 2.0
GOAL_SECONDS = 0.300
KINDS = ("approval", "approvalFloor", "auto", "autoFloor")
RESULTS = harness.RESULTS
TRACE_SHIM = ROOT / "bench" / "operator_trace"
say = harness.say
T = TypeVar("T")


def describe(e: Exception) -> str:
    """An error in one line: the apiserver's message for API errors, not its headers."""
    if isinstance(e, client.ApiException):
        return f"{e.status} {agents.refusal(e)}"[:300]
    return f"{type(e).__name__}: {e}".splitlines()[0][:300]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


@dataclasses.dataclass
class Sample:
    name: str
    seconds: float | None
    error: str | None = None


class PhaseWatcher(threading.Thread):
    """One watch on the requests' namespace: when each request was first seen in each phase."""

    def __init__(self, api: Any, namespace: str) -> None:
        super().__init__(daemon=True, name="phase-watcher")
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.seen: dict[str, dict[str, float]] = collections.defaultdict(dict)
        self.bodies: dict[str, Any] = {}
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self.errors = 0

    def wait(self, name: str, phases: set[str], timeout: float = TIMEOUT) -> tuple[str, float]:
        """The first of ``phases`` the request reaches and when it was seen (or TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                hits = [(t, p) for p, t in self.seen.get(name, {}).items() if p in phases]
                if hits:
                    t, p = min(hits)
                    return p, t
                left = deadline - time.monotonic()
                if left <= 0:
                    last = (self.bodies.get(name) or {}).get("status", {})
                    raise TimeoutError(f"{name} not in {sorted(phases)} after {timeout:.0f} s: "
                                       f"{last.get('phase')} {last.get('reason')}")  # fmt: skip
                self.changed.wait(left)

    def run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = self.custom.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, RR
                    )
                    for item in listing["items"]:
                        self._see(item, time.monotonic())
                    version = listing["metadata"]["resourceVersion"]
                stream = watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    RR,
                    resource_version=version,
                    timeout_seconds=10,
                ):
                    now = time.monotonic()
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = event["object"]["metadata"]["resourceVersion"]
                    self._see(event["object"], now)
                    if self._stop.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except Exception as e:  # reconnect (from scratch after 410 Gone)
                self.errors += 1
                if isinstance(e, client.ApiException) and e.status == 410:
                    version = ""
                time.sleep(0.2)

    def _see(self, body: Any, now: float) -> None:
        name = body["metadata"]["name"]
        phase = (body.get("status") or {}).get("phase") or "Pending"
        with self.changed:
            self.bodies[name] = body
            self.seen[name].setdefault(phase, now)
            self.changed.notify_all()

    def stop(self) -> None:
        self._stop.set()


def _token_client(local: cluster.LocalCluster, token: str, pool: int) -> Any:
    configuration = client.Configuration()
    configuration.host = local.url
    configuration.ssl_ca_cert = str(local.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def _user(local: cluster.LocalCluster, name: str, groups: list[str], pool: int) -> Any:
    api = agents.as_user(local, name, groups)
    api.configuration.connection_pool_maxsize = pool
    return client.ApiClient(api.configuration)  # the pool size is read when the client is built


class FloorLoop:
    """One event loop, in its own thread, for the floor's drives: one client with the operator's
    identity (``api.Kube``, one connection pool, as the operator's), shared by every slot, and
    the process default the Events are posted with, as in the operator."""

    def __init__(self, kubeconfig: pathlib.Path) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="floor-loop").start()

        async def connect() -> api.Kube:
            kube = api.Kube.from_kubeconfig(str(kubeconfig))
            api.set_default(kube)
            return kube

        self.kube = self.run(connect())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.kube.close())
        api.set_default(None)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Bench:
    """The world of one run and the four kinds of sample."""

    def __init__(
        self, local: cluster.LocalCluster, concurrency: int, operator_kubeconfig: pathlib.Path
    ) -> None:
        self.local = local
        self.concurrency = concurrency
        self.operator_kubeconfig = operator_kubeconfig
        self.floor: FloorLoop | None = None
        pool = concurrency + 4
        self.admin = _user(local, "admin", ["system:masters"], pool)
        self.approver = _user(local, APPROVER, [], pool)
        self.agent = _user(local, AGENT, [AGENT_GROUP], pool)
        self.ns, self.auto_ns, self.propose_ns = "bench-agents", "bench-auto", "bench-propose"
        self.grant = "bench"
        self.replicas: dict[tuple[str, str], int] = {}

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self) -> None:
        core, apps = client.CoreV1Api(self.admin), client.AppsV1Api(self.admin)
        for name in (self.ns, self.auto_ns, self.propose_ns):
            core.create_namespace({"metadata": {"name": name}})
        # The operator writes identities and tokens only where its session Role is installed.
        manifests.apply(self.admin, dev.session_namespace_rbac([self.ns]))
        manifests.apply(self.admin, dev.scope_namespace_rbac([self.auto_ns, self.propose_ns]))
        self._floor_crd()
        rules = {
            AGENT: [
                {
                    "apiGroups": [GROUP],
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "list", "watch", "patch"],
                }
            ],
            APPROVER: [
                {
                    "apiGroups": [GROUP],
                    "resources": [RR, "incidentsessions"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [GROUP], "resources": [f"{RR}/status"], "verbs": ["patch"]},
                {"apiGroups": [FLOOR_GROUP], "resources": [RR], "verbs": ["get"]},
                {"apiGroups": [FLOOR_GROUP], "resources": [f"{RR}/status"], "verbs": ["patch"]},
                {
                    "apiGroups": [GROUP],
                    "resources": ["agentgrants"],
                    "verbs": ["approve"],
                    "resourceNames": [self.grant],
                },
            ],
        }
        for user, user_rules in rules.items():
            agents.cluster_role(self.admin, f"bench-{user}", user_rules, [user])
        # The floor drives its copies with the operator's identity: what it does to requests.
        agents.cluster_role(self.admin, "bench-floor-operator", [
            {"apiGroups": [FLOOR_GROUP], "resources": [RR], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [FLOOR_GROUP], "resources": [f"{RR}/status"], "verbs": ["patch"]},
        ], [dev.OPERATOR_USER])  # fmt: skip
        agents.create_grant(self.admin, self.grant, self._grant_spec())
        for namespace in (self.auto_ns, self.propose_ns):
            for slot in range(self.concurrency):
                for side in ("op", "fl"):
                    name = f"{side}-{slot}"
                    apps.create_namespaced_deployment(namespace, _deployment(name))
                    self.replicas[(namespace, name)] = 0
        body = agents.session_body(SESSION, self.grant, ttlSeconds=3600)
        body["spec"]["incident"]["severity"] = "SEV1"
        agents.open_session(self.agent, self.ns, body)
        session = agents.wait_phase(self.admin, self.ns, SESSION, {"Active"}, timeout=60)
        token = agents.token_of(self.agent, self.ns, session)
        # The auto floor creates its requests as the same session identity: let it, on the copy.
        agents.cluster_role(self.admin, "bench-floor-requests", [
            {"apiGroups": [FLOOR_GROUP], "resources": [RR], "verbs": ["create", "get"]}
        ], [])  # fmt: skip
        client.RbacAuthorizationV1Api(self.admin).create_namespaced_role_binding(
            self.ns,
            {
                "metadata": {"name": "bench-floor-requests"},
                "roleRef": {
                    "apiGroup": RBAC,
                    "kind": "ClusterRole",
                    "name": "bench-floor-requests",
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": session["status"]["serviceAccountName"],
                        "namespace": self.ns,
                    }
                ],
            },
        )
        self.session_client = _token_client(self.local, token, self.concurrency + 4)
        account = session["status"]["serviceAccountName"]
        # What the create webhook stamps on a real request (the floor's copy has no webhook).
        self.requester = {
            "username": f"system:serviceaccount:{self.ns}:{account}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{self.ns}",
                "system:authenticated",
            ],
        }
        self.floor = FloorLoop(self.operator_kubeconfig)

    def close(self) -> None:
        if self.floor is not None:
            self.floor.close()

    def _grant_spec(self) -> dict[str, Any]:
        return {
            "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
            "incidents": {"severities": ["SEV1"]},
            "read": [
                {
                    "name": "apps",
                    "namespaces": [self.auto_ns, self.propose_ns],
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                }
            ],
            "remediations": [
                # A change of 1 replica applies at once; 5 waits for an approver.
                {
                    "action": "scale-workload",
                    "namespaces": [self.auto_ns, self.propose_ns],
                    "autonomy": "auto",
                    "limits": {"maxReplicasDelta": 1},
                }
            ],
            "approval": {"timeoutSeconds": 3600},
            "session": {
                "maxTtlSeconds": 3600,
                "maxConcurrentSessions": 10,
                "maxDeniedRequests": 1000,
            },
        }

    def _floor_crd(self) -> None:
        """The RemediationRequest CRD again, in :data:`FLOOR_GROUP` (same schema, no webhooks,
        no controller): the floor's objects cost the apiserver what the operator's cost."""
        crd = yaml.safe_load(
            (ROOT / "crds" / "agentauthority.io_remediationrequests.yaml").read_text()
        )
        crd["metadata"] = {"name": f"{RR}.{FLOOR_GROUP}"}
        crd["spec"]["group"] = FLOOR_GROUP
        crd["spec"]["names"].pop("shortNames", None)
        crd["spec"]["names"].pop("categories", None)
        ext = client.ApiextensionsV1Api(self.admin)
        ext.create_custom_resource_definition(crd)

        def established() -> bool:
            found = ext.read_custom_resource_definition(f"{RR}.{FLOOR_GROUP}")
            return any(
                c.type == "Established" and c.status == "True"
                for c in (found.status.conditions or [])
            )

        agents.wait_for(established, 30, "the floor CRD to be established")

    # -- requests --------------------------------------------------------------------------------
    def _body(self, group: str, name: str, namespace: str, deployment: str, replicas: int) -> Any:
        body = self._spec(group, name, namespace, deployment, replicas)
        if group == FLOOR_GROUP:
            body["spec"]["requester"] = self.requester
        return body

    def _spec(self, group: str, name: str, namespace: str, deployment: str, replicas: int) -> Any:
        return {
            "apiVersion": f"{group}/{VERSION}",
            "kind": "RemediationRequest",
            "metadata": {"name": name},
            "spec": {
                "sessionRef": {"name": SESSION},
                "hypothesis": "bench",
                "evidence": EVIDENCE,
                "action": {
                    "type": "scale-workload",
                    "target": {"kind": "Deployment", "namespace": namespace, "name": deployment},
                    "params": {"replicas": replicas},
                },
            },
        }

    def _next(self, namespace: str, deployment: str, delta: int) -> int:
        """Alternate a slot's Deployment between 0 and ``delta`` replicas (one slot, one thread)."""
        target = 0 if self.replicas[(namespace, deployment)] else delta
        self.replicas[(namespace, deployment)] = target
        return target

    def _approval_patch(self, api: Any, group: str, name: str) -> Callable[[], Any]:
        """Read the request (not timed: an approver reads before deciding); the patch to time."""
        custom = client.CustomObjectsApi(api)
        current = custom.get_namespaced_custom_object(group, VERSION, self.ns, RR, name)
        entry: dict[str, Any] = {"decision": "approve", "reason": "bench"}
        if group == FLOOR_GROUP:  # what the approval webhook stamps on a real request
            entry["approver"] = {"username": APPROVER, "groups": ["system:authenticated"]}
            entry["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        approvals = [*(current.get("status") or {}).get("approvals", []), entry]
        return lambda: custom.patch_namespaced_custom_object_status(
            group, VERSION, self.ns, RR, name, {"status": {"approvals": approvals}}
        )

    def approval(self, watcher: PhaseWatcher, name: str, slot: int) -> float:
        deployment = f"op-{slot}"
        replicas = self._next(self.propose_ns, deployment, 5)
        body = self._body(GROUP, name, self.propose_ns, deployment, replicas)
        client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
            GROUP, VERSION, self.ns, RR, body
        )
        phase, _ = watcher.wait(name, {"AwaitingApproval", "Succeeded", "Failed", "Denied"})
        if phase != "AwaitingApproval":
            raise RuntimeError(f"expected AwaitingApproval, got {phase}")
        patch = self._approval_patch(self.approver, GROUP, name)
        started = time.monotonic()
        patch()
        phase, seen = watcher.wait(name, {"Succeeded", "Failed", "Denied"})
        if phase != "Succeeded":
            raise RuntimeError(f"{phase}: {watcher.bodies[name]['status'].get('reason')}")
        return seen - started

    def _drive(self, seen: Any) -> None:
        """The operator's drive of a floor request (``requests.drive``), on the floor's loop;
        ``seen``: the request as the write just made returned it (the operator's hint is the
        watch event of that write)."""
        assert self.floor is not None
        meta = seen["metadata"]
        self.floor.run(
            requests.drive(
                self.floor.kube,
                self.ns,
                meta["name"],
                meta["uid"],
                dev.OPERATOR_USER,
                hint=seen,
                group=FLOOR_GROUP,
            )
        )

    def _floor_phase(self, name: str, wanted: str) -> None:
        """Not timed: the floor request reached ``wanted`` (else the sample is an error)."""
        found = client.CustomObjectsApi(self.admin).get_namespaced_custom_object(
            FLOOR_GROUP, VERSION, self.ns, RR, name
        )
        status = found.get("status") or {}
        if status.get("phase") != wanted:
            raise RuntimeError(f"floor: {status.get('phase')}: {status.get('reason')}")

    def approval_floor(self, name: str, slot: int) -> float:
        deployment = f"fl-{slot}"
        replicas = self._next(self.propose_ns, deployment, 5)
        created = client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
            FLOOR_GROUP, VERSION, self.ns, RR,
            self._body(FLOOR_GROUP, name, self.propose_ns, deployment, replicas),
        )  # fmt: skip
        self._drive(created)  # evaluated, as the operator does before anyone approves
        self._floor_phase(name, "AwaitingApproval")
        patch = self._approval_patch(self.approver, FLOOR_GROUP, name)
        started = time.monotonic()
        approved = patch()
        self._drive(approved)
        elapsed = time.monotonic() - started
        self._floor_phase(name, "Succeeded")
        return elapsed

    def auto(self, watcher: PhaseWatcher, name: str, slot: int) -> float:
        deployment = f"op-{slot}"
        replicas = self._next(self.auto_ns, deployment, 1)
        started = time.monotonic()
        client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
            GROUP, VERSION, self.ns, RR, self._body(GROUP, name, self.auto_ns, deployment, replicas)
        )  # fmt: skip
        phase, seen = watcher.wait(name, {"Succeeded", "Failed", "Denied", "AwaitingApproval"})
        if phase != "Succeeded":
            raise RuntimeError(f"{phase}: {watcher.bodies[name]['status'].get('reason')}")
        return seen - started

    def auto_floor(self, name: str, slot: int) -> float:
        deployment = f"fl-{slot}"
        replicas = self._next(self.auto_ns, deployment, 1)
        started = time.monotonic()
        created = client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
            FLOOR_GROUP, VERSION, self.ns, RR,
            self._body(FLOOR_GROUP, name, self.auto_ns, deployment, replicas),
        )  # fmt: skip
        self._drive(created)
        elapsed = time.monotonic() - started
        self._floor_phase(name, "Succeeded")
        return elapsed

    # -- batches ---------------------------------------------------------------------------------
    def batch(self, watcher: PhaseWatcher, kind: str, prefix: str, count: int) -> list[Sample]:
        """``count`` requests of ``kind``, ``concurrency`` in flight; one slot per thread, so a
        slot's Deployment is never scaled by two requests at once."""
        per_slot = [list(range(s, count, self.concurrency)) for s in range(self.concurrency)]
        measure: dict[str, Callable[[str, int], float]] = {
            "approval": lambda n, s: self.approval(watcher, n, s),
            "approvalFloor": self.approval_floor,
            "auto": lambda n, s: self.auto(watcher, n, s),
            "autoFloor": self.auto_floor,
        }

        def slot_worker(slot: int) -> list[Sample]:
            out = []
            for i in per_slot[slot]:
                name = f"{prefix}-{kind.lower()}-{i:04d}"
                try:
                    out.append(Sample(name, measure[kind](name, slot)))
                except Exception as e:  # recorded; the batch goes on
                    out.append(Sample(name, None, describe(e)))
            return out

        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            return [
                s for samples in pool.map(slot_worker, range(self.concurrency)) for s in samples
            ]


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


def run_once(args: argparse.Namespace, result: dict[str, Any], log: pathlib.Path) -> None:
    """One full run on its own control plane and operator; fills ``result`` as it goes."""
    result["loadavgAtStart"] = [round(x, 2) for x in os.getloadavg()]
    audit_port = harness.free_port()
    local = cluster.LocalCluster(cluster.Options(audit_url=f"https://127.0.0.1:{audit_port}/audit"))
    operator: harness.BenchOperator | None = None
    watcher: PhaseWatcher | None = None
    bench: Bench | None = None
    try:
        local.start()
        env = dev.prepare(
            local,
            metrics_port=harness.free_port(),
            webhook_port=harness.free_port(),
            audit_port=audit_port,
        )
        operator = harness.BenchOperator(local, env, log)
        saved = dict(os.environ)
        if args.trace:  # only the operator process sees these (bench/operator_trace)
            os.environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(TRACE_SHIM), os.environ.get("PYTHONPATH", "")) if p
            )
            os.environ["BENCH_TRACE_FILE"] = str(log.with_suffix(".trace.jsonl"))
        try:
            operator.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        say(f"operator running; log: {log}")
        bench = Bench(local, args.concurrency, env.kubeconfig)
        bench.setup()
        watcher = PhaseWatcher(bench.admin, bench.ns)
        watcher.start()
        # Warm-up, not measured: connection pools, webhook TLS, the operator's informers.
        for kind in KINDS:
            warm = bench.batch(watcher, kind, "warm", args.concurrency)
            result.setdefault("warmupErrors", []).extend(
                f"{s.name}: {s.error}" for s in warm if s.error
            )
        samples: dict[str, list[Sample]] = {k: [] for k in KINDS}
        procs = harness.Processes(local, operator.pid)
        cpu: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}
        waits: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}
        waited: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}
        per_round = math.ceil(args.requests / args.rounds)
        for r in range(args.rounds):
            for kind in KINDS[r % 4 :] + KINDS[: r % 4]:  # rotate who goes first
                say(
                    f"round {r + 1}/{args.rounds}: {per_round} {kind}, {args.concurrency} in flight"
                )
                phase = harness.Phase(procs, kind, local)
                samples[kind] += bench.batch(watcher, kind, f"r{r}", per_round)
                ended = phase.end()
                cpu[kind].update(ended["cpuSeconds"])
                for resource, w in ended.get("watchCacheReadWaits", {}).items():
                    waits[kind][resource] += w["reads"]
                    waited[kind][resource] += w["reads"] * w["meanSeconds"]
        result["kinds"] = {
            kind: {
                **stats.summary([s.seconds for s in v if s.seconds is not None]),
                "errors": [f"{s.name}: {s.error}" for s in v if s.error],
                "samplesSeconds": [round(s.seconds, 4) for s in v if s.seconds is not None],
                # CPU seconds of each process over this kind's batches, and per request
                "cpuSeconds": {p: round(c, 2) for p, c in sorted(cpu[kind].items())},
                "cpuMsPerRequest": {
                    p: round(1000 * c / max(1, len(v)), 1) for p, c in sorted(cpu[kind].items())
                },
                # the apiserver's consistent reads that waited for a fresh watch cache
                "watchCacheReadWaits": {
                    r: {"reads": n, "meanSeconds": round(waited[kind][r] / n, 4)}
                    for r, n in sorted(waits[kind].items())
                    if n
                },
            }
            for kind, v in samples.items()
        }
        result["watchErrors"] = watcher.errors
        if args.trace:  # when the watch first saw each request in each phase (wall clock)
            offset = time.time() - time.monotonic()
            seen = {n: {p: t + offset for p, t in v.items()} for n, v in watcher.seen.items()}
            log.with_suffix(".phases.json").write_text(json.dumps(seen) + "\n")
        print_run(result)
    finally:
        if watcher is not None:
            watcher.stop()
        if bench is not None:
            bench.close()
        if operator is not None:
            operator.stop()
        local.stop()
        result["loadavg"] = [round(x, 2) for x in os.getloadavg()]


def print_run(result: dict[str, Any]) -> None:
    print(
        f"\nRun {result['run']}: {'kind':<16}{'n':>5}{'p50':>10}{'p99':>10}{'max':>10}{'errors':>8}"
    )
    for kind, k in result["kinds"].items():
        print(
            f"       {kind:<16}{k['n']:>5}{ms(k['p50']):>10}{ms(k['p99']):>10}{ms(k['max']):>10}"
            f"{len(k['errors']):>8}"
        )
        for err in k["errors"][:10]:
            print(f"         ERROR {err}")
    print("\n       CPU ms per request, by process (over each kind's batches)")
    for kind, k in result["kinds"].items():
        per = k.get("cpuMsPerRequest", {})
        print(f"       {kind:<16}" + ", ".join(f"{p} {v:.1f}" for p, v in per.items()))


def _p99(run: dict[str, Any], kind: str) -> float:
    value = run.get("kinds", {}).get(kind, {}).get("p99")
    return float(value) if isinstance(value, int | float) else math.nan


def summarize(runs: Sequence[dict[str, Any]], wanted: int) -> dict[str, Any]:
    """Both kinds judged on the median of the runs' p99s (the goal is on approval -> applied)."""
    approval = stats.judge(
        [_p99(r, "approval") for r in runs],
        [_p99(r, "approvalFloor") for r in runs],
        max_ratio=GOAL_RATIO,
        max_seconds=GOAL_SECONDS,
        runs_wanted=max(wanted, stats.DEFAULT_RUNS),  # a goal needs 3 runs at least
    )
    auto = stats.judge(
        [_p99(r, "auto") for r in runs],
        [_p99(r, "autoFloor") for r in runs],
        max_ratio=math.inf,  # reported, no goal
        runs_wanted=max(wanted, stats.DEFAULT_RUNS),  # a goal needs 3 runs at least
    )
    errors = [
        sum(len(k.get("errors", [])) for k in r.get("kinds", {}).values()) + ("error" in r)
        for r in runs
    ]
    return {
        "approval": approval,
        "auto": auto,
        "errorsPerRun": errors,
        "runErrors": [r.get("error") for r in runs],
        "loadavg": [r.get("loadavg", [math.nan] * 3) for r in runs],
        "goalMet": approval["goalMet"],
    }


def print_summary(s: dict[str, Any]) -> None:
    for key, label in (("approval", "approval -> applied"), ("auto", "auto request -> applied")):
        j = s[key]
        print(f"\n{label}, p99 per run (median decides)")
        for i, (o, f) in enumerate(zip(j["operatorP99s"], j["floorP99s"], strict=True)):
            print(
                f"  run {i + 1}: operator {ms(o)}, floor {ms(f)}, ratio {stats.ratio(o, f):.2f}x, "
                f"errors {s['errorsPerRun'][i]}, loadavg {s['loadavg'][i][0]:.2f}"
                + (f"  FAILED: {s['runErrors'][i]}" if s["runErrors"][i] else "")
            )
        print(
            f"  median: operator {ms(j['operatorMedianP99'])}, floor {ms(j['floorMedianP99'])}, "
            f"ratio {j['ratio']:.2f}x"
        )
    a = s["approval"]
    print(
        f"\ngoal approval -> applied p99 <= {GOAL_SECONDS * 1000:.0f} ms and <= {GOAL_RATIO:.0f}x "
        f"floor (median of runs): {'MET' if a['goalMet'] else 'NOT MET'}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=200, help="requests per kind per run")
    p.add_argument("--concurrency", type=int, default=20, help="requests in flight")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the four kinds, interleaved")
    p.add_argument("--runs", type=int, default=stats.DEFAULT_RUNS, help="full runs (median)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 40 per kind, 10 in flight")
    p.add_argument("--out", type=pathlib.Path, default=None, help="JSON result file")
    p.add_argument(
        "--trace",
        action="store_true",
        help="record the operator's API calls (bench/operator_trace) and the phases the watch "
        "saw, next to the operator log; adds a little overhead",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.concurrency, args.rounds = 40, 10, 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    harness.stop_on_sigterm()
    stamp = harness.stamp()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"remediation-{stamp}.json"
    result = harness.result_header("remediation", args, stamp)
    try:
        for i in range(args.runs):
            say(f"== run {i + 1}/{args.runs}")
            run: dict[str, Any] = {"run": i + 1}
            result["runs"].append(run)
            try:
                run_once(args, run, out.with_suffix(f".run{i + 1}.operator.log"))
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failed run is recorded; the next one still runs
                run["error"] = describe(e)
                say(f"run {i + 1} failed: {run['error']}")
    finally:
        result["summary"] = summarize(result["runs"], args.runs)
        result["loadavgAtEnd"] = [round(x, 2) for x in os.getloadavg()]
        with contextlib.suppress(Exception):
            print_summary(result["summary"])
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        say(f"results in {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        say(f"interrupted ({e or 'Ctrl-C'}); every process was stopped")
        sys.exit(130)
