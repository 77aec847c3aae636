"""Revocation that does not come from the agent: deviations, rotation, and operator crashes."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from kubernetes import client

from agent_authority.models import GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_sessions import AGENT, AGENT_GROUP, World, _active, grant_spec, world

__all__ = ["world"]  # the module-scoped fixture, shared with test_sessions


def test_a_denied_request_revokes_the_session(world: World) -> None:
    """Default policy (maxDeniedRequests 0): the first forbidden request ends the session."""
    w = world
    strict = agents.unique("strict")
    agents.create_grant(w.admin, strict, grant_spec(w.shop))
    body, token = _active(w, grant=strict)
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    assert probe.status(w.local, pods, token) == 200
    started = time.monotonic()
    assert probe.status(w.local, f"/api/v1/namespaces/{w.other}/secrets", token) == 403
    revoked = agents.wait_phase(w.admin, w.ns, body["metadata"]["name"], {"Revoked"}, timeout=15)
    took = time.monotonic() - started
    assert revoked["status"]["revocation"]["reason"] == "Deviation"
    assert "list secrets in namespace" in revoked["status"]["revocation"]["message"]
    assert revoked["status"]["deniedRequests"] == 1
    assert probe.status(w.local, pods, token) == 403
    print(
        f"\n[revocation] forbidden request -> session revoked after {took:.2f} s "
        "(audit webhook, 1 s batches)"
    )
    client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", strict
    )


def test_denials_within_the_allowance_are_counted_not_revoked(world: World) -> None:
    w = world
    lenient = agents.unique("lenient")
    agents.create_grant(w.admin, lenient, grant_spec(w.shop, maxDeniedRequests=1))
    body, token = _active(w, grant=lenient)
    name = body["metadata"]["name"]
    assert probe.status(w.local, f"/api/v1/namespaces/{w.other}/pods", token) == 403
    agents.wait_for(
        lambda: agents.get_session(w.admin, w.ns, name)["status"].get("deniedRequests") == 1,
        15,
        "the first denial to be counted",
    )
    assert agents.get_session(w.admin, w.ns, name)["status"]["phase"] == "Active"
    assert probe.status(w.local, f"/api/v1/namespaces/{w.other}/configmaps", token) == 403
    revoked = agents.wait_phase(w.admin, w.ns, name, {"Revoked"}, timeout=15)
    assert revoked["status"]["revocation"]["reason"] == "Deviation"
    client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", lenient
    )


def test_only_the_requester_can_read_the_session_token(world: World) -> None:
    w = world
    body, _ = _active(w)
    colleague = agents.as_user(w.local, "agent-carol", [AGENT_GROUP])
    with pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(colleague).read_namespaced_secret(body["status"]["secretName"], w.ns)
    assert refused.value.status == 403, "another subject of the same grant read the token"


def test_tokens_are_rotated_while_the_session_lives(world: World) -> None:
    w = world
    body, first = _active(w)
    name = body["metadata"]["name"]
    rotated_at = body["status"]["tokenRotatedAt"]

    def rotated() -> dict[str, Any] | None:
        fresh = agents.get_session(w.admin, w.ns, name)
        return fresh if fresh["status"]["tokenRotatedAt"] != rotated_at else None

    fresh = agents.wait_for(rotated, 40, "the token to be rotated", every=0.5)
    second = agents.token_of(w.agent, w.ns, fresh)
    assert second != first
    assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", second) == 200
    expiry = datetime.datetime.fromisoformat(fresh["status"]["tokenExpiresAt"])
    assert expiry > datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=500)


def _leftover_uids(admin: Any) -> set[str]:
    selector = "agentauthority.io/session-uid"
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    found = [
        *core.list_service_account_for_all_namespaces(label_selector=selector).items,
        *core.list_secret_for_all_namespaces(label_selector=selector).items,
        *rbac.list_role_binding_for_all_namespaces(label_selector=selector).items,
    ]
    return {o.metadata.labels[selector] for o in found}


def test_operator_killed_mid_flight_leaves_no_live_credential(
    world: World, operator: OperatorProcess
) -> None:
    """SIGKILL while sessions are being created and ended; after restart nothing leaks."""
    w = world
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    settled = [_active(w) for _ in range(4)]
    to_end = settled[:2]
    in_flight = [agents.unique("flight") for _ in range(5)]
    for name in in_flight:
        agents.open_session(w.agent, w.ns, agents.session_body(name, w.grant))
    for body, _ in to_end:
        agents.end_session(w.agent, w.ns, body["metadata"]["name"])
    agents.end_session(w.agent, w.ns, in_flight[0])
    operator.kill()
    # While the operator is down its webhooks fail closed: not even an end is let through
    # unreviewed (the session cannot be revoked before the operator is back anyway).
    with pytest.raises(client.ApiException) as refused:
        agents.end_session(w.agent, w.ns, in_flight[1])
    assert "guard-session" in agents.refusal(refused.value)
    operator.start()
    agents.end_session(w.agent, w.ns, in_flight[1])

    ended = {b["metadata"]["name"] for b, _ in to_end} | set(in_flight[:2])
    for name in ended:
        agents.wait_phase(w.admin, w.ns, name, {"Ended"}, timeout=30)
    for name in in_flight[2:]:
        agents.wait_phase(w.admin, w.ns, name, {"Active"}, timeout=30)
    for _, token in to_end:
        assert probe.wait_for_status(w.local, pods, token, 401, timeout=20) is not None
    for _, token in settled[2:]:
        assert probe.status(w.local, pods, token) == 200
    live = {
        s["metadata"]["uid"]
        for s in client.CustomObjectsApi(w.admin).list_cluster_custom_object(
            GROUP, VERSION, "incidentsessions"
        )["items"]
        if (s.get("status") or {}).get("phase") == "Active"
    }
    assert _leftover_uids(w.admin) <= live, "credentials of ended sessions survived the crash"
    assert AGENT  # the requester identity used throughout
