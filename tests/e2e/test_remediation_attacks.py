"""Attacks on remediation requests, approvals, the executor and rollback (issue 7), and requests
the schema admits but nothing could act on (issue 14), on the real control plane with the real
operator under its own ClusterRole.

Each test makes the attack and asserts the promise that holds against it; each of them failed on
the code before the fix (see the commit that added it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.models import GROUP, VERSION
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_remediation import (
    APPROVERS,
    World,
    _append_approval,
    _approve,
    _ask,
    _grant_spec,
    _phase,
    _replicas,
    _request,
    _revision,
    _scale,
    _session,
    world,
)

__all__ = ["world"]  # the module-scoped world of test_remediation, shared here

WEBHOOKS = "agentauthority.io"
MARKER = "agentauthority.io/last-remediation"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions", [])}


def _readable(text: str) -> None:
    """No Python reprs in a message people read."""
    assert "{" not in text, text
    assert "None" not in text, text


def _apps(w: World) -> Any:
    return client.AppsV1Api(w.admin)


def _pods_reported(w: World, name: str, count: int) -> None:
    def check() -> bool:
        live = _apps(w).read_namespaced_deployment(name, w.shop)
        return bool(
            live.status.observed_generation == live.metadata.generation
            and (live.status.replicas or 0) == count
        )

    agents.wait_for(check, 30, f"deployment {name} to report {count} pods")


# -- 5. the lineage of a sub-agent's session may not approve its request --------------------------


def test_the_parent_sessions_owner_cannot_approve_a_sub_agents_request(world: World) -> None:
    """oncall-3 opens a session and may approve under its grant; a sub-agent of that session asks
    for a change. Whoever stands behind the sub-agent's lineage may not approve it.

    The attack of issue 7 opened the sub-agent with the parent's own session token, so that the
    parent's owner was neither the request's requester nor an identity of its session, and its
    approval counted. Two layers now stop it: session identities open no sessions (admission
    policy and webhook), and the approval exclusion covers every ancestor of the request's session
    (``policy.approvals.lineage_identities``, unit-tested with the walk in ``kube.lineage``)."""
    w = world
    owner = "oncall-3"
    grant = agents.unique("lineage")
    spec = _grant_spec(w.shop)
    spec["subjects"] = [
        {"kind": "User", "name": owner},
        {"kind": "Group", "name": f"system:serviceaccounts:{w.ns}"},
    ]
    agents.create_grant(w.admin, grant, spec)
    agents.cluster_role(
        w.admin,
        f"open-{grant}",
        agents.open_sessions_rules(("create", "get", "list", "watch")),
        [owner],
    )
    agents.cluster_role(
        w.admin,
        f"approve-{grant}",
        [*agents.request_status_rules(), agents.approve_rule(grant)],
        [owner, *APPROVERS],
    )
    # Session tokens of this namespace may open sub-agent sessions (of their own session).
    rbac = client.RbacAuthorizationV1Api(w.admin)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": f"subagents-{grant}"},
            "roleRef": {"apiGroup": agents.RBAC, "kind": "ClusterRole", "name": f"open-{grant}"},
            "subjects": [
                {
                    "kind": "Group",
                    "name": f"system:serviceaccounts:{w.ns}",
                    "apiGroup": agents.RBAC,
                }
            ],
        }
    )
    opener = agents.as_user(w.local, owner)
    parent_session = _session(w, grant, opener, agents.unique("parent"))
    parent, parent_api = parent_session.name, parent_session.api
    child = agents.unique("child")
    with pytest.raises(client.ApiException) as by_token:  # the attack's first step
        agents.open_session(
            parent_api, w.ns, agents.session_body(child, grant, parentSession=parent)
        )
    assert by_token.value.status == 403, agents.refusal(by_token.value)
    child_api = _session(w, grant, opener, child, parentSession=parent).api
    deployment = agents.unique("sub")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = agents.unique("rr")
    agents.create_request(
        child_api,
        w.ns,
        name,
        agents.request_spec(child, _scale(w.shop, 9, deployment), "more replicas"),
    )
    _phase(w, name, {"AwaitingApproval"})

    refused = _append_approval(opener, w, name)
    assert refused.status == 403
    assert "SessionIdentity" in agents.refusal(refused), agents.refusal(refused)
    assert owner in agents.refusal(refused)
    time.sleep(1)
    assert _request(w, name)["status"]["phase"] == "AwaitingApproval"
    assert _replicas(w, w.shop, deployment) == 3
    # Someone outside the lineage still can.
    assert _approve(w, APPROVERS[0], name).returncode == 0
    assert _phase(w, name, {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"


# -- 6. an approval never lands on a recreated target ---------------------------------------------


def test_an_approval_never_lands_on_a_target_deleted_and_created_again(world: World) -> None:
    w = world
    s = _session(w)
    deployment = agents.unique("again")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    _pods_reported(w, deployment, 3)
    name = _ask(w, s, _scale(w.shop, 9, deployment))
    reviewed = _phase(w, name, {"AwaitingApproval"})
    old_uid = _apps(w).read_namespaced_deployment(deployment, w.shop).metadata.uid
    _apps(w).delete_namespaced_deployment(deployment, w.shop)
    agents.wait_for(
        lambda: (
            deployment
            not in {d.metadata.name for d in _apps(w).list_namespaced_deployment(w.shop).items}
        ),
        20,
        "the deployment to be gone",
    )
    _apps(w).create_namespaced_deployment(
        w.shop, agents.deployment(deployment, 3, "registry.invalid/other:6")
    )
    _pods_reported(w, deployment, 3)

    assert _approve(w, APPROVERS[0], name).returncode == 0
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Failed", done["status"]
    assert done["status"]["reason"] == "TargetChanged"
    ready = _conditions(done)["Ready"]
    assert ready["status"] == "False"
    assert ready["reason"] == "TargetChanged"
    assert "deleted and created again" in ready["message"]
    assert old_uid in ready["message"]
    assert "nothing was applied" in ready["message"]
    _readable(ready["message"])
    assert _replicas(w, w.shop, deployment) == 3
    assert reviewed["status"]["targetUid"] == old_uid  # what the approval was for


def test_a_rollback_applies_the_revision_that_was_reviewed_or_nothing(world: World) -> None:
    """Reviewed as "back to web:1"; web:3 is rolled out before the approval. The executor must not
    re-resolve "the previous revision" (now web:2) and apply a change nobody reviewed."""
    w = world
    s = _session(w)
    deployment = agents.unique("pin")
    body = agents.deployment(deployment, 1, "registry.invalid/web:1")
    body["spec"]["strategy"] = {"type": "Recreate"}  # pods never get Ready: no rollout overlap
    _apps(w).create_namespaced_deployment(w.shop, body)
    agents.wait_for(lambda: _revision(w, deployment) == "1", 20, "revision 1")
    _set_image(w, deployment, "registry.invalid/web:2")
    agents.wait_for(lambda: _revision(w, deployment) == "2", 20, "revision 2")
    name = _ask(
        w,
        s,
        {
            "type": "rollback-deployment",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": deployment},
        },
    )
    reviewed = _phase(w, name, {"AwaitingApproval"})
    assert {
        "path": "spec.template.spec.containers[name=app].image",
        "before": "registry.invalid/web:2",
        "after": "registry.invalid/web:1",
    } in reviewed["status"]["diff"]
    _set_image(w, deployment, "registry.invalid/web:3")
    agents.wait_for(lambda: _revision(w, deployment) == "3", 20, "revision 3")
    _pods_reported(w, deployment, 1)

    assert _approve(w, APPROVERS[0], name).returncode == 0
    done = _phase(w, name, {"Succeeded", "Failed"})
    live = _apps(w).read_namespaced_deployment(deployment, w.shop).spec.template.spec
    assert live.containers[0].image == "registry.invalid/web:3", "applied an unreviewed change"
    assert done["status"]["phase"] == "Failed", done["status"]
    assert done["status"]["reason"] == "TargetChanged"
    message = _conditions(done)["Ready"]["message"]
    assert "registry.invalid/web:2 -> registry.invalid/web:1" in message
    _readable(message)
    assert reviewed["status"]["pinned"]["revision"] == 1


def _set_image(w: World, deployment: str, image: str) -> None:
    _apps(w).patch_namespaced_deployment(
        deployment,
        w.shop,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


# -- the executor trusts no Approved condition ----------------------------------------------------


@contextlib.contextmanager
def _admission_bypassed(admin: Any) -> Iterator[None]:
    """A path around admission, as when a webhook is misconfigured or removed: the product's
    webhook configurations and admission policy bindings are taken away for the duration."""
    adm = client.AdmissionregistrationV1Api(admin)
    sanitize = client.ApiClient().sanitize_for_serialization
    validating = sanitize(adm.read_validating_webhook_configuration(WEBHOOKS))
    mutating = sanitize(adm.read_mutating_webhook_configuration(WEBHOOKS))
    adm.delete_validating_webhook_configuration(WEBHOOKS)
    adm.delete_mutating_webhook_configuration(WEBHOOKS)
    bindings = [
        sanitize(b)
        for b in adm.list_validating_admission_policy_binding().items
        if "agentauthority" in (b.spec.policy_name or "") or "agentauthority" in b.metadata.name
    ]
    for binding in bindings:
        adm.delete_validating_admission_policy_binding(binding["metadata"]["name"])
    time.sleep(1.5)  # admission configuration is read from informers
    try:
        yield
    finally:
        for body in [validating, mutating, *bindings]:
            for key in (
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
                "generation",
            ):
                body["metadata"].pop(key, None)
            body.pop("status", None)
        with contextlib.suppress(client.ApiException):  # the operator may have recreated them
            adm.create_validating_webhook_configuration(validating)
        with contextlib.suppress(client.ApiException):
            adm.create_mutating_webhook_configuration(mutating)
        for binding in bindings:
            adm.create_validating_admission_policy_binding(binding)
        time.sleep(1.5)


def _stamp_approval(w: World, name: str, username: str, groups: list[str]) -> None:
    """Append an approval by ``username`` in ``groups`` to the request's status, stamped as the
    approval webhook would have stamped it (written as admin, around admission)."""
    current = _request(w, name)
    entry = {
        "decision": "approve",
        "reason": "fine",
        "approver": {"username": username, "groups": groups},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    client.CustomObjectsApi(w.admin).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        w.ns,
        "remediationrequests",
        name,
        {"status": {"approvals": [*current["status"].get("approvals", []), entry]}},
    )


def test_a_forged_approved_status_is_never_applied(world: World, operator: OperatorProcess) -> None:
    """Status written around the webhook: phase Approved and an Approved condition, no approvals.
    The operator (restarted, so it resumes the request) must count the approvals itself."""
    w = world
    s = _session(w)
    deployment = agents.unique("forged")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = _ask(w, s, _scale(w.shop, 9, deployment))
    _phase(w, name, {"AwaitingApproval"})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    forged = {
        "phase": "Approved",
        "reason": "Approved",
        "conditions": [
            {
                "type": "Approved",
                "status": "True",
                "reason": "Approved",
                "message": "approved by oncall-1 (1 of 1)",
                "lastTransitionTime": now,
            }
        ],
    }
    with _admission_bypassed(w.admin):
        client.CustomObjectsApi(w.admin).patch_namespaced_custom_object_status(
            GROUP, VERSION, w.ns, "remediationrequests", name, {"status": forged}
        )
    operator.restart()
    done = _phase(w, name, {"Succeeded", "Failed"}, timeout=30)
    assert done["status"]["phase"] == "Failed", done["status"]
    assert done["status"]["reason"] == "ApprovalNotVerified"
    message = _conditions(done)["Ready"]["message"]
    assert "0 of 1 approvals" in message
    assert "nothing was applied" in message
    _readable(message)
    assert _replicas(w, w.shop, deployment) == 3


def test_an_approval_does_not_survive_the_approvers_loss_of_the_approve_verb(
    world: World, operator: OperatorProcess
) -> None:
    """Approved while the operator was stopped; by the time it applies, the approver's RBAC is
    gone. The executor re-authorizes every approver and applies nothing."""
    w = world
    s = _session(w)
    approver = "oncall-4"
    agents.cluster_role(
        w.admin,
        f"approve-once-{w.grant}-{agents.unique('x')}",
        [*agents.request_status_rules(), agents.approve_rule(w.grant)],
        [approver],
    )
    deployment = agents.unique("lapsed")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    name = _ask(w, s, _scale(w.shop, 9, deployment))
    _phase(w, name, {"AwaitingApproval"})
    operator.stop()
    try:
        # The operator's webhooks are down, so the approval cannot be stamped; write it as the
        # webhook would have (this is what the stopped operator finds on restart).
        with _admission_bypassed(w.admin):
            _stamp_approval(w, name, approver, [])
        rbac = client.RbacAuthorizationV1Api(w.admin)
        for binding in rbac.list_cluster_role_binding().items:
            if binding.metadata.name.startswith(f"approve-once-{w.grant}"):
                rbac.delete_cluster_role_binding(binding.metadata.name)
    finally:
        operator.start()
    done = _phase(w, name, {"Succeeded", "Failed"}, timeout=30)
    assert done["status"]["phase"] == "Failed", done["status"]
    assert done["status"]["reason"] == "ApprovalNotVerified"
    assert f"{approver}: not authorized to approve" in _conditions(done)["Ready"]["message"]
    assert _replicas(w, w.shop, deployment) == 3


def test_an_approval_through_a_group_counts_only_while_the_group_may_approve(
    world: World, operator: OperatorProcess
) -> None:
    """Two approvers hold ``approve`` only through a group each, stamped in their approvals. One
    group's binding is removed before the executor runs: that approval no longer counts; the
    other, still authorized through its stamped group, is applied (so the groups are used)."""
    w = world
    s = _session(w)
    rbac = client.RbacAuthorizationV1Api(w.admin)
    role = f"approve-by-group-{agents.unique('x')}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": role},
            "rules": [*agents.request_status_rules(), agents.approve_rule(w.grant)],
        }
    )
    cases = {"kept": agents.unique("grp-kept"), "lost": agents.unique("grp-lost")}
    for group in cases.values():
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": group},
                "roleRef": {"apiGroup": agents.RBAC, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "Group", "name": group, "apiGroup": agents.RBAC}],
            }
        )
    requests: dict[str, tuple[str, str]] = {}
    for case in cases:
        deployment = agents.unique(f"by-{case}")
        _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
        requests[case] = (_ask(w, s, _scale(w.shop, 9, deployment)), deployment)
        _phase(w, requests[case][0], {"AwaitingApproval"})
    operator.stop()
    try:
        with _admission_bypassed(w.admin):  # stamped as the webhook would have stamped them
            for case, (name, _) in requests.items():
                _stamp_approval(w, name, f"oncall-{case}", [cases[case]])
        rbac.delete_cluster_role_binding(cases["lost"])
    finally:
        operator.start()
    lost = _phase(w, requests["lost"][0], {"Succeeded", "Failed"}, timeout=30)
    assert lost["status"]["phase"] == "Failed", lost["status"]
    assert lost["status"]["reason"] == "ApprovalNotVerified"
    assert "oncall-lost: not authorized to approve" in _conditions(lost)["Ready"]["message"]
    assert _replicas(w, w.shop, requests["lost"][1]) == 3
    kept = _phase(w, requests["kept"][0], {"Succeeded", "Failed"}, timeout=30)
    assert kept["status"]["phase"] == "Succeeded", kept["status"]
    assert _replicas(w, w.shop, requests["kept"][1]) == 9
    rbac.delete_cluster_role_binding(cases["kept"])
    rbac.delete_cluster_role(role)


# -- rollback -------------------------------------------------------------------------------------


def test_a_rollback_cannot_be_judged_under_another_sessions_looser_grant(world: World) -> None:
    """The original needed a human; a session under a grant that auto-applies any scale names it
    in spec.rollbackOf. The rollback belongs to the original's session, so it is refused."""
    w = world
    s = _session(w)
    deployment = agents.unique("orig")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 3))
    original = _ask(w, s, _scale(w.shop, 9, deployment))
    _phase(w, original, {"AwaitingApproval"})
    assert _approve(w, APPROVERS[0], original).returncode == 0
    applied = _phase(w, original, {"Succeeded", "Failed"})
    assert applied["status"]["phase"] == "Succeeded", applied["status"]

    loose = agents.unique("loose")
    spec = _grant_spec(w.shop)
    spec["remediations"] = [
        {
            "action": "scale-workload",
            "namespaces": [w.shop],
            "autonomy": "auto",
            "limits": {"maxReplicasDelta": 100},
        }
    ]
    agents.create_grant(w.admin, loose, spec)
    other = _session(w, loose)
    rollback = agents.unique("undo")
    agents.create_request(
        other.api,
        w.ns,
        rollback,
        agents.request_spec(
            other.name,
            applied["status"]["inverse"]["action"],
            "undo it",
            rollbackOf={"name": original},
        ),
    )
    done = _phase(w, rollback, {"Denied", "Succeeded", "Failed", "AwaitingApproval"})
    assert done["status"]["phase"] == "Denied", done["status"]
    assert done["status"]["reason"] == "InvalidRollback"
    message = _conditions(done)["Denied"]["message"]
    assert f"belongs to the session of the request it undoes ('{s.name}')" in message
    assert _replicas(w, w.shop, deployment) == 9
    assert _request(w, original)["status"]["phase"] == "Succeeded"


# -- inverse and resume state come from the request, never from the target ------------------------


def test_a_forged_marker_on_the_target_does_not_fake_an_applied_change(world: World) -> None:
    """Whoever can annotate the target writes the operator's marker naming the request, as if it
    had been applied already. The approved restart must still happen."""
    w = world
    s = _session(w)
    deployment = agents.unique("mark")
    _apps(w).create_namespaced_deployment(w.shop, agents.deployment(deployment, 1))
    agents.wait_for(lambda: _revision(w, deployment) == "1", 20, "revision 1")
    name = _ask(
        w,
        s,
        {
            "type": "restart-workload",
            "target": {"kind": "Deployment", "namespace": w.shop, "name": deployment},
        },
    )
    waiting = _phase(w, name, {"AwaitingApproval"})
    marker = {"request": waiting["metadata"]["uid"], "action": "restart-workload", "inverse": None}
    _apps(w).patch_namespaced_deployment(
        deployment, w.shop, {"metadata": {"annotations": {MARKER: json.dumps(marker)}}}
    )
    for approver in APPROVERS[: waiting["status"]["requiredApprovals"]]:
        assert _approve(w, approver, name).returncode == 0
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    template = _apps(w).read_namespaced_deployment(deployment, w.shop).spec.template
    assert RESTARTED_AT in (template.metadata.annotations or {}), "the restart never happened"
    assert done["status"]["inverse"]["action"]["params"] == {"toRevision": 1}


# -- issue 13: terminal phases say what happened ---------------------------------------------------


def test_a_cancelled_request_says_so_and_refuses_approvals_by_its_phase(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 12))
    _phase(w, name, {"AwaitingApproval"})
    agents.end_session(w.agent, w.ns, s.name)
    cancelled = _phase(w, name, {"Cancelled"})
    ready = _conditions(cancelled)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "SessionEnded")
    assert s.name in ready["message"]
    assert "nothing was applied" in ready["message"]
    assert cancelled["status"]["reason"] == "SessionEnded"
    late = _append_approval(agents.as_user(w.local, APPROVERS[1]), w, name)
    assert late.status == 403
    assert "is Cancelled" in agents.refusal(late)
    assert "Approved or Denied" not in agents.refusal(late)


# -- issue 8: the operator's own status writes skip the webhooks; nobody else's do ---------------

STATUS_POLICY = f"{GROUP}-request-status-by-the-operator"


def test_names_resembling_the_operators_are_not_exempt_from_the_status_webhooks(
    world: World,
) -> None:
    """The status webhooks skip exactly the operator's name (``not-the-operator``). Users whose
    names merely resemble it, allowed by RBAC to patch request status but not to approve, with
    the request-status policy's binding removed: the operator's webhooks refuse them on their
    own. A forged phase is refused; an approval naming the operator as approver is stamped with
    the caller (the mutating webhook ran) and refused for lacking the verb ``approve``."""
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 9))
    _phase(w, name, {"AwaitingApproval"})
    operator = dev.OPERATOR_USER
    users = [f"{operator}-2", operator.upper(), f"system:serviceaccount:{w.ns}:{operator}"]
    role = agents.unique("lookalike")
    agents.cluster_role(w.admin, role, agents.request_status_rules(), users)
    for user in users:  # the binding reached the authorizer (it also grants status patch)
        agents.wait_allowed(w.admin, user, "get", GROUP, "remediationrequests", w.ns)
    as_operator = {"username": operator, "groups": ["system:authenticated"]}
    try:
        with agents.without_policy_bindings(w.admin, STATUS_POLICY):
            for user in users:
                as_user = agents.as_user(w.local, user)
                with pytest.raises(client.ApiException) as forged:
                    client.CustomObjectsApi(as_user).patch_namespaced_custom_object_status(
                        GROUP,
                        VERSION,
                        w.ns,
                        "remediationrequests",
                        name,
                        {"status": {"phase": "Approved"}},
                    )
                message = agents.refusal(forged.value)
                assert forged.value.status == 403, message
                assert "ValidatingAdmissionPolicy" not in message, message
                assert "guard-approvals" in message, message
                assert "status is written by the operator" in message, message
                current = _request(w, name)
                entry = {"decision": "approve", "reason": "mine", "approver": as_operator}
                approvals = [*(current.get("status") or {}).get("approvals", []), entry]
                with pytest.raises(client.ApiException) as approval:
                    client.CustomObjectsApi(as_user).patch_namespaced_custom_object_status(
                        GROUP,
                        VERSION,
                        w.ns,
                        "remediationrequests",
                        name,
                        {"status": {"approvals": approvals}},
                    )
                message = agents.refusal(approval.value)
                assert "ValidatingAdmissionPolicy" not in message, message
                assert f"{user} may not approve or deny" in message, message
    finally:
        rbac = client.RbacAuthorizationV1Api(w.admin)
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)
    still = _request(w, name)
    assert still["status"]["phase"] == "AwaitingApproval"
    assert not still["status"].get("approvals")


# -- issue 14: malformed requests are refused by field, never crash a webhook ---------------------


def _create(w: World, spec: dict[str, Any], name: str | None = None) -> client.ApiException:
    with pytest.raises(client.ApiException) as refused:
        agents.create_request(w.admin, w.ns, name or agents.unique("bad"), spec)
    return refused.value


def _spec(w: World, **changes: Any) -> dict[str, Any]:
    return {**agents.request_spec("some-session", _scale(w.shop, 4), "h"), **changes}


def _evidence(observed: Any) -> list[dict[str, Any]]:
    return [{**agents.EVIDENCE[0], "observedAt": observed}]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"sessionRef": "x"}, "spec.sessionRef", id="sessionRef-a-string"),
        pytest.param({"sessionRef": {"name": ""}}, "spec.sessionRef.name", id="empty-name"),
        pytest.param({"sessionRef": {"name": 7}}, "spec.sessionRef.name", id="name-a-number"),
        pytest.param({"sessionRef": []}, "spec.sessionRef", id="sessionRef-a-list"),
        pytest.param(
            {"evidence": _evidence("0000-01-01T00:00:00Z")},
            "spec.evidence[0].observedAt",
            id="observedAt-year-zero",
        ),
        pytest.param(
            {"evidence": _evidence([])},
            'spec.evidence[0]: Invalid value: "object": invalid data, expected string',
            id="observedAt-a-list",
        ),
        pytest.param(
            {"hypothesis": "x" * (1200 * 1024)}, "spec.hypothesis", id="body-over-one-mebibyte"
        ),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(
    world: World, changes: dict[str, Any], field: str
) -> None:
    refused = _create(world, _spec(world, **changes))
    message = agents.refusal(refused)
    assert refused.status in (400, 403, 422), (refused.status, message)
    assert field in message, message
    assert "has no attribute" not in message
    assert "failed calling webhook" not in message
