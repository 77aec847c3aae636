"""Who asked, who decided, and which transition a record is: table tests."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.audit import attribution
from agent_authority.models import audit as models

E = models.AuditEvent
SESSION: dict[str, Any] = {
    "metadata": {"uid": "u-1", "namespace": "agents", "name": "s"},
    "spec": {"requester": {"username": "agent-alice"}},
    "status": {"tokenRotatedAt": "2026-01-01T00:00:00+00:00"},
}
REQUEST: dict[str, Any] = {
    "metadata": {"uid": "r-1", "namespace": "agents", "name": "r"},
    "spec": {"requester": {"username": "system:serviceaccount:agents:aa-s-1234"}},
    "status": {
        "approvals": [
            {"decision": "approve", "reason": "looks right", "approver": {"username": "bob"}},
            {"decision": "approve", "reason": "second pair", "approver": {"username": "carol"}},
        ]
    },
}
DENIED: dict[str, Any] = {
    **REQUEST,
    "status": {
        "approvals": [
            {"decision": "approve", "reason": "ok", "approver": {"username": "bob"}},
            {"decision": "deny", "reason": "wrong pod", "approver": {"username": "dave"}},
        ]
    },
}


def people(*pairs: tuple[str, str]) -> list[models.Decider]:
    return [models.Decider(kind=models.DeciderKind.PERSON, name=n, reason=r) for n, r in pairs]


def policy(message: str) -> list[models.Decider]:
    return [models.Decider(kind=models.DeciderKind.POLICY, name="agent-authority", reason=message)]


@pytest.mark.parametrize(
    ("event", "reason", "body", "expected"),
    [
        pytest.param(
            E.REQUEST_APPROVED,
            "Approved",
            REQUEST,
            people(("bob", "looks right"), ("carol", "second pair")),
            id="approved-by-people-keeps-every-approver-and-reason",
        ),
        pytest.param(
            E.REQUEST_DENIED,
            "DeniedByApprover",
            DENIED,
            people(("dave", "wrong pod")),
            id="denied-by-a-person-names-the-denier-not-the-approvers",
        ),
        pytest.param(
            E.REQUEST_APPROVED, "AutoApproved", REQUEST, policy("m"), id="auto-approval-is-policy"
        ),
        pytest.param(
            E.REQUEST_DENIED, "OutOfScope", REQUEST, policy("m"), id="policy-denial-is-policy"
        ),
        pytest.param(
            E.REQUEST_APPROVED,
            "Approved",
            {"status": {}},
            policy("m"),
            id="approved-without-approvals-falls-back-to-policy",
        ),
        pytest.param(E.SESSION_EXPIRED, "Expired", SESSION, policy("m"), id="ttl-is-policy"),
        pytest.param(E.SESSION_ENDED, "Ended", SESSION, [], id="spec-ended-is-a-client-act"),
    ],
)
def test_who_decided(
    event: E, reason: str, body: dict[str, Any], expected: list[models.Decider]
) -> None:
    assert attribution.decided_by(event, reason, "m", body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(SESSION, "agent-alice", id="stamped-requester"),
        pytest.param({"spec": {}}, None, id="nobody-asked"),
        pytest.param({"spec": {"requester": "x"}}, None, id="malformed-requester-ignored"),
    ],
)
def test_who_asked(body: dict[str, Any], expected: str | None) -> None:
    assert attribution.requested_by(body) == expected


def rid(event: E, body: dict[str, Any], key: str | None = None, **details: Any) -> str | None:
    return attribution.record_id(event, body, correlation_id="c", details=details, key=key)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param(
            lambda: rid(E.SESSION_OPENED, SESSION),
            lambda: rid(E.SESSION_OPENED, SESSION),
            True,
            id="a-replayed-opening-is-the-same-record",
        ),
        pytest.param(
            lambda: rid(E.SESSION_EXPIRED, SESSION),
            lambda: rid(E.SESSION_REVOKED, SESSION),
            True,
            id="one-terminal-record-per-session",
        ),
        pytest.param(
            lambda: rid(E.REQUEST_APPLIED, REQUEST),
            lambda: rid(E.REQUEST_APPLIED, {**REQUEST, "metadata": {"uid": "r-2"}}),
            False,
            id="another-object-is-another-record",
        ),
        pytest.param(
            lambda: rid(E.TOKEN_ROTATED, SESSION),
            lambda: rid(
                E.TOKEN_ROTATED, {**SESSION, "status": {"tokenRotatedAt": "2026-01-01T00:10:00Z"}}
            ),
            False,
            id="each-rotation-is-its-own-record",
        ),
        pytest.param(
            lambda: rid(E.DEVIATION_DETECTED, SESSION, auditID="a1"),
            lambda: rid(E.DEVIATION_DETECTED, SESSION, auditID="a2"),
            False,
            id="each-audited-denial-is-its-own-record",
        ),
        pytest.param(
            lambda: rid(E.GRANT_COMPILED, SESSION, generation=1),
            lambda: rid(E.GRANT_COMPILED, SESSION, generation=2),
            False,
            id="each-grant-generation-is-its-own-record",
        ),
        pytest.param(
            lambda: rid(E.REQUEST_APPLIED, REQUEST, key="1"),
            lambda: rid(E.REQUEST_APPLIED, REQUEST, key="2"),
            False,
            id="an-explicit-key-tells-transitions-apart",
        ),
    ],
)
def test_record_ids(first: Any, second: Any, same: bool) -> None:
    a, b = first(), second()
    assert a is not None
    assert b is not None
    assert (a == b) is same


def test_events_without_a_natural_identity_have_no_id() -> None:
    assert rid(E.DEVIATION_DETECTED, SESSION) is None
