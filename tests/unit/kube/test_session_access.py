"""Which Roles and RoleBindings a new session gets (unit test: a fake apiserver records the
writes; that they authorize what they should is tests/e2e/test_active_usable.py's and
test_sessions.py's)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agent_authority.kube import credentials, session_access, session_refs
from agent_authority.models import base, grant

REF = session_refs.SessionRef(namespace="agents", name="s1", uid="uid-1")
REQUESTER = base.UserInfo(username="alice", groups=["ai-agents"])


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class Writes:
    """Records every create (kind, namespace, body) and answers as a new object would."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any]]] = []

    def _create(self, kind: str, namespace: str, body: dict[str, Any]) -> Response:
        self.created.append((kind, namespace, body))
        return Response({**body, "metadata": {**body["metadata"], "uid": f"uid-{kind}"}})

    def create_namespaced_role(self, ns: str, body: dict[str, Any], **_: Any) -> Response:
        return self._create("Role", ns, body)

    def create_namespaced_role_binding(self, ns: str, body: dict[str, Any], **_: Any) -> Response:
        return self._create("RoleBinding", ns, body)

    def create_namespaced_service_account(
        self, ns: str, body: dict[str, Any], **_: Any
    ) -> Response:
        return self._create("ServiceAccount", ns, body)

    def create_namespaced_secret(self, ns: str, body: dict[str, Any], **_: Any) -> Response:
        return self._create("Secret", ns, body)

    def create_namespaced_service_account_token(
        self, name: str, ns: str, body: dict[str, Any], **_: Any
    ) -> Response:
        return Response(
            {"status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00+00:00"}}
        )

    def patch_namespaced_secret(self, name: str, ns: str, body: Any, **_: Any) -> Response:
        return Response({})


class FakeKube:
    def __init__(self) -> None:
        self.rbac = self.core = Writes()


def rule(ns: str) -> grant.PolicyRule:
    return grant.PolicyRule(namespace=ns, api_groups=[""], resources=["pods"], verbs=["get"])


def issued(rules: list[grant.PolicyRule]) -> list[tuple[str, str, dict[str, Any]]]:
    kube = FakeKube()
    asyncio.run(credentials.issue(kube, REF, rules, REQUESTER, 900))  # type: ignore[arg-type]
    return kube.rbac.created


OWN = session_access.own_name(REF)
READER = session_access.reader_name(REF)


@pytest.mark.parametrize(
    ("rules", "roles"),
    [
        pytest.param(
            [rule("shop")],
            {("shop", REF.base_name), ("agents", OWN), ("agents", READER)},
            id="rules-elsewhere-no-access-role-in-the-sessions-namespace",
        ),
        pytest.param(
            [rule("shop"), rule("agents")],
            {
                ("shop", REF.base_name),
                ("agents", REF.base_name),
                ("agents", OWN),
                ("agents", READER),
            },
            id="rules-in-the-sessions-namespace-get-their-own-access-role",
        ),
    ],
)
def test_a_new_session_gets_one_role_and_binding_per_namespace_plus_own_and_reader(
    rules: list[grant.PolicyRule], roles: set[tuple[str, str]]
) -> None:
    created = issued(rules)
    made = {(ns, b["metadata"]["name"]) for kind, ns, b in created if kind == "Role"}
    bound = {(ns, b["roleRef"]["name"]) for kind, ns, b in created if kind == "RoleBinding"}
    assert made == roles
    assert bound == roles


def test_the_own_role_lets_the_agent_ask_for_remediations_and_read_its_own() -> None:
    created = issued([rule("shop")])
    [own] = [b for kind, _, b in created if kind == "Role" and b["metadata"]["name"] == OWN]
    assert own["rules"] == [
        {
            "apiGroups": ["agentauthority.io"],
            "resources": ["remediationrequests"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["agentauthority.io"],
            "resources": ["incidentsessions"],
            "verbs": ["get"],
            "resourceNames": [REF.name],
        },
    ]
    with_requests = session_access.own_role(REF, ["r2", "r1"])["rules"]
    assert with_requests[-1]["resourceNames"] == ["r1", "r2"]
    assert with_requests[0]["verbs"] == ["create"]
