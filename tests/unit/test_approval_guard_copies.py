"""The approval guard decides on the operator's watched copies of the session and its grant,
always reviews the approver's RBAC verb fresh, and refuses only on fresh reads.

The apiserver is replaced by functions returning the "fresh" session and grant and the review's
answer (unit tests only); the real webhooks against the real apiserver are in
tests/e2e/test_remediation.py and test_remediation_attacks.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kopf
import pytest

from agent_authority.kube import access, api, resources
from agent_authority.webhooks import requests as webhooks

NS = "agents"
SA = "aa-s1"
REQUESTER = {"username": "system:serviceaccount:agents:aa-s1", "groups": []}
APPROVER = {"username": "alice", "groups": ["sre"]}


def session_body(
    grant: str = "sre-bot", account: str | None = SA, requester: str = "bob"
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Active"}
    if account is not None:
        status["serviceAccountName"] = account
    return {
        "metadata": {"name": "s1", "namespace": NS, "uid": "u1", "resourceVersion": "5"},
        "spec": {"grantRef": {"name": grant}, "requester": {"username": requester}},
        "status": status,
    }


def grant_body(depth: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "sre-bot", "resourceVersion": "1"},
        "spec": {
            "subjects": [{"kind": "User", "name": "bob"}],
            "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
            "read": [{"name": "pods", "namespaces": ["shop"], "resources": ["pods"]}],
            "session": {"maxSubAgentDepth": depth},
        },
    }


class Apiserver:
    """What fresh reads return and the review answers (set by each test), and what was asked."""

    def __init__(self) -> None:
        self.session: dict[str, Any] | None = session_body()
        self.grant: dict[str, Any] | None = grant_body()
        self.allowed = True
        self.calls: list[str] = []

    async def get_session(self, _kube: Any, _ns: str, _name: str) -> dict[str, Any] | None:
        self.calls.append("get session")
        return copy.deepcopy(self.session)

    async def get_grant(self, _kube: Any, _name: str) -> dict[str, Any] | None:
        self.calls.append("get grant")
        return copy.deepcopy(self.grant)

    async def allowed_(self, _kube: Any, _user: Any, **_: Any) -> bool:
        self.calls.append("review")
        return self.allowed


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Apiserver:
    server = Apiserver()
    monkeypatch.setattr(api, "_default", object())
    monkeypatch.setattr(resources, "get_session", server.get_session)
    monkeypatch.setattr(resources, "get_grant", server.get_grant)
    monkeypatch.setattr(access, "allowed", server.allowed_)
    return server


def _request(approver: str = "alice") -> tuple[dict[str, Any], dict[str, Any]]:
    old = {
        "metadata": {"labels": {"agentauthority.io/session-uid": "u1"}},
        "spec": {"sessionRef": {"name": "s1"}, "requester": REQUESTER},
        "status": {"phase": "AwaitingApproval", "approvals": []},
    }
    new = copy.deepcopy(old)
    new["status"]["approvals"] = [
        {
            "decision": "approve",
            "reason": "ok",
            "approver": {"username": approver},
            "time": "2026-12-02T07:00:00Z",
        }
    ]
    return old, new


def guard(
    watched_session: dict[str, Any] | None,
    watched_grant: dict[str, Any] | None,
    approver: dict[str, Any] = APPROVER,
) -> None:
    old, new = _request(approver["username"])
    asyncio.run(
        webhooks.guard_approvals(
            userinfo=approver,
            memo=None,
            namespace=NS,
            old=old,
            new=new,
            sessions_by_name={f"{NS}/s1": [watched_session]} if watched_session else {},
            grants_by_name={"sre-bot": [watched_grant]} if watched_grant else {},
        )
    )


def test_an_approval_the_copies_allow_costs_only_the_review(fresh: Apiserver) -> None:
    guard(session_body(), grant_body())
    assert fresh.calls == ["review"]


def test_without_copies_it_reads_the_session_then_reviews_beside_the_grant_read(
    fresh: Apiserver,
) -> None:
    guard(None, None)
    assert fresh.calls[0] == "get session"
    assert sorted(fresh.calls[1:]) == ["get grant", "review"]


def test_a_copy_without_the_sessions_account_is_not_used(fresh: Apiserver) -> None:
    guard(session_body(account=None), grant_body())
    assert fresh.calls[0] == "get session"


def test_a_copy_of_another_session_of_that_name_is_not_used(fresh: Apiserver) -> None:
    other = session_body()
    other["metadata"]["uid"] = "u0"  # deleted and created again under the same name
    guard(other, grant_body())
    assert fresh.calls[0] == "get session"


def test_no_approve_verb_is_refused_after_the_same_decision_on_fresh_reads(
    fresh: Apiserver,
) -> None:
    fresh.allowed = False
    with pytest.raises(kopf.AdmissionError, match="RBAC verb 'approve'"):
        guard(session_body(), grant_body())
    assert fresh.calls[0] == "review"  # on the copies
    assert fresh.calls[1] == "get session"  # then again on fresh reads


NOT_WATCHED_AND_GONE = [
    pytest.param("session", "not found", id="a-session-the-copies-lack-and-gone-is-refused"),
    pytest.param("grant", "no longer exists", id="a-grant-the-copies-lack-and-gone-is-refused"),
]


@pytest.mark.parametrize(("gone", "message"), NOT_WATCHED_AND_GONE)
def test_what_the_copies_lack_is_read_fresh(fresh: Apiserver, gone: str, message: str) -> None:
    setattr(fresh, gone, None)
    with pytest.raises(kopf.AdmissionError, match=message):
        guard(None if gone == "session" else session_body(), None)
    assert "get session" in fresh.calls


def test_an_approval_on_the_copies_is_an_early_answer(fresh: Apiserver) -> None:
    """A grant deleted a moment ago (its copy not yet gone) admits the approval; the executor
    re-decides every approval on fresh reads before it applies anything (controllers.requests)."""
    fresh.grant = None
    guard(session_body(), grant_body())
    assert fresh.calls == ["review"]


def test_a_stale_copy_that_refuses_is_decided_again_on_fresh_reads(fresh: Apiserver) -> None:
    # The copy names a grant the copies do not hold yet: read fresh, and allowed there.
    guard(session_body(), None)
    assert fresh.calls[0] == "get session"


def test_the_requester_never_approves_even_on_fresh_reads(fresh: Apiserver) -> None:
    fresh.session = session_body(requester="alice")
    with pytest.raises(kopf.AdmissionError, match="alice"):
        guard(session_body(requester="alice"), grant_body())
    assert "get session" in fresh.calls


def test_the_sessions_own_account_never_approves(fresh: Apiserver) -> None:
    with pytest.raises(kopf.AdmissionError):
        guard(session_body(), grant_body(), approver=REQUESTER)
