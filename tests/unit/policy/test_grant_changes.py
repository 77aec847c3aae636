"""What a grant change or deletion does to a live session: keep, narrow or revoke, never widen."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import base, grant
from agent_authority.policy import grant_changes, rbac, sessions
from tests.unit.policy.test_sessions import (
    BOT,
    DEPLOYS,
    EVENTS,
    PODS,
    RESOLVED,
    SUBJECTS,
    context,
    grant_spec,
    session_spec,
    with_,
)

# reconcile --------------------------------------------------------------------------------------

WEB_PODS_ONLY = [{"name": "pods-read", "namespaces": ["web"]}]


@pytest.mark.parametrize(
    ("scopes", "new_grant", "resolved", "requester"),
    [
        (None, grant_spec(), RESOLVED, BOT),
        (
            None,
            grant_spec(read=[with_(PODS, namespaces=["web", "api", "prod"]), EVENTS, DEPLOYS]),
            RESOLVED,
            BOT,
        ),
        (
            None,
            grant_spec(read=[with_(DEPLOYS, verbs=["get", "list", "watch"]), PODS, EVENTS]),
            RESOLVED,
            BOT,
        ),
        (
            None,
            grant_spec(
                read=[PODS, EVENTS, DEPLOYS, with_(PODS, name="secrets", resources=["secrets"])]
            ),
            RESOLVED,
            BOT,
        ),
        (None, grant_spec(), {"events": ["web", "api", "shop"]}, BOT),
        (WEB_PODS_ONLY, grant_spec(read=[PODS]), {}, BOT),
        (WEB_PODS_ONLY, grant_spec(read=[with_(PODS, verbs=["get", "list", "watch"])]), {}, BOT),
    ],
    ids=[
        "unchanged-grant-keeps-session",
        "grant-widened-to-new-namespace-never-widens-session",
        "grant-adding-watch-never-widens-session",
        "grant-adding-a-secrets-scope-never-widens-session",
        "selector-selecting-more-namespaces-never-widens-session",
        "grant-change-outside-a-narrowed-session-keeps-it",
        "narrowed-session-stays-narrow-when-grant-widens-its-scope",
    ],
)
def test_reconcile_keeps(
    scopes: list[dict[str, Any]] | None,
    new_grant: grant.AgentGrantSpec,
    resolved: dict[str, list[str]],
    requester: base.UserInfo,
) -> None:
    spec = session_spec(scopes=scopes)
    current = sessions.admit(requester, spec, context()).rules

    verdict = grant_changes.reconcile(spec, current, new_grant, True, resolved, requester)

    assert verdict == grant_changes.Keep()


def test_reconcile_keeps_a_session_that_holds_no_read_rules() -> None:
    verdict = grant_changes.reconcile(session_spec(), [], grant_spec(read=[]), True, {}, BOT)

    assert verdict == grant_changes.Keep()


@pytest.mark.parametrize(
    ("scopes", "new_grant", "resolved", "removed"),
    [
        (
            None,
            grant_spec(read=[with_(PODS, namespaces=["web"]), EVENTS, DEPLOYS]),
            RESOLVED,
            ["get pods in api", "list pods in api", "get pods/log in api", "list pods/log in api"],
        ),
        (
            None,
            grant_spec(read=[PODS, EVENTS]),
            RESOLVED,
            ["get deployments.apps in web"],
        ),
        (
            None,
            grant_spec(read=[PODS, with_(EVENTS, verbs=["get", "list"]), DEPLOYS]),
            RESOLVED,
            ["watch events in api", "watch events in web"],
        ),
        (
            None,
            grant_spec(),
            {"events": ["web"]},
            ["get events in api", "list events in api", "watch events in api"],
        ),
        (
            None,
            grant_spec(
                read=[with_(PODS, namespaces=["web", "prod"], resources=["pods"]), EVENTS, DEPLOYS]
            ),
            RESOLVED,
            [
                "get pods in api",
                "list pods in api",
                "get pods/log in api",
                "list pods/log in api",
                "get pods/log in web",
                "list pods/log in web",
            ],
        ),
        (
            [{"name": "pods-read"}, {"name": "deploys"}],
            grant_spec(read=[with_(PODS, namespaces=["api"]), with_(DEPLOYS, name="deploys-2")]),
            {},
            [
                "get pods in web",
                "list pods in web",
                "get pods/log in web",
                "list pods/log in web",
                "get deployments.apps in web",
            ],
        ),
    ],
    ids=[
        "namespace-removed-from-scope-narrows",
        "requested-scope-removed-from-grant-drops-out",
        "watch-removed-from-scope-narrows",
        "selector-selecting-fewer-namespaces-narrows",
        "grant-widened-and-narrowed-at-once-only-narrows",
        "renamed-scope-drops-out-and-the-rest-stays",
    ],
)
def test_reconcile_narrows(
    scopes: list[dict[str, Any]] | None,
    new_grant: grant.AgentGrantSpec,
    resolved: dict[str, list[str]],
    removed: list[str],
) -> None:
    spec = session_spec(scopes=scopes)
    current = sessions.admit(BOT, spec, context()).rules

    verdict = grant_changes.reconcile(spec, current, new_grant, True, resolved, BOT)

    assert isinstance(verdict, grant_changes.Narrow)
    assert [str(p) for p in verdict.removed] == removed
    assert rbac.expand(verdict.rules) == rbac.expand(current) - set(verdict.removed)
    assert rbac.is_subset(verdict.rules, current) == []
    assert verdict.message.startswith("grant 'checkout' changed: the session lost ")


@pytest.mark.parametrize(
    ("new_grant", "valid", "requester", "reason", "says"),
    [
        (None, True, BOT, "GrantDeleted", "spec.grantRef.name: grant 'checkout' was deleted"),
        (grant_spec(), False, BOT, "GrantInvalid", "grant 'checkout' is no longer Valid"),
        (
            grant_spec(subjects=SUBJECTS[1:]),
            True,
            BOT,
            "NotASubject",
            "spec.requester: user 'system:serviceaccount:agents:sre-bot' is not a subject",
        ),
        (grant_spec(), True, None, "NotASubject", "spec.requester: no requester"),
        (
            grant_spec(incidents={"severities": ["SEV1"]}),
            True,
            BOT,
            "SeverityNotAllowed",
            "spec.incident.severity: SEV2 is not allowed by grant 'checkout' (allowed: SEV1)",
        ),
        (
            grant_spec(incidents={"severities": ["SEV2"], "classes": ["crashloop"]}),
            True,
            BOT,
            "ClassNotAllowed",
            "spec.incident.class: 'latency' is not allowed",
        ),
        (
            grant_spec(read=[with_(PODS, namespaces=["api"]), EVENTS]),
            True,
            BOT,
            "NoScopeLeft",
            "spec.scopes: grant 'checkout' no longer allows any of the session's 4 permission(s)",
        ),
        (
            grant_spec(read=[]),
            True,
            BOT,
            "NoScopeLeft",
            "no longer allows any",
        ),
    ],
    ids=[
        "grant-deleted-revokes",
        "grant-no-longer-valid-revokes",
        "requester-removed-from-subjects-revokes",
        "session-without-requester-revokes",
        "severity-no-longer-allowed-revokes",
        "class-no-longer-allowed-revokes",
        "nothing-left-of-the-requested-scopes-revokes",
        "grant-without-read-scopes-revokes",
    ],
)
def test_reconcile_revokes(
    new_grant: grant.AgentGrantSpec | None,
    valid: bool,
    requester: base.UserInfo | None,
    reason: str,
    says: str,
) -> None:
    spec = session_spec(scopes=WEB_PODS_ONLY)
    current = sessions.admit(BOT, spec, context()).rules

    verdict = grant_changes.reconcile(spec, current, new_grant, valid, RESOLVED, requester)

    assert isinstance(verdict, grant_changes.Revoke)
    assert verdict.reason == reason
    assert says in verdict.message
    assert "(allowed: " in verdict.message
