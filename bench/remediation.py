"""Benchmark: how fast remediation requests are decided and applied, beside the floor.

    .venv/bin/python bench/remediation.py [--requests 40]

Starts its own local control plane (etcd + kube-apiserver + kube-controller-manager) and the real
operator (a subprocess under its own ClusterRole), then measures, on the same cluster in the same
run:

1. approval -> applied: an approver appends an approval (status subresource, through the
   approval webhook); time until the request is ``Succeeded`` and the Deployment is scaled.
   Floor: the same API calls made directly by this script, one after the other: the approval
   status patch, read of the request, the session and the grant, read of the Deployment, the
   scale patch, and the three status patches the operator writes (Approved, Applying,
   Succeeded).
2. request -> decision for ``auto`` requests: the agent creates a request with its session token;
   time until the request is ``Succeeded`` (decided and applied with no human).
   Floor: the create, then the reads (session, grant, Deployment), the dry-run patch, the real
   patch and the status patches, made directly.

The floors run after the operator was stopped and its webhook configurations removed, so they
measure the bare apiserver doing the same work, with nobody racing them: the ratio is the whole
cost of the operator, its admission webhooks and its watch-driven reaction included.

Each measurement is polled every 5 ms. Prints p50/p99/max and the ratio operator/floor; writes
``bench/results/remediation-<time>.json``. Bounded: at most a few minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402
from tests.e2e import agents  # noqa: E402
from tests.e2e.operator_process import OperatorProcess  # noqa: E402

from agent_authority.cli import dev  # noqa: E402
from agent_authority.kube import manifests  # noqa: E402
from agent_authority.localcluster import cluster  # noqa: E402
from agent_authority.models import GROUP, VERSION  # noqa: E402

RR = "remediationrequests"
AGENT, AGENT_GROUP, APPROVER = "bench-agent", "bench-agents", "bench-approver"
RBAC = "rbac.authorization.k8s.io"
EVIDENCE = [
    {"kind": "metric", "source": "bench", "sha256": "b" * 64, "observedAt": "2026-11-21T00:00:00Z"}
]
POLL = 0.005


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
        "p50_ms": round(_pct(values, 0.5) * 1000, 1),
        "p99_ms": round(_pct(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def _until(check: Callable[[], bool], timeout: float = 30) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("benchmark step timed out")
        time.sleep(POLL)
    return time.monotonic()


class Bench:
    def __init__(self, local: cluster.LocalCluster, operator: OperatorProcess) -> None:
        self.local = local
        self.admin = agents.as_user(local, "admin", ["system:masters"])
        self.approver = agents.as_user(local, APPROVER)
        self.agent = agents.as_user(local, AGENT, [AGENT_GROUP])
        self.ns, self.auto, self.propose = "bench-agents", "bench-auto", "bench-propose"
        self.grant = "bench"

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, deployments: int) -> None:
        core, apps = client.CoreV1Api(self.admin), client.AppsV1Api(self.admin)
        rbac = client.RbacAuthorizationV1Api(self.admin)
        for name in (self.ns, self.auto, self.propose):
            core.create_namespace({"metadata": {"name": name}})
        # The operator writes identities and tokens only where its session Role is installed.
        manifests.apply(self.admin, dev.session_namespace_rbac([self.ns]))
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
                {
                    "apiGroups": [GROUP],
                    "resources": ["agentgrants"],
                    "verbs": ["approve"],
                    "resourceNames": [self.grant],
                },
            ],
        }
        for user, user_rules in rules.items():
            rbac.create_cluster_role({"metadata": {"name": f"bench-{user}"}, "rules": user_rules})
            rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": f"bench-{user}"},
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": f"bench-{user}"},
                    "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC}],
                }
            )
        agents.create_grant(
            self.admin,
            self.grant,
            {
                "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
                "incidents": {"severities": ["SEV1"]},
                "read": [
                    {
                        "name": "apps",
                        "namespaces": [self.auto, self.propose],
                        "apiGroups": ["apps"],
                        "resources": ["deployments"],
                    }
                ],
                "remediations": [
                    # Within the auto limit (+1) applies at once; +5 waits for an approver.
                    {
                        "action": "scale-workload",
                        "namespaces": [self.auto, self.propose],
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
            },
        )
        for namespace in (self.auto, self.propose):
            for i in range(deployments):
                apps.create_namespaced_deployment(
                    namespace,
                    {
                        "metadata": {"name": f"d{i}"},
                        "spec": {
                            "replicas": 0,
                            "selector": {"matchLabels": {"app": f"d{i}"}},
                            "template": {
                                "metadata": {"labels": {"app": f"d{i}"}},
                                "spec": {
                                    "containers": [{"name": "c", "image": "registry.invalid/x"}]
                                },
                            },
                        },
                    },
                )
        body = agents.session_body("bench", self.grant)
        body["spec"]["incident"]["severity"] = "SEV1"
        agents.open_session(self.agent, self.ns, body)
        session = agents.wait_phase(self.admin, self.ns, "bench", {"Active"})
        self.session_token = agents.token_of(self.agent, self.ns, session)
        self.session_client = _token_client(self.local, self.session_token)

    # -- helpers ---------------------------------------------------------------------------------
    def _request_body(self, name: str, namespace: str, deployment: str, replicas: int) -> Any:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemediationRequest",
            "metadata": {"name": name},
            "spec": {
                "sessionRef": {"name": "bench"},
                "hypothesis": "bench",
                "evidence": EVIDENCE,
                "action": {
                    "type": "scale-workload",
                    "target": {"kind": "Deployment", "namespace": namespace, "name": deployment},
                    "params": {"replicas": replicas},
                },
            },
        }

    def _get(self, api: Any, name: str) -> Any:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, self.ns, RR, name
        )

    def _phase(self, name: str) -> str:
        return str((self._get(self.admin, name).get("status") or {}).get("phase"))

    def _replicas(self, namespace: str, deployment: str) -> int:
        scale = client.AppsV1Api(self.admin).read_namespaced_deployment(deployment, namespace)
        return int(scale.spec.replicas)

    def _approve(self, api: Any, name: str) -> None:
        current = self._get(api, name)
        approvals = [
            *(current.get("status") or {}).get("approvals", []),
            {"decision": "approve", "reason": "bench"},
        ]
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            GROUP, VERSION, self.ns, RR, name, {"status": {"approvals": approvals}}
        )

    # -- 1. approval -> applied ------------------------------------------------------------------
    def approval_to_applied(self, n: int) -> list[float]:
        out = []
        for i in range(n):
            name = f"appr-{i}"
            client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
                GROUP, VERSION, self.ns, RR, self._request_body(name, self.propose, f"d{i}", 5)
            )
            _until(lambda name=name: self._phase(name) == "AwaitingApproval")
            started = time.monotonic()
            self._approve(self.approver, name)
            done = _until(lambda name=name: self._phase(name) in ("Succeeded", "Failed"))
            assert self._phase(name) == "Succeeded", self._get(self.admin, name)["status"]
            out.append(done - started)
        return out

    def approval_floor(self, n: int) -> list[float]:
        """The same calls, made directly: approve, read request/session/grant/target, patch the
        target, write the three status updates the operator writes."""
        out = []
        custom = client.CustomObjectsApi(self.admin)
        for i in range(n):
            name = f"floor-appr-{i}"
            custom.create_namespaced_custom_object(
                GROUP, VERSION, self.ns, RR, self._request_body(name, self.propose, f"d{n + i}", 5)
            )
            started = time.monotonic()
            self._approve(self.admin, name)
            self._direct_apply(custom, name, self.propose, f"d{n + i}", 5)
            out.append(time.monotonic() - started)
        return out

    def _direct_apply(
        self, custom: Any, name: str, namespace: str, deployment: str, replicas: int
    ) -> None:
        apps = client.AppsV1Api(self.admin)
        custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, RR, name)
        custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, "incidentsessions", "bench")
        custom.get_cluster_custom_object(GROUP, VERSION, "agentgrants", self.grant)
        apps.read_namespaced_deployment(deployment, namespace)
        for phase in ("Approved", "Applying"):
            custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.ns, RR, name, {"status": {"reason": f"floor-{phase}"}}
            )
        apps.patch_namespaced_deployment(deployment, namespace, {"spec": {"replicas": replicas}})
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.ns, RR, name, {"status": {"reason": "floor-Succeeded"}}
        )

    # -- 2. request -> decision (auto) -----------------------------------------------------------
    def auto_decision(self, n: int, prefix: str = "auto") -> list[float]:
        out = []
        for i in range(n):
            name = f"{prefix}-{i}"
            started = time.monotonic()
            client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
                GROUP, VERSION, self.ns, RR, self._request_body(name, self.auto, f"d{i}", 1)
            )
            done = _until(lambda name=name: self._phase(name) in ("Succeeded", "Failed", "Denied"))
            assert self._phase(name) == "Succeeded", self._get(self.admin, name)["status"]
            out.append(done - started)
        return out

    def auto_floor(self, n: int) -> list[float]:
        """Create the request, then read session/grant/target, dry-run and apply the patch and
        write the status updates: directly, without the operator in between."""
        out = []
        custom = client.CustomObjectsApi(self.admin)
        apps = client.AppsV1Api(self.admin)
        for i in range(n):
            name = f"floor-auto-{i}"
            deployment = f"d{n + i}"
            started = time.monotonic()
            client.CustomObjectsApi(self.session_client).create_namespaced_custom_object(
                GROUP, VERSION, self.ns, RR, self._request_body(name, self.auto, deployment, 5)
            )
            apps.patch_namespaced_deployment(
                deployment, self.auto, {"spec": {"replicas": 5}}, dry_run="All"
            )
            self._direct_apply(custom, name, self.auto, deployment, 6)
            out.append(time.monotonic() - started)
        return out

    def without_operator(self, operator: OperatorProcess) -> None:
        """Stop the operator and remove its webhook configurations: the bare apiserver remains."""
        operator.stop()
        admission = client.AdmissionregistrationV1Api(self.admin)
        for delete in (
            admission.delete_validating_webhook_configuration,
            admission.delete_mutating_webhook_configuration,
        ):
            try:
                delete("agentauthority.io")
            except client.ApiException as e:
                if e.status != 404:
                    raise
        time.sleep(1)  # the apiserver picks webhook configurations up from its informer


def _token_client(local: cluster.LocalCluster, token: str) -> Any:
    configuration = client.Configuration()
    configuration.host = local.url
    configuration.ssl_ca_cert = str(local.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per measurement")
    args = parser.parse_args()
    n = args.requests
    load_before = os.getloadavg()
    audit_port = _port()
    local = cluster.LocalCluster(cluster.Options(audit_url=f"https://127.0.0.1:{audit_port}/audit"))
    local.start()
    operator: OperatorProcess | None = None
    try:
        env = dev.prepare(local, metrics_port=_port(), webhook_port=_port(), audit_port=audit_port)
        log = pathlib.Path(tempfile.mkdtemp(prefix="bench-remediation-")) / "operator.log"
        operator = OperatorProcess(local, env, log)
        operator.start()
        bench = Bench(local, operator)
        bench.setup(deployments=2 * n)
        # A warm-up round, not measured (first requests pay for connection set-up, imports).
        bench.auto_decision(3, prefix="warm")
        measured = {
            "approval_to_applied": _summary(bench.approval_to_applied(n)),
            "auto_request_to_applied": _summary(bench.auto_decision(n)),
        }
        bench.without_operator(operator)
        results: dict[str, Any] = {
            **measured,
            "approval_floor": _summary(bench.approval_floor(n)),
            "auto_floor": _summary(bench.auto_floor(n)),
        }
    finally:
        if operator is not None:
            operator.stop()
        local.stop()
    results["ratios_p99"] = {
        "approval": round(
            results["approval_to_applied"]["p99_ms"] / results["approval_floor"]["p99_ms"], 2
        ),
        "auto": round(
            results["auto_request_to_applied"]["p99_ms"] / results["auto_floor"]["p99_ms"], 2
        ),
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    width = max(len(k) for k in results)
    print(f"{'measurement':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}")
    for key in ("approval_to_applied", "approval_floor", "auto_request_to_applied", "auto_floor"):
        r = results[key]
        print(f"{key:<{width}}  {r['n']:>4}  {r['p50_ms']:>8}  {r['p99_ms']:>8}  {r['max_ms']:>8}")
    print(
        f"p99 ratio operator/floor: approval {results['ratios_p99']['approval']}x, "
        f"auto {results['ratios_p99']['auto']}x"
    )
    out = (
        ROOT
        / "bench"
        / "results"
        / (
            "remediation-"
            + datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
            + ".json"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
