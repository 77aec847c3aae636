"""Incident sessions on the real control plane, with the real operator running.

An agent opens a session, gets a token that reads exactly what its grant allows, and loses that
access at once when the session ends, expires, its parent ends or its grant is deleted.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess

AGENT = "agent-alice"
AGENT_GROUP = "ai-agents"
CREATE_GRANTS = [{"apiGroups": [GROUP], "resources": ["agentgrants"], "verbs": ["create"]}]


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    ns: str  # where sessions live
    shop: str  # readable by the grant
    other: str  # not readable
    grant: str


def _namespace(admin: Any, name: str) -> None:
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": name}})


def grant_spec(shop: str, **session: Any) -> dict[str, Any]:
    return {
        "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency", "crashloop"]},
        "read": [
            {
                "name": "workloads",
                "namespaces": [shop],
                "apiGroups": ["", "apps"],
                "resources": ["pods", "pods/log", "deployments"],
                "verbs": ["get", "list"],
            },
            {"name": "config", "namespaces": [shop], "resources": ["configmaps"]},
        ],
        "session": {"maxTtlSeconds": 900, "maxConcurrentSessions": 50, **session},
    }


@pytest.fixture(scope="module")
def world(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[World]:
    ns, shop, other = agents.unique("agents"), agents.unique("shop"), agents.unique("other")
    for name in (ns, shop, other):
        _namespace(admin, name)
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
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "list", "watch", "patch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
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
    grant = agents.unique("grant")
    agents.create_grant(admin, grant, grant_spec(shop, maxDeniedRequests=1000))
    yield World(
        local_cluster,
        admin,
        agents.as_user(local_cluster, AGENT, [AGENT_GROUP]),
        ns,
        shop,
        other,
        grant,
    )
    client.CustomObjectsApi(admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant
    )


def _active(
    w: World, name: str | None = None, grant: str | None = None, **spec: Any
) -> tuple[dict[str, Any], str]:
    name = name or agents.unique("s")
    body = agents.active_session(
        w.agent, w.admin, w.ns, agents.session_body(name, grant or w.grant, **spec)
    )
    return body, agents.token_of(w.agent, w.ns, body)


def test_session_token_reads_exactly_its_scope(world: World) -> None:
    w = world
    body, token = _active(w)
    assert body["spec"]["requester"]["username"] == AGENT
    ok = {
        "list pods in scope": f"/api/v1/namespaces/{w.shop}/pods",
        "list deployments in scope": f"/apis/apps/v1/namespaces/{w.shop}/deployments",
        "list configmaps (second scope)": f"/api/v1/namespaces/{w.shop}/configmaps",
    }
    for what, path in ok.items():
        assert probe.status(w.local, path, token) == 200, what
    denied = {
        "another namespace": ("GET", f"/api/v1/namespaces/{w.other}/pods"),
        "another resource": ("GET", f"/api/v1/namespaces/{w.shop}/services"),
        "secrets": ("GET", f"/api/v1/namespaces/{w.shop}/secrets"),
        "create (write verb)": ("POST", f"/api/v1/namespaces/{w.shop}/pods"),
        "delete (write verb)": ("DELETE", f"/api/v1/namespaces/{w.shop}/pods/x"),
        "patch (write verb)": ("PATCH", f"/apis/apps/v1/namespaces/{w.shop}/deployments/x"),
        "exec": ("POST", f"/api/v1/namespaces/{w.shop}/pods/x/exec?command=sh"),
        "watch (not opted in)": ("GET", f"/api/v1/namespaces/{w.shop}/pods?watch=true"),
        "cluster-scoped read": ("GET", "/api/v1/nodes"),
        "its own secret": (
            "GET",
            f"/api/v1/namespaces/{w.ns}/secrets/{body['status']['secretName']}",
        ),
    }
    for what, (method, path) in denied.items():
        assert probe.status(w.local, path, token, method=method) == 403, what


def test_ending_a_session_revokes_at_once(world: World) -> None:
    w = world
    body, token = _active(w)
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, pods, token) == 200
    started = time.monotonic()
    agents.end_session(w.agent, w.ns, body["metadata"]["name"])
    forbidden = probe.wait_for_status(w.local, pods, token, 403, timeout=5)
    assert forbidden is not None
    dead = probe.wait_for_status(w.local, pods, token, 401, timeout=20)
    assert dead is not None
    ended = agents.wait_phase(w.admin, w.ns, body["metadata"]["name"], {"Ended"})
    assert ended["status"]["revocation"]["reason"] == "Ended"
    # Its access ended now, so kubectl's EXPIRES column does not show a time still to come.
    assert _parse(ended["status"]["expiresAt"]) <= _parse(ended["status"]["revocation"]["time"])
    assert _parse(ended["status"]["expiresAt"]) < _parse(body["status"]["expiresAt"])
    print(
        f"\n[sessions] end -> 403 after {forbidden * 1000:.0f} ms, -> 401 after "
        f"{time.monotonic() - started:.1f} s"
    )
    assert forbidden < 1.0
    assert dead < 15.0
    # Nothing of the session is left: ServiceAccount, Secret, RoleBindings.
    core = client.CoreV1Api(w.admin)
    sa = body["status"]["serviceAccountName"]
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_service_account(sa, w.ns)
    assert gone.value.status == 404
    bindings = client.RbacAuthorizationV1Api(w.admin).list_role_binding_for_all_namespaces(
        label_selector=f"agentauthority.io/session-uid={body['metadata']['uid']}"
    )
    assert bindings.items == []


def test_ttl_expiry_revokes(world: World) -> None:
    w = world
    body, token = _active(w, ttlSeconds=10)
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, pods, token) == 200
    expires = body["status"]["expiresAt"]
    forbidden = probe.wait_for_status(w.local, pods, token, 403, timeout=20)
    assert forbidden is not None
    expired = agents.wait_phase(w.admin, w.ns, body["metadata"]["name"], {"Expired"})
    late = (_parse(expired["status"]["revocation"]["time"]) - _parse(expires)).total_seconds()
    print(f"\n[sessions] TTL expiry revoked {late * 1000:.0f} ms after expiresAt")
    assert late < 1.0
    assert probe.wait_for_status(w.local, pods, token, 401, timeout=20) is not None
    dead_after = (datetime.datetime.now(datetime.UTC) - _parse(expires)).total_seconds()
    print(f"[sessions] TTL expiry -> 401 after {dead_after:.1f} s")
    assert dead_after < 15.0


def test_kopf_writes_nothing_to_an_activated_session_and_its_end_is_still_seen(
    world: World,
) -> None:
    """No diff-base annotation after the create handler (the session's status says it was
    handled: controllers/persistence.py), and ``spec.ended`` still ends it."""
    w = world
    body, _ = _active(w)
    name = body["metadata"]["name"]
    time.sleep(2)  # kopf's diff-base patch used to land right after the create handler
    custom = client.CustomObjectsApi(w.admin)
    now = custom.get_namespaced_custom_object(GROUP, VERSION, w.ns, "incidentsessions", name)
    annotations = now["metadata"].get("annotations") or {}
    assert [k for k in annotations if k.startswith("agentauthority.io/")] == [], annotations
    agents.end_session(w.agent, w.ns, name)
    ended = agents.wait_phase(w.admin, w.ns, name, {"Ended"})
    assert ended["status"]["revocation"]["reason"] == "Ended"


def _parse(value: str) -> Any:
    import datetime

    return datetime.datetime.fromisoformat(value)


def test_ending_the_parent_ends_the_sub_agent(world: World) -> None:
    w = world
    parent, _ = _active(w)
    child, child_token = _active(
        w, parentSession=parent["metadata"]["name"], scopes=[{"name": "workloads"}]
    )
    assert child["status"]["depth"] == 1
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, pods, child_token) == 200
    agents.end_session(w.agent, w.ns, parent["metadata"]["name"])
    started = time.monotonic()
    forbidden = probe.wait_for_status(w.local, pods, child_token, 403, timeout=5)
    assert forbidden is not None
    assert forbidden < 1.0
    revoked = agents.wait_phase(w.admin, w.ns, child["metadata"]["name"], {"Revoked"})
    assert revoked["status"]["revocation"]["reason"] == "ParentEnded"
    assert probe.wait_for_status(w.local, pods, child_token, 401, timeout=20) is not None
    assert time.monotonic() - started < 15.0


def test_deleting_the_grant_revokes_its_sessions(world: World) -> None:
    w = world
    grant = agents.unique("doomed")
    agents.create_grant(w.admin, grant, grant_spec(w.shop, maxDeniedRequests=1000))
    body, token = _active(w, grant=grant)
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, pods, token) == 200
    client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant
    )
    started = time.monotonic()
    forbidden = probe.wait_for_status(w.local, pods, token, 403, timeout=5)
    assert forbidden is not None
    assert forbidden < 1.0
    revoked = agents.wait_phase(w.admin, w.ns, body["metadata"]["name"], {"Revoked"})
    assert revoked["status"]["revocation"]["reason"] == "GrantDeleted"
    assert probe.wait_for_status(w.local, pods, token, 401, timeout=20) is not None
    assert time.monotonic() - started < 15.0


def test_narrowing_the_grant_narrows_the_session(world: World) -> None:
    w = world
    grant = agents.unique("narrow")
    agents.create_grant(w.admin, grant, grant_spec(w.shop, maxDeniedRequests=1000))
    body, token = _active(w, grant=grant)
    configmaps = f"/api/v1/namespaces/{w.shop}/configmaps"
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, configmaps, token) == 200
    narrowed = grant_spec(w.shop, maxDeniedRequests=1000)
    narrowed["read"] = narrowed["read"][:1]  # drop the configmaps scope
    client.CustomObjectsApi(w.admin).patch_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant, {"spec": {"read": narrowed["read"]}}
    )
    assert probe.wait_for_status(w.local, configmaps, token, 403, timeout=5) is not None
    assert probe.status(w.local, pods, token) == 200
    still = agents.get_session(w.admin, w.ns, body["metadata"]["name"])
    assert still["status"]["phase"] == "Active"
    client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant
    )


REFUSED = [
    pytest.param(
        {"incident": {"id": "I", "severity": "SEV4", "class": "latency"}},
        "SeverityNotAllowed",
        id="severity-not-in-grant",
    ),
    pytest.param(
        {"incident": {"id": "I", "severity": "SEV1", "class": "capacity"}},
        "ClassNotAllowed",
        id="class-not-in-grant",
    ),
    pytest.param({"scopes": [{"name": "everything"}]}, "UnknownScope", id="scope-not-in-grant"),
    pytest.param(
        {"scopes": [{"name": "workloads", "namespaces": ["kube-system"]}]},
        "ScopeWiderThanGrant",
        id="namespace-wider-than-grant",
    ),
    pytest.param({"ttlSeconds": 3600}, "TTLTooLong", id="ttl-above-grant-max"),
]


@pytest.mark.parametrize(("spec", "reason"), REFUSED)
def test_admission_refuses_what_the_grant_does_not_allow(
    world: World, spec: dict[str, Any], reason: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        agents.open_session(
            world.agent, world.ns, agents.session_body(agents.unique("bad"), world.grant, **spec)
        )
    assert refused.value.status == 403
    assert reason in agents.refusal(refused.value)


def test_a_non_subject_cannot_open_a_session(world: World) -> None:
    outsider = agents.as_user(world.local, "mallory", ["ai-agents-but-not-really"])
    rbac = client.RbacAuthorizationV1Api(world.admin)
    rbac.create_namespaced_role_binding(
        world.ns,
        {
            "metadata": {"name": "mallory-open-sessions"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "open-sessions",
            },
            "subjects": [
                {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    with pytest.raises(client.ApiException) as refused:
        agents.open_session(outsider, world.ns, agents.session_body("mallory", world.grant))
    assert refused.value.status == 403
    assert "NotASubject" in agents.refusal(refused.value)


def test_a_spoofed_requester_is_overwritten(world: World) -> None:
    body = agents.session_body(
        agents.unique("spoof"),
        world.grant,
        requester={"username": "admin", "groups": ["system:masters"]},
    )
    created = agents.open_session(world.agent, world.ns, body)
    assert created["spec"]["requester"]["username"] == AGENT
    assert "system:masters" not in created["spec"]["requester"]["groups"]


def test_a_sub_agent_cannot_widen_its_parent(world: World) -> None:
    parent, _ = _active(world, scopes=[{"name": "workloads"}])
    with pytest.raises(client.ApiException) as refused:
        agents.open_session(
            world.agent,
            world.ns,
            agents.session_body(
                agents.unique("wide"),
                world.grant,
                parentSession=parent["metadata"]["name"],
                scopes=[{"name": "workloads"}, {"name": "config"}],
            ),
        )
    assert "ScopeWiderThanParent" in agents.refusal(refused.value)


def test_grant_author_must_hold_what_the_grant_hands_out(world: World) -> None:
    w = world
    agents.cluster_role(w.admin, "grant-writer-" + w.shop, CREATE_GRANTS, ["platform-dev"])
    author = agents.as_user(w.local, "platform-dev")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentGrant",
        "metadata": {"name": agents.unique("escalate")},
        "spec": grant_spec(w.shop),
    }
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(author).create_cluster_custom_object(
            GROUP, VERSION, "agentgrants", body
        )
    message = agents.refusal(refused.value)
    assert refused.value.status == 403
    assert "escalation refused" in message
    assert f"get pods in namespace {w.shop}" in message
    # A cluster admin holds everything, so the same grant is accepted from them.
    client.CustomObjectsApi(w.admin).create_cluster_custom_object(
        GROUP, VERSION, "agentgrants", body
    )
    client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", body["metadata"]["name"]
    )


def _cli(kubeconfig: Any, *args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_cli_opens_a_session_writes_its_kubeconfig_and_ends_it(world: World, tmp_path: Any) -> None:
    w = world
    mine = w.local.user_kubeconfig(AGENT, [AGENT_GROUP])
    out = tmp_path / "session.kubeconfig"
    opened = _cli(
        mine,
        "session",
        "open",
        "--grant",
        w.grant,
        "--incident-id",
        "INC-77",
        "--severity",
        "SEV1",
        "--class",
        "crashloop",
        "--scope",
        f"workloads:{w.shop}",
        "-n",
        w.ns,
        "--write-kubeconfig",
        str(out),
    )
    assert opened.returncode == 0, opened.stderr
    assert "is Active until" in opened.stderr
    from kubernetes import config as kubeconfig

    as_session = kubeconfig.new_client_from_config(config_file=str(out))
    assert client.CoreV1Api(as_session).list_namespaced_pod(w.shop).items is not None
    with pytest.raises(client.ApiException) as other:
        client.CoreV1Api(as_session).list_namespaced_pod(w.other)
    assert other.value.status == 403
    listed = _cli(mine, "session", "list", "-n", w.ns)
    assert listed.returncode == 0, listed.stderr
    name = next(line.split()[1] for line in listed.stdout.splitlines() if "INC-77" in line)
    ended = _cli(mine, "session", "end", name, "-n", w.ns)
    assert ended.returncode == 0, ended.stderr
    assert "is Ended" in ended.stdout
    with pytest.raises(client.ApiException) as revoked:
        client.CoreV1Api(as_session).list_namespaced_pod(w.shop)
    assert revoked.value.status in (401, 403)


def test_cli_prints_the_refusal(world: World) -> None:
    mine = world.local.user_kubeconfig(AGENT, [AGENT_GROUP])
    refused = _cli(
        mine,
        "session",
        "open",
        "--grant",
        world.grant,
        "--incident-id",
        "INC-78",
        "--severity",
        "SEV4",
        "--class",
        "latency",
        "-n",
        world.ns,
    )
    assert refused.returncode == 1
    assert "SeverityNotAllowed" in refused.stderr
    assert "SEV4" in refused.stderr


def test_grant_author_must_hold_what_the_remediations_delegate(world: World) -> None:
    """Reads are not enough: a grant letting an agent ask for scaling delegates patching."""
    w = world
    rbac = client.RbacAuthorizationV1Api(w.admin)
    agents.cluster_role(w.admin, "grant-writer-2-" + w.shop, CREATE_GRANTS, ["reader-dev"])
    rbac.create_namespaced_role(
        w.shop,
        {
            "metadata": {"name": "reader-dev"},
            "rules": [
                {
                    "apiGroups": ["", "apps"],
                    "resources": ["pods", "pods/log", "deployments", "configmaps"],
                    "verbs": ["get", "list"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        w.shop,
        {
            "metadata": {"name": "reader-dev"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "reader-dev",
            },
            "subjects": [
                {"kind": "User", "name": "reader-dev", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    author = client.CustomObjectsApi(agents.as_user(w.local, "reader-dev"))
    reads_only = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentGrant",
        "metadata": {"name": agents.unique("reads")},
        "spec": grant_spec(w.shop),
    }
    author.create_cluster_custom_object(GROUP, VERSION, "agentgrants", reads_only)
    delegating = {**reads_only, "metadata": {"name": agents.unique("delegates")}}
    delegating["spec"] = {
        **grant_spec(w.shop),
        "remediations": [
            {
                "action": "scale-workload",
                "namespaces": [w.shop],
                "autonomy": "auto",
                "limits": {"maxReplicasDelta": 1},
            }
        ],
    }
    with pytest.raises(client.ApiException) as refused:
        author.create_cluster_custom_object(GROUP, VERSION, "agentgrants", delegating)
    message = agents.refusal(refused.value)
    assert refused.value.status == 403
    assert f"patch deployments.apps in namespace {w.shop}" in message
    for body in (reads_only,):
        client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
            GROUP, VERSION, "agentgrants", body["metadata"]["name"]
        )


def test_the_grant_counts_its_active_sessions(world: World) -> None:
    # status.activeSessions is kept current by the grant's 15 s timer, counted from the
    # operator's index of Active sessions (no read of every session each time).
    w = world
    grant = agents.unique("grant")
    agents.create_grant(w.admin, grant, grant_spec(w.shop))
    custom = client.CustomObjectsApi(w.admin)

    def counts(n: int) -> bool | None:
        found = custom.get_cluster_custom_object(GROUP, VERSION, "agentgrants", grant)
        return True if (found.get("status") or {}).get("activeSessions") == n else None

    try:
        first, _ = _active(w, grant=grant)
        _active(w, grant=grant)
        agents.wait_for(lambda: counts(2), 90, "the grant to count its 2 Active sessions")
        agents.end_session(w.agent, w.ns, first["metadata"]["name"])
        agents.wait_for(lambda: counts(1), 90, "the grant to count 1 after one ended")
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", grant)


def test_a_grant_widened_just_before_a_create_is_never_refused_on_its_old_copy(
    world: World,
) -> None:
    """The session webhooks read the grant from the operator's watched copy (no GET per create);
    the copy can lag a change by a watch round trip, so a refusal is only ever given on a fresh
    read. Each round widens the grant and creates, at once, a session only the wider grant
    allows: none is refused, and each becomes Active (the controller decides on fresh reads)."""
    grant = agents.unique("widened")
    spec = grant_spec(world.shop)
    spec["incidents"]["severities"] = ["SEV1"]
    agents.create_grant(world.admin, grant, spec)
    custom = client.CustomObjectsApi(world.admin)
    allowed = ["SEV1"]
    try:
        for severity in ("SEV2", "SEV3", "SEV4"):
            allowed.append(severity)
            custom.patch_cluster_custom_object(
                GROUP,
                VERSION,
                "agentgrants",
                grant,
                {"spec": {"incidents": {"severities": allowed}}},
            )
            name = agents.unique(f"wide-{severity.lower()}")
            incident = {"id": f"INC-{severity}", "severity": severity, "class": "latency"}
            agents.open_session(
                world.agent, world.ns, agents.session_body(name, grant, incident=incident)
            )
            body = agents.wait_phase(world.admin, world.ns, name, {"Active", "Denied"})
            assert body["status"]["phase"] == "Active", body["status"]
            agents.end_session(world.agent, world.ns, name)
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", grant)


def test_a_grant_narrowed_while_a_session_is_activated_narrows_it_once_active(
    world: World, operator: OperatorProcess
) -> None:
    """Attack on the activation window: the admin narrows the grant after the operator read it
    for a new session but before the session is Active. The grant's own handler skips sessions
    that are not Active yet, so the operator must compare, once Active, the grant it admitted
    the session under with the grant as it is now, and narrow the session (before: only a
    deleted grant was noticed, and the session kept the dropped scope until a restart)."""
    w = world
    grant = agents.unique("narrowing")
    agents.create_grant(w.admin, grant, grant_spec(w.shop, maxDeniedRequests=1000))
    custom = client.CustomObjectsApi(w.admin)
    operator.stop()
    operator.start(failpoints="pause-before-status:SessionOpened=10")  # before Active is written
    try:
        name = agents.unique("narrowing")
        created = agents.open_session(w.agent, w.ns, agents.session_body(name, grant))
        agents.wait_service_account(
            w.admin,
            w.ns,
            name,
            created["metadata"]["uid"],
            "the operator to be creating the session's credentials",
        )
        narrowed = grant_spec(w.shop, maxDeniedRequests=1000)
        narrowed["read"] = narrowed["read"][:1]  # drop the configmaps scope
        generation = custom.patch_cluster_custom_object(
            GROUP, VERSION, "agentgrants", grant, {"spec": {"read": narrowed["read"]}}
        )["metadata"]["generation"]
        agents.wait_for(
            lambda: (
                custom.get_cluster_custom_object(GROUP, VERSION, "agentgrants", grant)
                .get("status", {})
                .get("observedGeneration")
                == generation
                or None
            ),
            15,
            "the grant's handler to have handled the narrowing",
        )
        pending = agents.get_session(w.admin, w.ns, name).get("status") or {}
        assert pending.get("phase") != "Active", "the session was Active before the narrowing"
        body = agents.wait_phase(w.admin, w.ns, name, {"Active", "Denied"}, timeout=30)
        assert body["status"]["phase"] == "Active", body["status"]
        token = agents.token_of(w.agent, w.ns, body)
        configmaps = f"/api/v1/namespaces/{w.shop}/configmaps"
        assert probe.wait_for_status(w.local, configmaps, token, 403, timeout=10) is not None, (
            "the session kept the scope its grant dropped while it was being activated"
        )
        assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) == 200

        def narrowed_status() -> bool | None:  # written after the Roles are replaced
            rules = agents.get_session(w.admin, w.ns, name)["status"]["effectiveRules"]
            return not any("configmaps" in r["resources"] for r in rules) or None

        agents.wait_for(narrowed_status, 10, "status.effectiveRules without the dropped scope")
    finally:
        operator.stop()
        operator.start()
        custom.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", grant)
