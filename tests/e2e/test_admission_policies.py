"""With the operator STOPPED and its webhook configurations DELETED, the apiserver still refuses.

The ValidatingAdmissionPolicies in ``config/policies/`` are installed with the CRDs. Every caller
here holds the RBAC for what it tries (so the refusal is the policy's, not RBAC's): the agent may
patch sessions and their status, the approver may patch request status, a session identity
(``aa-*`` ServiceAccount) may do everything among our kinds in its namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.localcluster import cluster
from agent_authority.models import FINALIZER, GROUP, VERSION
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess

AGENT, AGENT_GROUP, APPROVER = "agent-vap", "vap-agents", "approver-vap"
SESSION_SA = "aa-vap-session-0000"
RBAC = "rbac.authorization.k8s.io"
WEBHOOKS = "agentauthority.io"


@dataclasses.dataclass
class Down:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    approver: Any
    operator: Any  # the operator's own identity (a client as its user), the process stopped
    session_identity: Any
    ns: str


def _delete_webhook_configurations(admin: Any) -> None:
    api = client.AdmissionregistrationV1Api(admin)
    for delete in (
        api.delete_mutating_webhook_configuration,
        api.delete_validating_webhook_configuration,
    ):
        try:
            delete(WEBHOOKS)
        except client.ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture(scope="module")
def down(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[Down]:
    ns = agents.unique("vap")
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": ns}})
    rbac = client.RbacAuthorizationV1Api(admin)
    rules = [
        {
            "apiGroups": [GROUP],
            "resources": ["incidentsessions", "incidentsessions/status"],
            "verbs": ["create", "get", "patch", "update", "delete"],
        },
        {
            "apiGroups": [GROUP],
            "resources": ["remediationrequests", "remediationrequests/status"],
            "verbs": ["create", "get", "patch", "update", "delete"],
        },
    ]
    rbac.create_namespaced_role(ns, {"metadata": {"name": "vap-all"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "vap-all"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "vap-all"},
            "subjects": [
                {"kind": "Group", "name": AGENT_GROUP, "apiGroup": RBAC},
                {"kind": "User", "name": APPROVER, "apiGroup": RBAC},
                {"kind": "ServiceAccount", "name": SESSION_SA, "namespace": ns},
            ],
        },
    )
    core = client.CoreV1Api(admin)
    core.create_namespaced_service_account(ns, {"metadata": {"name": SESSION_SA}})
    token = core.create_namespaced_service_account_token(
        SESSION_SA, ns, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    operator.stop()
    _delete_webhook_configurations(admin)
    try:
        yield Down(
            local_cluster,
            admin,
            agents.as_user(local_cluster, AGENT, [AGENT_GROUP]),
            agents.as_user(local_cluster, APPROVER),
            agents.as_user(local_cluster, dev.OPERATOR_USER),
            agents.token_client(local_cluster, token),
            ns,
        )
    finally:
        operator.start()


def _custom(api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _refused(call: Any, *args: Any, code: int | None = None) -> str:
    with pytest.raises(client.ApiException) as refused:
        call(*args)
    if code is not None:
        assert refused.value.status == code, agents.refusal(refused.value)
    else:
        assert refused.value.status in (403, 422), agents.refusal(refused.value)
    return agents.refusal(refused.value)


def _requester(username: str, groups: list[str]) -> dict[str, Any]:
    return {"username": username, "groups": groups}


def _session(d: Down, name: str, requester: dict[str, Any] | None) -> dict[str, Any]:
    body = agents.session_body(name, "some-grant")
    if requester is not None:
        body["spec"]["requester"] = requester
    return body


def _agent_session(d: Down) -> str:
    name = agents.unique("s")
    me = _requester(AGENT, [AGENT_GROUP, "system:authenticated"])
    agents.open_session(d.agent, d.ns, _session(d, name, me))
    return name


def _request_body(name: str, requester: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sessionRef": {"name": "some-session"},
        "action": {
            "type": "scale-workload",
            "target": {"kind": "Deployment", "name": "checkout", "namespace": "shop"},
            "params": {"replicas": 4},
        },
        "hypothesis": "more replicas",
    }
    if requester is not None:
        spec["requester"] = requester
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RemediationRequest",
        "metadata": {"name": name},
        "spec": spec,
    }


def _create_request(api: Any, ns: str, body: dict[str, Any]) -> Any:
    return _custom(api).create_namespaced_custom_object(
        GROUP, VERSION, ns, "remediationrequests", body
    )


def _patch(api: Any, ns: str, plural: str, name: str, patch: dict[str, Any]) -> Any:
    return _custom(api).patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, patch)


def _patch_status(api: Any, ns: str, plural: str, name: str, patch: dict[str, Any]) -> Any:
    return _custom(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, plural, name, patch
    )


def test_the_webhooks_really_are_gone(down: Down) -> None:
    api = client.AdmissionregistrationV1Api(down.admin)
    _refused(api.read_mutating_webhook_configuration, WEBHOOKS, code=404)
    _refused(api.read_validating_webhook_configuration, WEBHOOKS, code=404)


def test_spec_requester_must_be_the_caller_on_create(down: Down) -> None:
    d = down
    spoofed = _requester("someone-else", [AGENT_GROUP, "system:authenticated"])
    message = _refused(agents.open_session, d.agent, d.ns, _session(d, agents.unique("s"), spoofed))
    assert "spec.requester.username must be the authenticated caller agent-vap" in message
    missing = _session(d, agents.unique("s"), None)
    assert "spec.requester.username" in _refused(agents.open_session, d.agent, d.ns, missing)
    wider = _requester(AGENT, [AGENT_GROUP, "system:authenticated", "system:masters"])
    message = _refused(agents.open_session, d.agent, d.ns, _session(d, agents.unique("s"), wider))
    assert "spec.requester.groups must be exactly the caller's groups" in message
    assert _agent_session(d)  # the caller's own identity is admitted

    identity = f"system:serviceaccount:{d.ns}:{SESSION_SA}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{d.ns}", "system:authenticated"]
    message = _refused(
        _create_request,
        d.session_identity,
        d.ns,
        _request_body(agents.unique("rr"), _requester(AGENT, [AGENT_GROUP])),
    )
    assert f"must be the authenticated caller {identity}" in message
    created = _create_request(
        d.session_identity, d.ns, _request_body(agents.unique("rr"), _requester(identity, groups))
    )
    assert created["spec"]["requester"]["username"] == identity


def test_session_status_is_written_by_the_operator_only(down: Down) -> None:
    d = down
    name = _agent_session(d)
    forged = {"status": {"phase": "Active", "secretName": "someone-elses-token"}}
    for who in (d.agent, d.admin):
        message = _refused(_patch_status, who, d.ns, "incidentsessions", name, forged)
        assert "IncidentSession status is written by the operator" in message
    written = _patch_status(d.operator, d.ns, "incidentsessions", name, {"status": {"depth": 0}})
    assert written["status"]["depth"] == 0


def test_request_status_gains_only_one_approval_stamped_with_its_caller(down: Down) -> None:
    d = down
    identity = f"system:serviceaccount:{d.ns}:{SESSION_SA}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{d.ns}", "system:authenticated"]
    name = agents.unique("rr")
    _create_request(d.session_identity, d.ns, _request_body(name, _requester(identity, groups)))
    plural = "remediationrequests"
    _patch_status(d.operator, d.ns, plural, name, {"status": {"phase": "AwaitingApproval"}})

    def approval(username: str, reason: str = "looks right") -> dict[str, Any]:
        return {"decision": "approve", "reason": reason, "approver": {"username": username}}

    message = _refused(
        _patch_status, d.approver, d.ns, plural, name, {"status": {"phase": "Approved"}}
    )
    assert "RemediationRequest status is written by the operator only" in message
    as_someone_else = {"status": {"approvals": [approval("carol")]}}
    message = _refused(_patch_status, d.approver, d.ns, plural, name, as_someone_else)
    assert "must name its caller approver-vap" in message
    two = {"status": {"approvals": [approval(APPROVER), approval(APPROVER, "again")]}}
    assert "append exactly one approval" in _refused(
        _patch_status, d.approver, d.ns, plural, name, two
    )
    approved = _patch_status(
        d.approver, d.ns, plural, name, {"status": {"approvals": [approval(APPROVER)]}}
    )
    assert approved["status"]["approvals"][0]["approver"]["username"] == APPROVER
    assert approved["status"]["phase"] == "AwaitingApproval"
    rewritten = {"status": {"approvals": [approval(APPROVER, "changed my words")]}}
    assert "append exactly one approval" in _refused(
        _patch_status, d.approver, d.ns, plural, name, rewritten
    )


def test_session_spec_changes_only_by_ending(down: Down) -> None:
    d = down
    name = _agent_session(d)
    plural = "incidentsessions"
    message = _refused(_patch, d.agent, d.ns, plural, name, {"spec": {"purpose": "rewritten"}})
    assert "spec.purpose: IncidentSession spec is immutable except spec.ended" in message
    _patch(d.agent, d.ns, plural, name, {"spec": {"ended": True}})
    # The CRD's own rule refuses this too; either way the refusal names spec.ended.
    message = _refused(_patch, d.agent, d.ns, plural, name, {"spec": {"ended": False}})
    assert "spec.ended" in message
    assert "spec.ended" in _refused(_patch, d.agent, d.ns, plural, name, {"spec": {"ended": None}})


def test_finalizer_and_operator_annotations_change_only_by_the_operator(down: Down) -> None:
    d = down
    name = _agent_session(d)
    plural = "incidentsessions"
    _patch(d.operator, d.ns, plural, name, {"metadata": {"finalizers": [FINALIZER]}})
    message = _refused(_patch, d.agent, d.ns, plural, name, {"metadata": {"finalizers": None}})
    assert f"the finalizer {FINALIZER} is added and removed by the operator only" in message
    diff_base = {
        "metadata": {"annotations": {"agentauthority.io/last-handled-configuration": "{}"}}
    }
    message = _refused(_patch, d.agent, d.ns, plural, name, diff_base)
    assert "metadata.annotations[agentauthority.io/last-handled-configuration]: " in message
    assert "annotations agentauthority.io/* " in message
    noted = _patch(d.agent, d.ns, plural, name, {"metadata": {"annotations": {"note": "mine"}}})
    assert noted["metadata"]["annotations"]["note"] == "mine"
    _patch(d.operator, d.ns, plural, name, diff_base)
    gone = _patch(d.operator, d.ns, plural, name, {"metadata": {"finalizers": None}})
    assert FINALIZER not in (gone["metadata"].get("finalizers") or [])


def test_session_identities_only_create_requests(down: Down) -> None:
    d = down
    identity = f"system:serviceaccount:{d.ns}:{SESSION_SA}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{d.ns}", "system:authenticated"]
    own = _session(d, agents.unique("s"), _requester(identity, groups))
    message = _refused(agents.open_session, d.session_identity, d.ns, own)
    assert "may create RemediationRequests and nothing else" in message
    assert "refused: CREATE incidentsessions" in message
    name = _agent_session(d)
    assert "refused: UPDATE incidentsessions" in _refused(
        _patch, d.session_identity, d.ns, "incidentsessions", name, {"spec": {"ended": True}}
    )
    request = agents.unique("rr")
    _create_request(d.session_identity, d.ns, _request_body(request, _requester(identity, groups)))
    assert "refused: DELETE remediationrequests" in _refused(
        _custom(d.session_identity).delete_namespaced_custom_object,
        GROUP,
        VERSION,
        d.ns,
        "remediationrequests",
        request,
    )
