"""Active means usable: the instant a watch shows a session ``Active``, its token reads what its
grant allows and the requester can read the token Secret. No 403, not even once.

Many sessions are opened at once so that the apiserver's RBAC informer lags behind the writes
(as it does under load), which is when an ``Active`` written straight after the RoleBindings
showed up before the authorizer served them.
"""

from __future__ import annotations

import base64
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch

from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess

AGENT = "agent-usable"
AGENT_GROUP = "ai-agents-usable"
CONCURRENT = 20
PLURAL = "incidentsessions"


def _grant_spec(shop: str) -> dict[str, Any]:
    return {
        "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency"]},
        "read": [
            {
                "name": "workloads",
                "namespaces": [shop],
                "apiGroups": ["", "apps"],
                "resources": ["pods", "deployments"],
                "verbs": ["get", "list"],
            },
            {"name": "config", "namespaces": [shop], "resources": ["configmaps"]},
        ],
        "session": {"maxTtlSeconds": 900, "maxConcurrentSessions": 100},
    }


@pytest.fixture(scope="module")
def setup(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[tuple[str, str, str]]:
    ns, shop = agents.unique("usable"), agents.unique("usable-shop")
    core = client.CoreV1Api(admin)
    for name in (ns, shop):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.allow_scopes_in(local_cluster, shop)  # the scopes read there
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "open-sessions"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": [PLURAL],
                    "verbs": ["create", "get", "list", "watch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "open-sessions"},
            "roleRef": {"apiGroup": agents.RBAC, "kind": "Role", "name": "open-sessions"},
            "subjects": [{"kind": "Group", "name": AGENT_GROUP, "apiGroup": agents.RBAC}],
        },
    )
    grant = agents.unique("usable-grant")
    agents.create_grant(admin, grant, _grant_spec(shop))
    yield ns, shop, grant
    client.CustomObjectsApi(admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant
    )
    for name in (ns, shop):
        core.delete_namespace(name)


def test_concurrent_sessions_are_usable_the_instant_they_are_active(
    local_cluster: cluster.LocalCluster, setup: tuple[str, str, str]
) -> None:
    ns, shop, grant = setup
    agent = agents.as_user(local_cluster, AGENT, [AGENT_GROUP])
    agent.configuration.connection_pool_maxsize = CONCURRENT
    custom, core = client.CustomObjectsApi(agent), client.CoreV1Api(agent)
    names = [agents.unique(f"u{i:02d}") for i in range(CONCURRENT)]
    results: dict[str, list[str]] = {}  # name -> problems seen at the instant it was Active
    lock = threading.Lock()
    all_seen = threading.Event()

    def use(body: dict[str, Any]) -> None:
        """What the agent does the moment it sees Active: read the Secret, then read with it."""
        problems = []
        try:
            secret = core.read_namespaced_secret(body["status"]["secretName"], ns)
            token = base64.b64decode(secret.data["token"]).decode()
        except client.ApiException as e:
            problems.append(f"requester reading the token Secret: {e.status}")
        else:
            for path in (
                f"/api/v1/namespaces/{shop}/pods",
                f"/api/v1/namespaces/{shop}/configmaps",
            ):
                code = probe.status(local_cluster, path, token)
                if code != 200:
                    problems.append(f"token GET {path}: {code}")
        with lock:
            results[body["metadata"]["name"]] = problems
            if len(results) == CONCURRENT:
                all_seen.set()

    listing = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
    version = listing["metadata"]["resourceVersion"]
    seen: set[str] = set()
    stop = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(CONCURRENT)

    def watching() -> None:
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            _watch(stream)
        except urllib3.exceptions.ProtocolError:
            if not stop.is_set():  # the stream may only end early once the test is done with it
                raise

    def _watch(stream: Any) -> None:
        for event in stream.stream(  # type: ignore[no-untyped-call]
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            resource_version=version,
            timeout_seconds=90,
        ):
            obj = event["object"]
            name = obj["metadata"]["name"]
            phase = (obj.get("status") or {}).get("phase")
            if name in names and name not in seen and phase in {"Active", "Denied"}:
                seen.add(name)
                if phase == "Active":
                    pool.submit(use, obj)
                else:
                    with lock:
                        results[name] = [f"Denied: {obj['status']}"]
                        if len(results) == CONCURRENT:
                            all_seen.set()
            if stop.is_set():
                stream.stop()  # type: ignore[no-untyped-call]

    watcher = threading.Thread(target=watching, daemon=True)
    watcher.start()
    start = threading.Barrier(CONCURRENT)

    def create(name: str) -> None:
        start.wait()
        agents.open_session(agent, ns, agents.session_body(name, grant, ttlSeconds=600))

    with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as creators:
        list(creators.map(create, names))
    finished = all_seen.wait(90)
    stop.set()
    pool.shutdown(wait=True)
    assert finished, f"only {len(results)}/{CONCURRENT} sessions seen Active within 90 s"
    failed = {name: problems for name, problems in results.items() if problems}
    print(
        f"\n[usable] {CONCURRENT} sessions read at the instant they were Active: {failed or 'ok'}"
    )
    assert not failed, f"sessions not usable when Active: {failed}"
