"""Remediation requests on the real control plane with the real operator: policy, approvals,
dry-run diff, apply exactly once, rollback — and the attacks on each of them."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from agent_authority.localcluster import cluster
from agent_authority.models import FINALIZER, GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess

AGENT, AGENT_GROUP = "agent-rita", "remediation-agents"
APPROVERS = ("oncall-1", "oncall-2")
LEAD = "oncall-lead"  # starts rollbacks (so the approvers are not the rollback's requester)


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    ns: str
    shop: str
    other: str
    grant: str
    node: str


def _grant_spec(shop: str) -> dict[str, Any]:
    return agents.remediation_grant_spec(
        [{"kind": "Group", "name": AGENT_GROUP}],
        shop,
        [
            {
                "action": "scale-workload",
                "namespaces": [shop],
                "autonomy": "auto",
                "limits": {"maxReplicasDelta": 2},
            },
            {"action": "restart-workload", "namespaces": [shop], "autonomy": "propose"},
            {"action": "rollback-deployment", "namespaces": [shop], "autonomy": "propose"},
            {"action": "delete-pod", "namespaces": [shop], "autonomy": "propose"},
            {"action": "cordon-node", "autonomy": "propose"},
            {"action": "uncordon-node", "autonomy": "propose"},
            {"action": "suspend-cronjob", "namespaces": [shop], "autonomy": "propose"},
        ],
        approval_timeout=60,
        max_ttl=900,
    )


@pytest.fixture(scope="module")
def world(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[World]:
    core, apps, batch = client.CoreV1Api(admin), client.AppsV1Api(admin), client.BatchV1Api(admin)
    ns, shop, other = agents.unique("agents"), agents.unique("shop"), agents.unique("other")
    for name in (ns, shop, other):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.allow_scopes_in(local_cluster, shop)  # the scopes read there
    grant = agents.unique("fixer")
    agents.cluster_role(admin, f"open-{grant}", agents.open_sessions_rules(), [AGENT])
    agents.cluster_role(
        admin,
        f"approve-{grant}",
        [*agents.request_status_rules(), agents.approve_rule(grant)],
        list(APPROVERS),
    )
    agents.cluster_role(admin, f"status-only-{grant}", agents.request_status_rules(), ["bystander"])
    agents.cluster_role(
        admin,
        f"rollback-{grant}",
        [
            *agents.request_status_rules(),
            {"apiGroups": [GROUP], "resources": ["remediationrequests"], "verbs": ["create"]},
        ],
        [LEAD],
    )
    agents.create_grant(admin, grant, _grant_spec(shop))
    node = agents.unique("node")
    core.create_node({"metadata": {"name": node}})
    for namespace in (shop, other):
        apps.create_namespaced_deployment(namespace, agents.deployment("web", 3))
    batch.create_namespaced_cron_job(
        shop,
        {
            "metadata": {"name": "report"},
            "spec": {
                "schedule": "0 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "r", "image": "x"}],
                            }
                        }
                    }
                },
            },
        },
    )
    agents.wait_for(lambda: _pods(admin, shop, "app=web") == 3, 30, "3 web pods")
    yield World(
        local_cluster,
        admin,
        agents.as_user(local_cluster, AGENT, [AGENT_GROUP]),
        ns,
        shop,
        other,
        grant,
        node,
    )
    core.delete_node(node)


def _pods(admin: Any, namespace: str, selector: str) -> int:
    return len(
        client.CoreV1Api(admin).list_namespaced_pod(namespace, label_selector=selector).items
    )


@dataclasses.dataclass
class Session:
    name: str
    token: str
    api: Any  # the session token's client
    account: str


def _session(
    w: World, grant: str | None = None, opener: Any = None, name: str | None = None, **spec: Any
) -> Session:
    """An Active session under ``grant`` (the world's unless given), opened by ``opener`` (the
    world's agent unless given), which also reads its token."""
    opener = opener or w.agent
    name = name or agents.unique("s")
    body = agents.active_session(
        opener, w.admin, w.ns, agents.session_body(name, grant or w.grant, **spec)
    )
    token = agents.token_of(opener, w.ns, body)
    return Session(
        name,
        token,
        agents.token_client(w.local, token),
        f"system:serviceaccount:{w.ns}:{body['status']['serviceAccountName']}",
    )


def _create(
    w: World, s: Session, action: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """Create a request with the session's own token; the object as the apiserver returned it."""
    return agents.create_request(
        s.api,
        w.ns,
        name or agents.unique("rr"),
        agents.request_spec(s.name, action, "it will help"),
    )


def _ask(w: World, s: Session, action: dict[str, Any], name: str | None = None) -> str:
    return str(_create(w, s, action, name)["metadata"]["name"])


def _request(w: World, name: str) -> dict[str, Any]:
    return agents.get_request(w.admin, w.ns, name)


def _phase(w: World, name: str, phases: set[str], timeout: float = 20) -> dict[str, Any]:
    return agents.wait_request_phase(w.admin, w.ns, name, phases, timeout)


def _cli(w: World, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = w.local.user_kubeconfig(user)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            *args,
            "-n",
            w.ns,
            "--kubeconfig",
            str(kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _approve(
    w: World, user: str, name: str, decision: str = "approve"
) -> subprocess.CompletedProcess[str]:
    return _cli(w, user, decision, name, "--reason", f"{user} reviewed the diff")


def _scale(shop: str, replicas: int, name: str = "web") -> dict[str, Any]:
    return {
        "type": "scale-workload",
        "target": {"kind": "Deployment", "namespace": shop, "name": name},
        "params": {"replicas": replicas},
    }


def _replicas(w: World, namespace: str, name: str = "web") -> int:
    return int(client.AppsV1Api(w.admin).read_namespaced_deployment(name, namespace).spec.replicas)


def _append_approval(api: Any, w: World, name: str) -> client.ApiException:
    """Try to append an approval as ``api``; returns the refusal."""
    current = _request(w, name)
    approvals = [
        *(current.get("status") or {}).get("approvals", []),
        {"decision": "approve", "reason": "looks fine to me"},
    ]
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            GROUP, VERSION, w.ns, "remediationrequests", name, {"status": {"approvals": approvals}}
        )
    return refused.value


# -- autonomy and limits -------------------------------------------------------------------------


def test_auto_within_limits_applies_without_a_human(world: World) -> None:
    w = world
    s = _session(w)
    deployment = agents.unique("auto")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    started = time.monotonic()
    name = _ask(w, s, _scale(w.shop, 4, deployment))
    done = _phase(w, name, {"Succeeded", "Failed", "Denied", "AwaitingApproval"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    print(f"\n[remediation] auto request -> Succeeded in {time.monotonic() - started:.2f} s")
    assert _replicas(w, w.shop, deployment) == 4
    assert done["status"]["diff"] == [{"path": "spec.replicas", "before": "3", "after": "4"}]
    assert done["status"]["inverse"]["action"]["params"] == {"replicas": 3}
    assert done["status"].get("approvals", []) == []
    conditions = {c["type"]: c for c in done["status"]["conditions"]}
    assert conditions["Approved"]["reason"] == "AutoApproved"


def test_beyond_the_auto_limit_it_waits_and_only_an_approver_can_approve(world: World) -> None:
    w = world
    s = _session(w)
    deployment = agents.unique("big")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = _ask(w, s, _scale(w.shop, 6, deployment))
    waiting = _phase(w, name, {"AwaitingApproval", "Succeeded", "Denied"})
    assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]
    assert waiting["status"]["requiredApprovals"] == 1
    assert waiting["status"]["diff"] == [{"path": "spec.replicas", "before": "3", "after": "6"}]
    assert _replicas(w, w.shop, deployment) == 3
    shown = _cli(w, APPROVERS[0], "show", name)
    assert "spec.replicas: 3 -> 6" in shown.stdout, shown.stdout + shown.stderr
    listed = _cli(w, APPROVERS[0], "requests")
    assert name in listed.stdout
    # Someone who may write status but lacks the approve verb on this grant is refused.
    refused = _approve(w, "bystander", name)
    assert refused.returncode == 1
    assert "RBAC verb 'approve'" in refused.stderr
    approved = _approve(w, APPROVERS[0], name)
    assert approved.returncode == 0, approved.stderr
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _replicas(w, w.shop, deployment) == 6
    assert done["status"]["approvals"][0]["approver"]["username"] == APPROVERS[0]


def test_a_request_carries_the_finalizer_from_creation_until_it_is_applied(world: World) -> None:
    """Stamped at admission (kopf keeps it while the request is undecided or applying), so kopf
    writes nothing to the request when it starts waiting; removed once it is applied."""
    w = world
    s = _session(w)
    deployment = agents.unique("fin")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    created = _create(w, s, _scale(w.shop, 6, deployment))
    name = created["metadata"]["name"]
    assert FINALIZER in created["metadata"].get("finalizers", []), created["metadata"]
    waiting = _phase(w, name, {"AwaitingApproval", "Succeeded", "Denied"})
    assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]
    assert FINALIZER in waiting["metadata"].get("finalizers", [])
    approved = _approve(w, APPROVERS[0], name)
    assert approved.returncode == 0, approved.stderr
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    agents.wait_for(
        lambda: FINALIZER not in (_request(w, name)["metadata"].get("finalizers") or []),
        30,
        "the finalizer to be removed once the request was applied",
    )


def test_kopf_writes_nothing_to_a_waiting_request_and_its_approval_still_applies(
    world: World,
) -> None:
    """No diff-base annotation after the create handler (the request's status says it was
    handled: controllers/persistence.py), so nothing lands while the approver's patch is in
    admission; the approval event still drives the apply."""
    w = world
    s = _session(w)
    deployment = agents.unique("nodiff")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = _ask(w, s, _scale(w.shop, 6, deployment))
    waiting = _phase(w, name, {"AwaitingApproval", "Succeeded", "Denied"})
    assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]
    time.sleep(2)  # kopf's diff-base patch used to land right after the create handler
    now = _request(w, name)
    annotations = now["metadata"].get("annotations") or {}
    assert [k for k in annotations if k.startswith("agentauthority.io/")] == [], annotations
    assert now["metadata"]["resourceVersion"] == waiting["metadata"]["resourceVersion"]
    approved = _approve(w, APPROVERS[0], name)
    assert approved.returncode == 0, approved.stderr
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _replicas(w, w.shop, deployment) == 6


def test_requests_made_at_once_are_each_readable_by_their_session(world: World) -> None:
    """The session's own-reads Role lists every one of its requests, also when many arrive at
    once and their events race for the session (none is dropped by an older write)."""
    w = world
    s = _session(w)
    deployment = agents.unique("many")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 1))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: _ask(w, s, _scale(w.shop, 9, deployment)), range(8)))
    for name in names:
        waiting = _phase(w, name, {"AwaitingApproval", "Succeeded", "Denied"}, timeout=60)
        assert waiting["status"]["phase"] == "AwaitingApproval", waiting["status"]
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/remediationrequests"

    def readable() -> list[str]:
        return [n for n in names if probe.status(w.local, f"{base}/{n}", s.token) != 200]

    agents.wait_for(lambda: not readable(), 30, "the session to read each of its requests")
    time.sleep(2)  # later events of the same requests never take a name away again
    assert readable() == [], "requests the session can no longer read"
    assert _replicas(w, w.shop, deployment) == 1


# -- self-approval attacks -----------------------------------------------------------------------


def test_the_session_token_cannot_write_request_status(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 9))
    _phase(w, name, {"AwaitingApproval"})
    refused = _append_approval(s.api, w, name)
    assert refused.status == 403
    assert "remediationrequests/status" in agents.refusal(refused)  # RBAC, not the webhook


def test_no_self_approval_even_when_rbac_would_allow_it(world: World) -> None:
    """A human grants the agent's identities approve rights: the webhook still refuses."""
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 8))
    _phase(w, name, {"AwaitingApproval"})
    account = s.account.rsplit(":", 1)[1]
    rbac = client.RbacAuthorizationV1Api(w.admin)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": f"oops-{account}"},
            "roleRef": {
                "apiGroup": agents.RBAC,
                "kind": "ClusterRole",
                "name": f"approve-{w.grant}",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": w.ns},
                {"kind": "User", "name": AGENT, "apiGroup": agents.RBAC},
            ],
        }
    )
    time.sleep(0.5)
    by_session = _append_approval(s.api, w, name)
    assert by_session.status == 403
    assert "SessionIdentity" in agents.refusal(by_session) or "SelfApproval" in agents.refusal(
        by_session
    )
    by_agent = _append_approval(w.agent, w, name)
    assert by_agent.status == 403
    assert "SessionIdentity" in agents.refusal(by_agent)
    assert _request(w, name)["status"]["phase"] == "AwaitingApproval"
    rbac.delete_cluster_role_binding(f"oops-{account}")


def test_a_request_cannot_name_someone_elses_session(world: World) -> None:
    w = world
    mine, theirs = _session(w), _session(w)
    with pytest.raises(client.ApiException) as refused:
        agents.create_request(
            mine.api,
            w.ns,
            agents.unique("hijack"),
            agents.request_spec(theirs.name, _scale(w.shop, 4), "h"),
        )
    assert refused.value.status == 403
    assert "not the caller's own active session" in agents.refusal(refused.value)


def test_spec_cannot_change_after_creation(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 7))
    _phase(w, name, {"AwaitingApproval"})
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(w.admin).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            w.ns,
            "remediationrequests",
            name,
            {"spec": {"action": {"params": {"replicas": 70}}}},
        )
    assert refused.value.status == 422
    assert "spec is immutable" in agents.refusal(refused.value)


# -- two-person rule, denial, timeout -------------------------------------------------------------


def test_irreversible_actions_need_two_distinct_approvers(world: World) -> None:
    w = world
    s = _session(w)
    pod = client.CoreV1Api(w.admin).list_namespaced_pod(w.shop, label_selector="app=web").items[0]
    name = _ask(
        w,
        s,
        {
            "type": "delete-pod",
            "target": {"kind": "Pod", "namespace": w.shop, "name": pod.metadata.name},
        },
    )
    waiting = _phase(w, name, {"AwaitingApproval"})
    assert waiting["status"]["requiredApprovals"] == 2
    assert _approve(w, APPROVERS[0], name).returncode == 0
    time.sleep(1)
    assert _request(w, name)["status"]["phase"] == "AwaitingApproval"
    twice = _approve(w, APPROVERS[0], name)
    assert twice.returncode == 1
    assert "DuplicateApprover" in twice.stderr
    assert _approve(w, APPROVERS[1], name).returncode == 0
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    with pytest.raises(client.ApiException) as gone:
        client.CoreV1Api(w.admin).read_namespaced_pod(pod.metadata.name, w.shop)
    assert gone.value.status == 404


def test_a_denial_is_final(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(
        w,
        s,
        {
            "type": "restart-workload",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": "web"},
        },
    )
    _phase(w, name, {"AwaitingApproval"})
    assert _approve(w, APPROVERS[0], name, "deny").returncode == 0
    denied = _phase(w, name, {"Denied"})
    assert {c["type"] for c in denied["status"]["conditions"]} >= {"Denied"}
    assert "Approved" not in {c["type"] for c in denied["status"]["conditions"]}
    late = _approve(w, APPROVERS[1], name)
    assert late.returncode == 1
    assert "AlreadyDecided" in late.stderr
    template = client.AppsV1Api(w.admin).read_namespaced_deployment("web", w.shop).spec.template
    assert "kubectl.kubernetes.io/restartedAt" not in (template.metadata.annotations or {})


def test_a_request_nobody_decides_on_expires(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 10))
    _phase(w, name, {"AwaitingApproval"})
    expired = _phase(w, name, {"Expired"}, timeout=90)
    assert expired["status"]["reason"] == "ApprovalTimeout"
    assert _replicas(w, w.shop) == 3


# -- scope -------------------------------------------------------------------------------------


def test_an_out_of_scope_target_is_denied_and_revokes_the_session(world: World) -> None:
    w = world
    s = _session(w)
    deployments = f"/apis/apps/v1/namespaces/{w.shop}/deployments"
    assert probe.status(w.local, deployments, s.token) == 200
    name = _ask(w, s, _scale(w.other, 4))
    started = time.monotonic()
    denied = _phase(w, name, {"Denied"})
    assert denied["status"]["reason"] == "TargetOutOfScope"
    forbidden = probe.wait_for_status(w.local, deployments, s.token, 403, timeout=5)
    assert forbidden is not None
    print(
        f"\n[remediation] out-of-scope request -> session token 403 after "
        f"{time.monotonic() - started:.2f} s"
    )
    assert time.monotonic() - started < 5
    # Credentials go first, the status is written after: wait for it.
    session = agents.wait_phase(w.admin, w.ns, s.name, {"Revoked"}, timeout=5)
    assert session["status"]["revocation"]["reason"] == "OutOfScopeRequest"
    assert name in session["status"]["revocation"]["message"]
    assert _replicas(w, w.other) == 3


def test_ending_a_session_cancels_its_pending_requests(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 11))
    _phase(w, name, {"AwaitingApproval"})
    agents.end_session(w.agent, w.ns, s.name)
    cancelled = _phase(w, name, {"Cancelled"})
    assert cancelled["status"]["reason"] == "SessionEnded"


# -- every action: diff, apply, inverse, rollback ------------------------------------------------


def _approve_all(w: World, name: str) -> dict[str, Any]:
    """Approve with as many distinct approvers as the request needs; the settled request."""
    waiting = _phase(w, name, {"AwaitingApproval", "Succeeded", "Denied", "Failed"})
    if waiting["status"]["phase"] == "AwaitingApproval":
        for approver in APPROVERS[: waiting["status"]["requiredApprovals"]]:
            assert _approve(w, approver, name).returncode == 0
    return _phase(w, name, {"Succeeded", "Failed", "Denied"})


def _rolled_back(w: World, name: str) -> None:
    rolled = _cli(w, LEAD, "rollback", name, "--reason", "undo for the test")
    assert rolled.returncode == 0, rolled.stderr
    rollback = rolled.stdout.split(":")[0].strip()
    done = _approve_all(w, rollback)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _phase(w, name, {"RolledBack"})["status"]["reason"] == "RolledBack"


def _revision(w: World, name: str) -> str:
    deployment = client.AppsV1Api(w.admin).read_namespaced_deployment(name, w.shop)
    return str((deployment.metadata.annotations or {}).get("deployment.kubernetes.io/revision"))


def _image(w: World, name: str) -> str:
    deployment = client.AppsV1Api(w.admin).read_namespaced_deployment(name, w.shop)
    return str(deployment.spec.template.spec.containers[0].image)


def test_scale_applies_and_rolls_back(world: World) -> None:
    w = world
    s = _session(w)
    name_ = agents.unique("sc")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(name_, 3))
    name = _ask(w, s, _scale(w.shop, 5, name_))
    done = _approve_all(w, name)
    assert done["status"]["diff"] == [{"path": "spec.replicas", "before": "3", "after": "5"}]
    assert _replicas(w, w.shop, name_) == 5
    _rolled_back(w, name)
    assert _replicas(w, w.shop, name_) == 3


def test_restart_applies_and_rolls_back_to_the_previous_template(world: World) -> None:
    w = world
    s = _session(w)
    name_ = agents.unique("rs")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(name_, 1))
    agents.wait_for(lambda: _revision(w, name_) == "1", 20, "revision 1")
    name = _ask(
        w,
        s,
        {
            "type": "restart-workload",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": name_},
        },
    )
    done = _approve_all(w, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["diff"][0]["path"].endswith("[kubectl.kubernetes.io/restartedAt]")
    assert done["status"]["inverse"]["action"]["type"] == "rollback-deployment"
    agents.wait_for(lambda: _revision(w, name_) == "2", 20, "the restart's revision")
    _rolled_back(w, name)
    template = client.AppsV1Api(w.admin).read_namespaced_deployment(name_, w.shop).spec.template
    assert "kubectl.kubernetes.io/restartedAt" not in (template.metadata.annotations or {})


def test_rollback_deployment_applies_and_rolls_forward_again(world: World) -> None:
    w = world
    s = _session(w)
    name_ = agents.unique("rb")
    apps = client.AppsV1Api(w.admin)
    apps.create_namespaced_deployment(w.shop, agents.deployment(name_, 1, "registry.invalid/web:1"))
    agents.wait_for(lambda: _revision(w, name_) == "1", 20, "revision 1")
    apps.patch_namespaced_deployment(
        name_,
        w.shop,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:2"}]}
                }
            }
        },
    )
    agents.wait_for(lambda: _revision(w, name_) == "2", 20, "revision 2")
    name = _ask(
        w,
        s,
        {
            "type": "rollback-deployment",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": name_},
        },
    )
    done = _approve_all(w, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert {
        "path": "spec.template.spec.containers[name=app].image",
        "before": "registry.invalid/web:2",
        "after": "registry.invalid/web:1",
    } in done["status"]["diff"]
    assert _image(w, name_) == "registry.invalid/web:1"
    _rolled_back(w, name)
    assert _image(w, name_) == "registry.invalid/web:2"


def test_delete_pod_applies_and_says_it_cannot_be_undone(world: World) -> None:
    w = world
    s = _session(w)
    pod = client.CoreV1Api(w.admin).list_namespaced_pod(w.shop, label_selector="app=web").items[0]
    name = _ask(
        w,
        s,
        {
            "type": "delete-pod",
            "target": {"kind": "Pod", "namespace": w.shop, "name": pod.metadata.name},
        },
    )
    done = _approve_all(w, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert "inverse" not in done["status"]
    refused = _cli(w, LEAD, "rollback", name, "--reason", "undo")
    assert refused.returncode == 1
    assert "no recorded inverse" in refused.stderr


def test_cordon_applies_and_rolls_back(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, {"type": "cordon-node", "target": {"kind": "Node", "name": w.node}})
    done = _approve_all(w, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["diff"] == [{"path": "spec.unschedulable", "after": "true"}]
    assert client.CoreV1Api(w.admin).read_node(w.node).spec.unschedulable is True
    _rolled_back(w, name)
    assert not client.CoreV1Api(w.admin).read_node(w.node).spec.unschedulable


def test_suspend_cronjob_applies_and_rolls_back(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(
        w,
        s,
        {
            "type": "suspend-cronjob",
            "target": {"kind": "CronJob", "namespace": w.shop, "name": "report"},
        },
    )
    done = _approve_all(w, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    batch = client.BatchV1Api(w.admin)
    assert batch.read_namespaced_cron_job("report", w.shop).spec.suspend is True
    _rolled_back(w, name)
    assert batch.read_namespaced_cron_job("report", w.shop).spec.suspend is False


# -- exactly once across crashes ----------------------------------------------------------------


def test_killed_after_applying_the_change_is_not_applied_twice(
    world: World, operator: OperatorProcess
) -> None:
    """SIGKILL right after the restart was applied, before Succeeded was recorded."""
    w = world
    s = _session(w)
    name_ = agents.unique("once")
    apps = client.AppsV1Api(w.admin)
    apps.create_namespaced_deployment(w.shop, agents.deployment(name_, 1))
    agents.wait_for(lambda: _revision(w, name_) == "1", 20, "revision 1")
    operator.stop()
    operator.start(failpoints="after-apply")
    name = _ask(
        w,
        s,
        {
            "type": "restart-workload",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": name_},
        },
    )
    _phase(w, name, {"AwaitingApproval"})
    for approver in APPROVERS:
        _approve(w, approver, name)
    assert operator.wait_exit(30) == -9, "the operator did not die at the failpoint"
    crashed = _request(w, name)
    assert crashed["status"]["phase"] == "Applying"
    after_first = apps.read_namespaced_deployment(name_, w.shop)
    stamp = after_first.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    operator.start()
    done = _phase(w, name, {"Succeeded", "Failed"}, timeout=30)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    final = apps.read_namespaced_deployment(name_, w.shop)
    assert final.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == stamp
    assert final.metadata.generation == after_first.metadata.generation
    assert done["status"]["inverse"]["action"]["params"] == {"toRevision": 1}


def test_killed_before_applying_the_change_applies_it_once_on_restart(
    world: World, operator: OperatorProcess
) -> None:
    w = world
    s = _session(w)
    name_ = agents.unique("later")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(name_, 2))
    operator.stop()
    operator.start(failpoints="before-apply")
    name = _ask(w, s, _scale(w.shop, 3, name_))
    assert operator.wait_exit(30) == -9, "the operator did not die at the failpoint"
    assert _request(w, name)["status"]["phase"] == "Applying"
    assert _replicas(w, w.shop, name_) == 2
    operator.start()
    done = _phase(w, name, {"Succeeded", "Failed"}, timeout=30)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _replicas(w, w.shop, name_) == 3


def _records_of(log: pathlib.Path, uid: str) -> list[str]:
    """The events of the audit records about the object ``uid``, in the order of the trail."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["event"] for r in records if (r.get("object") or {}).get("uid") == uid]


def test_killed_after_the_write_that_approves_and_applies_records_the_approval_before_the_change(
    world: World, operator: OperatorProcess
) -> None:
    """One status write commits the approval and starts the apply (Applying, Approved set).
    SIGKILL right after it, before the approval's audit record: the restarted operator records
    the approval before it makes the change (killed again right before the change, the record is
    there and the target untouched), then applies the change once."""
    w = world
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    s = _session(w)
    deployment = agents.unique("approved")
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = _ask(w, s, _scale(w.shop, 6, deployment))
    waiting = _phase(w, name, {"AwaitingApproval"})
    uid = waiting["metadata"]["uid"]
    operator.stop()
    operator.start(failpoints="after-status:RequestApproved")
    _approve(w, APPROVERS[0], name)
    assert operator.wait_exit(30) == -9, "the operator did not die at the failpoint"
    crashed = _request(w, name)
    assert crashed["status"]["phase"] == "Applying", crashed["status"]
    approved = {c["type"]: c for c in crashed["status"]["conditions"]}["Approved"]
    assert (approved["status"], approved["reason"]) == ("True", "Approved")
    assert "RequestApproved" not in _records_of(log, uid)
    assert _replicas(w, w.shop, deployment) == 3
    with contextlib.suppress(RuntimeError):  # it may get there before it reports being ready
        operator.start(failpoints="before-apply")
    assert operator.wait_exit(30) == -9, "the restarted operator did not reach the change"
    assert _records_of(log, uid).count("RequestApproved") == 1
    assert _replicas(w, w.shop, deployment) == 3
    operator.start()
    done = _phase(w, name, {"Succeeded", "Failed"}, timeout=30)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _replicas(w, w.shop, deployment) == 6
    events = _records_of(log, uid)
    assert events.count("RequestApproved") == 1, events
    assert events.count("RequestApplied") == 1, events
    assert events.index("RequestApproved") < events.index("RequestApplied"), events
