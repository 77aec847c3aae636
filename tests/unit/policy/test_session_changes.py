"""Who may change a session after it opened, and which denied reads are the session's own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent_authority.models import base
from agent_authority.policy import session_changes

REQUESTER = base.UserInfo(username="system:serviceaccount:agents:sre-bot")
COLLEAGUE = base.UserInfo(username="system:serviceaccount:agents:other-bot")
ITSELF = base.UserInfo(username="system:serviceaccount:agents:aa-inc-1-1a2b3c4d")
ONCALL = base.UserInfo(username="oncall", groups=["sre"])

OLD: dict[str, Any] = {
    "metadata": {
        "name": "inc-1",
        "namespace": "agents",
        "annotations": {
            "agentauthority.io/last-handled-configuration": "{}",
            "team.example/ticket": "T-1",
        },
        "labels": {"agentauthority.io/grant": "sre-bot", "team": "a"},
        "finalizers": ["agentauthority.io/finalizer"],
    },
    "spec": {
        "grantRef": {"name": "sre-bot"},
        "purpose": "latency",
        "ttlSeconds": 600,
        "requester": {"username": REQUESTER.username},
    },
    "status": {"phase": "Active", "serviceAccountName": "aa-inc-1-1a2b3c4d"},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """OLD with one field set (``a.b.c``); ``None`` removes it."""
    new = copy.deepcopy(OLD)
    *parents, leaf = path.split(".")
    node = new
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return new


ENDED = changed("spec.ended", True)


@pytest.mark.parametrize(
    ("new", "caller", "holds_end", "expected"),
    [
        (ENDED, REQUESTER, False, None),
        (ENDED, ONCALL, True, None),
        (
            changed("metadata.annotations", {**OLD["metadata"]["annotations"], "x.io/y": "1"}),
            COLLEAGUE,
            False,
            None,
        ),
        (
            changed("metadata.labels", {"agentauthority.io/grant": "sre-bot", "team": "b"}),
            COLLEAGUE,
            False,
            None,
        ),
        (
            changed("metadata.finalizers", ["agentauthority.io/finalizer", "foregroundDeletion"]),
            COLLEAGUE,
            False,
            None,
        ),
        (copy.deepcopy(OLD), COLLEAGUE, False, None),
    ],
    ids=[
        "requester-ends-its-session",
        "holder-of-the-end-verb-ends-anyones-session",
        "anyone-with-patch-adds-their-own-annotation",
        "labels-outside-the-operator-prefix-change",
        "the-garbage-collectors-finalizers-come-and-go",
        "a-no-op-update-passes",
    ],
)
def test_update_allowed(
    new: dict[str, Any], caller: base.UserInfo, holds_end: bool, expected: None
) -> None:
    assert session_changes.update_failure(OLD, new, caller, holds_end_verb=holds_end) is expected


@pytest.mark.parametrize(
    ("old", "new", "caller", "reason", "says"),
    [
        (
            OLD,
            ENDED,
            COLLEAGUE,
            "NotAllowedToEnd",
            "spec.ended: 'system:serviceaccount:agents:other-bot' did not open this session",
        ),
        (OLD, changed("spec.purpose", "mine now"), COLLEAGUE, "SpecImmutable", "spec.purpose:"),
        (OLD, changed("spec.purpose", "rewritten"), REQUESTER, "SpecImmutable", "spec.purpose:"),
        (OLD, changed("spec.ttlSeconds", 86400), REQUESTER, "SpecImmutable", "spec.ttlSeconds:"),
        (
            OLD,
            changed("spec.requester", {"username": "admin"}),
            REQUESTER,
            "SpecImmutable",
            "spec.requester:",
        ),
        (
            OLD,
            changed("spec.scopes", [{"name": "all"}]),
            REQUESTER,
            "SpecImmutable",
            "spec.scopes:",
        ),
        (
            ENDED,
            changed("spec.ended", False),
            REQUESTER,
            "SpecImmutable",
            "spec.ended: an ended session stays ended",
        ),
        (ENDED, changed("spec.ended", None), REQUESTER, "SpecImmutable", "spec.ended:"),
        (
            OLD,
            {
                **changed("spec.ended", True),
                "metadata": {
                    **OLD["metadata"],
                    "annotations": {
                        "agentauthority.io/last-handled-configuration": '{"spec":{"ended":true}}'
                    },
                },
            },
            REQUESTER,
            "OperatorOwned",
            "metadata.annotations[agentauthority.io/last-handled-configuration]: written only "
            "by the operator",
        ),
        (
            OLD,
            changed("metadata.annotations", {"agentauthority.io/opened": "done"}),
            REQUESTER,
            "OperatorOwned",
            "metadata.annotations[agentauthority.io/last-handled-configuration]",
        ),
        (
            OLD,
            changed("metadata.labels", {"agentauthority.io/grant": "other"}),
            REQUESTER,
            "OperatorOwned",
            "metadata.labels[agentauthority.io/grant]",
        ),
        (
            OLD,
            changed("metadata.finalizers", []),
            REQUESTER,
            "OperatorOwned",
            "metadata.finalizers:",
        ),
        (
            OLD,
            changed("metadata.finalizers", None),
            COLLEAGUE,
            "OperatorOwned",
            "metadata.finalizers:",
        ),
        (
            OLD,
            changed("status.phase", "Ended"),
            REQUESTER,
            "OperatorOwned",
            "status: written only by the operator",
        ),
        (OLD, ENDED, ITSELF, "SessionIdentity", "a session token changes no IncidentSession"),
        (
            OLD,
            changed("metadata.annotations", {**OLD["metadata"]["annotations"], "x.io/y": "1"}),
            ITSELF,
            "SessionIdentity",
            f"spec: '{ITSELF.username}' is the identity of a session",
        ),
    ],
    ids=[
        "a-colleague-cannot-end-someone-elses-session",
        "a-colleague-cannot-rewrite-the-purpose",
        "not-even-the-requester-rewrites-the-purpose",
        "ttl-cannot-grow",
        "requester-cannot-be-replaced",
        "scopes-cannot-be-added",
        "ended-cannot-go-back-to-false",
        "ended-cannot-be-removed",
        "ending-while-rewriting-kopfs-diff-base-is-refused",
        "kopf-progress-annotations-are-the-operators",
        "the-grant-label-is-the-operators",
        "the-finalizer-cannot-be-stripped",
        "the-finalizer-cannot-be-removed-with-the-whole-list",
        "status-is-the-operators",
        "a-session-token-cannot-end-even-its-own-session",
        "a-session-token-changes-nothing-of-a-session",
    ],
)
def test_update_refused(
    old: dict[str, Any],
    new: dict[str, Any],
    caller: base.UserInfo,
    reason: str,
    says: str,
) -> None:
    failure = session_changes.update_failure(old, new, caller, holds_end_verb=False)
    assert failure is not None
    assert failure.reason == reason
    assert says in failure.message
    assert "(allowed: " in failure.message


@pytest.mark.parametrize(
    ("new", "caller", "expected"),
    [
        (ENDED, REQUESTER, False),
        (ENDED, ITSELF, True),
        (ENDED, ONCALL, True),
        (changed("spec.purpose", "x"), ONCALL, False),
    ],
    ids=[
        "requester-needs-no-review",
        "the-session-itself-is-anyone-else",
        "anyone-else-ending-needs-the-end-verb",
        "no-review-when-nothing-ends",
    ],
)
def test_ending_needs_the_end_verb(
    new: dict[str, Any], caller: base.UserInfo, expected: bool
) -> None:
    assert session_changes.ending_needs_the_end_verb(OLD, new, caller) is expected


def read(
    verb: str = "get", resource: str = "remediationrequests", **fields: str
) -> session_changes.ReadAttempt:
    values = {"api_group": "agentauthority.io", "namespace": "agents", "name": "rr-1", **fields}
    return session_changes.ReadAttempt(verb=verb, resource=resource, **values)


@pytest.mark.parametrize(
    ("attempt", "request_session", "expected"),
    [
        (read(), "inc-1", True),
        (read(resource="incidentsessions", name="inc-1"), None, True),
        (read(), "inc-2", False),
        (read(), None, False),
        (read(verb="list", name=""), None, False),
        (read(verb="watch", name=""), None, False),
        (read(resource="incidentsessions", name="inc-2"), None, False),
        (read(namespace="other"), "inc-1", False),
        (read(api_group=""), "inc-1", False),
        (read(resource="secrets", api_group=""), "inc-1", False),
        (read(subresource="status"), "inc-1", False),
        (read(verb="delete"), "inc-1", False),
    ],
    ids=[
        "get-of-a-request-naming-the-session-is-its-own",
        "get-of-its-own-session-is-its-own",
        "get-of-another-sessions-request-is-a-deviation",
        "get-of-a-request-that-does-not-exist-is-a-deviation",
        "list-is-never-own",
        "watch-is-never-own",
        "get-of-another-session-is-a-deviation",
        "same-name-in-another-namespace-is-a-deviation",
        "another-api-group-is-a-deviation",
        "other-resources-are-deviations",
        "subresources-are-deviations",
        "writes-are-deviations",
    ],
)
def test_is_own_read(
    attempt: session_changes.ReadAttempt, request_session: str | None, expected: bool
) -> None:
    own = session_changes.is_own_read(
        attempt, session_namespace="agents", session_name="inc-1", request_session=request_session
    )
    assert own is expected
