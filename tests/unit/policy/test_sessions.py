"""Session admission, expiry and deviation."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from agent_authority.models import base, grant, session
from agent_authority.policy import sessions

BOT = base.UserInfo(username="system:serviceaccount:agents:sre-bot")
ALICE = base.UserInfo(username="alice", groups=["dev"])
ONCALL = base.UserInfo(username="bob", groups=["system:authenticated", "sre-oncall"])
MALLORY = base.UserInfo(username="mallory", groups=["dev"])
ROOT_IDENTITY = "system:serviceaccount:agents:aa-root-1a2b3c4d"
"""The session ServiceAccount of the parent session 'root' (see :func:`parent`)."""
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:agents", "system:authenticated"]
ROOT_TOKEN = base.UserInfo(username=ROOT_IDENTITY, groups=SA_GROUPS)
OTHER_TOKEN = base.UserInfo(
    username="system:serviceaccount:agents:aa-other-9f8e7d6c", groups=SA_GROUPS
)
EVERY_SA = {"kind": "Group", "name": "system:serviceaccounts:agents"}

PODS = {"name": "pods-read", "namespaces": ["web", "api"], "resources": ["pods", "pods/log"]}
EVENTS = {
    "name": "events",
    "namespaceSelector": {"matchLabels": {"tier": "frontend"}},
    "resources": ["events"],
    "verbs": ["get", "list", "watch"],
}
DEPLOYS = {
    "name": "deploys",
    "namespaces": ["web"],
    "apiGroups": ["apps"],
    "resources": ["deployments"],
    "verbs": ["get"],
}
RESOLVED = {"events": ["web", "api"]}
SUBJECTS = [
    {"kind": "ServiceAccount", "namespace": "agents", "name": "sre-bot"},
    {"kind": "User", "name": "alice"},
    {"kind": "Group", "name": "sre-oncall"},
]


def grant_spec(**fields: Any) -> grant.AgentGrantSpec:
    """The grant 'checkout' as its YAML would read; keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "subjects": SUBJECTS,
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency", "crashloop"]},
        "read": [PODS, EVENTS, DEPLOYS],
        "session": {"maxTtlSeconds": 3600, "maxConcurrentSessions": 3, "maxSubAgentDepth": 2},
    }
    body.update(fields)
    return grant.AgentGrantSpec.model_validate(body)


def with_(scope: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**scope, **changes}


def session_spec(**fields: Any) -> session.IncidentSessionSpec:
    body: dict[str, Any] = {
        "grantRef": {"name": "checkout"},
        "incident": {"id": "INC-7", "severity": "SEV2", "class": "latency"},
        "purpose": "checkout p99 latency",
        "ttlSeconds": 1800,
    }
    body.update(fields)
    return session.IncidentSessionSpec.model_validate(body)


def context(**changes: Any) -> sessions.SessionContext:
    ctx = sessions.SessionContext(
        grant=grant_spec(),
        grant_name="checkout",
        grant_valid=True,
        active_sessions=0,
        resolved=RESOLVED,
    )
    return dataclasses.replace(ctx, **changes)


def rule(
    namespace: str, resources: list[str], verbs: list[str], groups: list[str] | None = None
) -> grant.PolicyRule:
    return grant.PolicyRule(
        namespace=namespace, api_groups=groups or [""], resources=resources, verbs=verbs
    )


def parent(**changes: Any) -> sessions.ParentInfo:
    """An Active root session 'root' under 'checkout' holding pods and events in web only,
    opened by the bot, with its own session identity."""
    info = sessions.ParentInfo(
        name="root",
        requester=BOT.username,
        identity=ROOT_IDENTITY,
        grant_name="checkout",
        phase=session.SessionPhase.ACTIVE,
        depth=0,
        effective_rules=[
            rule("web", ["events"], ["get", "list", "watch"]),
            rule("web", ["pods", "pods/log"], ["get", "list"]),
        ],
    )
    return dataclasses.replace(info, **changes)


ALL_RULES = [
    rule("api", ["events"], ["get", "list", "watch"]),
    rule("api", ["pods", "pods/log"], ["get", "list"]),
    rule("web", ["events"], ["get", "list", "watch"]),
    rule("web", ["pods", "pods/log"], ["get", "list"]),
    rule("web", ["deployments"], ["get"], groups=["apps"]),
]


# is_subject -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "subjects", "expected"),
    [
        (BOT, SUBJECTS, True),
        (base.UserInfo(username="system:serviceaccount:other:sre-bot"), SUBJECTS, False),
        (ALICE, SUBJECTS, True),
        (base.UserInfo(username="sre-oncall"), SUBJECTS, False),
        (ONCALL, SUBJECTS, True),
        (base.UserInfo(username="alice-2", groups=["alice"]), SUBJECTS, False),
        (MALLORY, SUBJECTS, False),
        (
            base.UserInfo(username="system:serviceaccount::sre-bot"),
            [{"kind": "ServiceAccount", "name": "sre-bot"}],
            False,
        ),
    ],
    ids=[
        "service-account-matches-its-full-username",
        "service-account-of-another-namespace-does-not-match",
        "user-matches-username",
        "group-name-as-username-does-not-match",
        "group-matches-membership",
        "user-name-as-group-does-not-match",
        "stranger-does-not-match",
        "service-account-subject-without-namespace-matches-no-one",
    ],
)
def test_is_subject(user: base.UserInfo, subjects: list[dict[str, Any]], expected: bool) -> None:
    models = [grant.Subject.model_validate(s) for s in subjects]

    assert sessions.is_subject(user, models) is expected


# admit: allowed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "spec", "ctx", "rules", "depth"),
    [
        (BOT, session_spec(), context(), ALL_RULES, 0),
        (
            ALICE,
            session_spec(scopes=[{"name": "pods-read", "namespaces": ["web"]}]),
            context(),
            [rule("web", ["pods", "pods/log"], ["get", "list"])],
            0,
        ),
        (
            ONCALL,
            session_spec(scopes=[{"name": "events"}]),
            context(resolved={"events": ["shop"]}),
            [rule("shop", ["events"], ["get", "list", "watch"])],
            0,
        ),
        (
            BOT,
            session_spec(scopes=[{"name": "deploys"}, {"name": "pods-read"}]),
            context(resolved={}),
            [ALL_RULES[1], ALL_RULES[3], ALL_RULES[4]],
            0,
        ),
        (
            BOT,
            session_spec(incident={"id": "INC-7", "severity": "SEV1", "class": "capacity"}),
            context(grant=grant_spec(incidents={"severities": ["SEV1"]})),
            ALL_RULES,
            0,
        ),
        (BOT, session_spec(ttlSeconds=3600), context(active_sessions=2), ALL_RULES, 0),
        (
            BOT,
            session_spec(
                parentSession="root", scopes=[{"name": "pods-read", "namespaces": ["web"]}]
            ),
            context(parent=parent()),
            [rule("web", ["pods", "pods/log"], ["get", "list"])],
            1,
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "events", "namespaces": ["web"]}]),
            context(parent=parent(depth=1)),
            [rule("web", ["events"], ["get", "list", "watch"])],
            2,
        ),
        (
            BOT,
            session_spec(parentSession="root"),
            context(parent=parent(effective_rules=ALL_RULES)),
            ALL_RULES,
            1,
        ),
    ],
    ids=[
        "service-account-subject-gets-every-scope-when-scopes-unset",
        "user-subject-narrows-a-scope-to-some-namespaces",
        "group-subject-gets-selector-resolved-namespaces",
        "selector-scope-selecting-nothing-drops-out-when-not-asked-for",
        "any-class-when-grant-lists-no-classes",
        "ttl-at-grant-max-and-one-session-below-limit-allowed",
        "sub-agent-narrowing-its-parent-gets-depth-one",
        "sub-agent-at-max-depth-allowed",
        "sub-agent-with-all-of-its-parents-rules-allowed",
    ],
)
def test_admit_allows(
    requester: base.UserInfo,
    spec: session.IncidentSessionSpec,
    ctx: sessions.SessionContext,
    rules: list[grant.PolicyRule],
    depth: int,
) -> None:
    admission = sessions.admit(requester, spec, ctx)

    assert (admission.allowed, admission.reason) == (True, sessions.Reason.ADMITTED)
    assert admission.rules == rules
    assert admission.depth == depth


# admit: refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "spec", "ctx", "reason", "says"),
    [
        (
            BOT,
            session_spec(),
            context(grant=None),
            "GrantNotFound",
            "spec.grantRef.name: grant 'checkout' does not exist",
        ),
        (
            BOT,
            session_spec(),
            context(grant_valid=False),
            "GrantInvalid",
            "spec.grantRef.name: grant 'checkout' is not Valid",
        ),
        (
            MALLORY,
            session_spec(),
            context(),
            "NotASubject",
            "spec.requester: user 'mallory' (groups: dev) is not a subject of grant 'checkout' "
            "(allowed: ServiceAccount agents/sre-bot, User alice, Group sre-oncall)",
        ),
        (
            base.UserInfo(username="system:serviceaccount:default:sre-bot"),
            session_spec(),
            context(),
            "NotASubject",
            "spec.requester: user 'system:serviceaccount:default:sre-bot' is not a subject",
        ),
        (
            BOT,
            session_spec(incident={"id": "INC-7", "severity": "SEV3", "class": "latency"}),
            context(),
            "SeverityNotAllowed",
            "spec.incident.severity: SEV3 is not allowed by grant 'checkout' (allowed: SEV1, SEV2)",
        ),
        (
            BOT,
            session_spec(incident={"id": "INC-7", "severity": "SEV1", "class": "capacity"}),
            context(),
            "ClassNotAllowed",
            "spec.incident.class: 'capacity' is not allowed by grant 'checkout' "
            "(allowed: latency, crashloop)",
        ),
        (
            BOT,
            session_spec(ttlSeconds=3601),
            context(),
            "TTLTooLong",
            "spec.ttlSeconds: 3601 exceeds spec.session.maxTtlSeconds of grant 'checkout' "
            "(allowed: at most 3600)",
        ),
        (
            BOT,
            session_spec(scopes=[{"name": "pods-read"}, {"name": "nodes"}]),
            context(),
            "UnknownScope",
            "spec.scopes[1].name: scope 'nodes' is not in grant 'checkout' "
            "(allowed: deploys, events, pods-read)",
        ),
        (
            BOT,
            session_spec(
                scopes=[{"name": "deploys"}, {"name": "pods-read", "namespaces": ["prod"]}]
            ),
            context(),
            "ScopeWiderThanGrant",
            "spec.scopes[1].namespaces: namespace 'prod' is not in grant scope 'pods-read' "
            "(allowed: api, web)",
        ),
        (
            BOT,
            session_spec(scopes=[{"name": "events", "namespaces": ["web", "prod", "shop"]}]),
            context(),
            "ScopeWiderThanGrant",
            "spec.scopes[0].namespaces: namespaces 'prod', 'shop' are not in grant scope 'events' "
            "(allowed: api, web)",
        ),
        (
            BOT,
            session_spec(scopes=[{"name": "events"}]),
            context(resolved={}),
            "ScopeEmpty",
            "spec.scopes[0].name: grant scope 'events' selects no namespace now",
        ),
        (
            BOT,
            session_spec(parentSession="root"),
            context(),
            "ParentNotFound",
            "spec.parentSession: session 'root' does not exist in this namespace",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(phase=session.SessionPhase.ENDED)),
            "ParentNotActive",
            "spec.parentSession: parent session 'root' is Ended, not Active",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(phase=None)),
            "ParentNotActive",
            "spec.parentSession: parent session 'root' has no phase yet, not Active",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(grant_name="payments")),
            "ParentGrantMismatch",
            "spec.grantRef.name: grant 'checkout' differs from grant 'payments' of parent "
            "session 'root' (allowed: 'payments')",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(depth=2)),
            "DepthExceeded",
            "spec.parentSession: a sub-agent of 'root' would be at depth 3, beyond "
            "spec.session.maxSubAgentDepth 2 of grant 'checkout' "
            "(allowed: a parent at depth 1 or less)",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(
                parent=parent(),
                grant=grant_spec(session={"maxSubAgentDepth": 0}),
            ),
            "DepthExceeded",
            "(allowed: no parentSession)",
        ),
        (
            BOT,
            session_spec(
                parentSession="root", scopes=[{"name": "pods-read", "namespaces": ["api"]}]
            ),
            context(parent=parent()),
            "ScopeWiderThanParent",
            "spec.scopes: a sub-agent can only narrow its parent, but 4 permission(s) are not held "
            "by parent session 'root': get pods in api, list pods in api, get pods/log in api, "
            "list pods/log in api (allowed: at most the parent's get/list/watch events in web, "
            "get/list pods,pods/log in web)",
        ),
        (
            BOT,
            session_spec(parentSession="root"),
            context(parent=parent()),
            "ScopeWiderThanParent",
            "spec.scopes (unset: every grant scope): a sub-agent can only narrow its parent, "
            "but 8 permission(s)",
        ),
        (
            BOT,
            session_spec(parentSession="root", scopes=[{"name": "events", "namespaces": ["web"]}]),
            context(parent=parent(effective_rules=[rule("web", ["events"], ["get", "list"])])),
            "ScopeWiderThanParent",
            "not held by parent session 'root': watch events in web",
        ),
        (
            BOT,
            session_spec(),
            context(active_sessions=3),
            "TooManySessions",
            "spec.grantRef.name: grant 'checkout' already has 3 active session(s), its "
            "spec.session.maxConcurrentSessions is 3 (allowed: a new session once another one "
            "ends or expires)",
        ),
    ],
    ids=[
        "grant-must-exist",
        "grant-must-be-valid",
        "requester-must-be-a-subject",
        "service-account-of-another-namespace-is-not-a-subject",
        "severity-must-be-allowed-by-grant",
        "class-must-be-allowed-when-grant-lists-classes",
        "ttl-above-grant-max-refused",
        "unknown-scope-refused",
        "namespace-outside-explicit-grant-scope-refused",
        "namespaces-outside-selector-resolution-refused",
        "asked-for-selector-scope-selecting-nothing-refused",
        "parent-must-exist",
        "parent-must-be-active",
        "parent-without-phase-is-not-active",
        "parent-must-share-the-grant",
        "depth-beyond-grant-max-refused",
        "no-sub-agents-when-max-depth-is-zero",
        "sub-agent-cannot-widen-to-another-namespace",
        "sub-agent-with-unset-scopes-asks-for-everything",
        "sub-agent-cannot-add-watch",
        "active-sessions-at-limit-refused",
    ],
)
def test_admit_refuses(
    requester: base.UserInfo,
    spec: session.IncidentSessionSpec,
    ctx: sessions.SessionContext,
    reason: str,
    says: str,
) -> None:
    admission = sessions.admit(requester, spec, ctx)

    assert (admission.allowed, admission.reason) == (False, reason)
    assert says in admission.message
    assert admission.message.startswith("spec.")
    assert "(allowed: " in admission.message
    assert admission.rules == []


@pytest.mark.parametrize(
    ("requester", "spec", "ctx", "reason"),
    [
        (MALLORY, session_spec(ttlSeconds=7200, scopes=[{"name": "x"}]), context(), "NotASubject"),
        (
            BOT,
            session_spec(
                incident={"id": "INC-7", "severity": "SEV4", "class": "latency"},
                scopes=[{"name": "x"}],
            ),
            context(active_sessions=3),
            "SeverityNotAllowed",
        ),
        (
            BOT,
            session_spec(scopes=[{"name": "x"}], parentSession="root"),
            context(active_sessions=3),
            "UnknownScope",
        ),
        (
            BOT,
            session_spec(parentSession="root"),
            context(active_sessions=3, parent=parent(phase=session.SessionPhase.REVOKED)),
            "ParentNotActive",
        ),
    ],
    ids=[
        "identity-before-what-is-asked",
        "incident-before-capacity",
        "scopes-before-parent-and-capacity",
        "permanent-problems-before-the-transient-session-limit",
    ],
)
def test_admit_reports_the_first_failure(
    requester: base.UserInfo,
    spec: session.IncidentSessionSpec,
    ctx: sessions.SessionContext,
    reason: str,
) -> None:
    assert sessions.admit(requester, spec, ctx).reason == reason


def test_admit_rejects_a_context_about_another_parent() -> None:
    with pytest.raises(ValueError, match=r"ctx\.parent describes session 'root'"):
        sessions.admit(BOT, session_spec(parentSession="other"), context(parent=parent()))


@pytest.mark.parametrize(
    ("parent_expiry", "expected"),
    [
        (None, datetime.datetime(2025, 1, 1, 1, 0, tzinfo=datetime.UTC)),
        (
            datetime.datetime(2025, 1, 1, 0, 20, tzinfo=datetime.UTC),
            datetime.datetime(2025, 1, 1, 0, 20, tzinfo=datetime.UTC),
        ),
        (
            datetime.datetime(2025, 1, 1, 2, 0, tzinfo=datetime.UTC),
            datetime.datetime(2025, 1, 1, 1, 0, tzinfo=datetime.UTC),
        ),
    ],
    ids=[
        "root-session-expires-after-its-ttl",
        "sub-agent-never-outlives-its-parent",
        "sub-agent-ttl-shorter-than-parent-applies",
    ],
)
def test_session_expiry(
    parent_expiry: datetime.datetime | None, expected: datetime.datetime
) -> None:
    now = datetime.datetime(2025, 1, 1, 0, 0, tzinfo=datetime.UTC)

    assert sessions.session_expiry(now, 3600, parent(expires_at=parent_expiry)) == expected


# deviation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("denied", "max_denied", "exceeded"),
    [(0, 0, False), (1, 0, True), (2, 3, False), (3, 3, False), (4, 3, True)],
    ids=[
        "no-denials-is-fine",
        "default-policy-first-denial-revokes",
        "below-the-allowance-is-fine",
        "at-the-allowance-is-fine",
        "one-beyond-the-allowance-revokes",
    ],
)
def test_deviation_exceeded(denied: int, max_denied: int, exceeded: bool) -> None:
    assert sessions.deviation_exceeded(denied, max_denied) is exceeded


@pytest.mark.parametrize(
    ("requested", "grant_max", "expected"),
    [
        pytest.param(None, 900, 900, id="unset-ttl-defaults-to-grant-max"),
        pytest.param(600, 900, 600, id="requested-ttl-is-kept"),
    ],
)
def test_effective_ttl(requested: int | None, grant_max: int, expected: int) -> None:
    spec = session.IncidentSessionSpec.model_validate(
        {
            "grantRef": {"name": "g"},
            "incident": {"id": "I", "severity": "SEV1", "class": "latency"},
            "purpose": "p",
            "ttlSeconds": requested,
        }
    )
    limits = grant.AgentGrantSpec.model_validate(
        {
            "subjects": [{"kind": "User", "name": "u"}],
            "incidents": {"severities": ["SEV1"]},
            "session": {"maxTtlSeconds": grant_max},
        }
    )
    assert sessions.effective_ttl(spec, limits) == expected


# session identities and whose parent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        (ROOT_IDENTITY, True),
        ("system:serviceaccount:agents:sre-bot", False),
        ("system:serviceaccount:agents:aardvark", False),
        ("aa-root-1a2b3c4d", False),
        ("system:serviceaccount:aa-ns:bot", False),
    ],
    ids=[
        "minted-session-account-is-a-session-identity",
        "agent-base-account-is-not",
        "account-merely-starting-with-aa-but-no-dash-is-not",
        "user-named-like-a-session-account-is-not",
        "namespace-named-aa-does-not-make-one",
    ],
)
def test_is_session_identity(username: str, expected: bool) -> None:
    assert sessions.is_session_identity(base.UserInfo(username=username)) is expected


def test_the_base_identity_that_opened_the_parent_opens_a_narrower_sub_agent() -> None:
    admission = sessions.admit(
        BOT,
        session_spec(parentSession="root", scopes=[{"name": "pods-read", "namespaces": ["web"]}]),
        context(parent=parent()),
    )
    assert (admission.allowed, admission.depth) == (True, 1)
    assert admission.rules == [rule("web", ["pods", "pods/log"], ["get", "list"])]


SESSION_TOKEN_REFUSED = "SessionIdentity"
SUB_AGENT = session_spec(
    parentSession="root", scopes=[{"name": "pods-read", "namespaces": ["web"]}]
)


@pytest.mark.parametrize(
    ("requester", "spec", "ctx", "reason", "says"),
    [
        (
            ROOT_TOKEN,
            session_spec(),
            context(grant=grant_spec(subjects=[*SUBJECTS, EVERY_SA])),
            SESSION_TOKEN_REFUSED,
            f"spec.requester: '{ROOT_IDENTITY}' is the identity of a session",
        ),
        (
            ROOT_TOKEN,
            SUB_AGENT,
            context(parent=parent()),
            SESSION_TOKEN_REFUSED,
            f"spec.requester: '{ROOT_IDENTITY}' is the identity of a session",
        ),
        (
            ROOT_TOKEN,
            SUB_AGENT,
            context(parent=parent(), grant=grant_spec(subjects=[*SUBJECTS, EVERY_SA])),
            SESSION_TOKEN_REFUSED,
            "opens no sessions, neither root sessions nor sub-agents",
        ),
        (
            OTHER_TOKEN,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(), grant=grant_spec(subjects=[*SUBJECTS, EVERY_SA])),
            SESSION_TOKEN_REFUSED,
            f"spec.requester: '{OTHER_TOKEN.username}' is the identity of a session",
        ),
        (
            OTHER_TOKEN,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent()),
            SESSION_TOKEN_REFUSED,
            f"spec.requester: '{OTHER_TOKEN.username}' is the identity of a session",
        ),
        (
            ALICE,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent()),
            "ParentNotOwned",
            f"spec.parentSession: session 'root' was opened by '{BOT.username}', not by 'alice'",
        ),
        (
            ALICE,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(requester=None, identity=None)),
            "ParentNotOwned",
            "was opened by 'unknown'",
        ),
        (
            ALICE,
            session_spec(parentSession="root", scopes=[{"name": "pods-read"}]),
            context(parent=parent(requester=None, identity=ALICE.username)),
            "ParentNotOwned",
            "was opened by 'unknown'",
        ),
    ],
    ids=[
        "session-identity-never-opens-a-root-session-even-as-a-group-subject",
        "session-identity-cannot-open-a-sub-agent-of-its-own-session",
        "session-identity-cannot-open-a-sub-agent-even-as-a-group-subject",
        "session-identity-cannot-open-a-sub-agent-of-another-session",
        "session-identity-of-another-session-is-refused-as-a-session-identity",
        "another-subject-cannot-name-someone-elses-session-as-parent",
        "a-parent-of-unknown-owner-is-nobodys",
        "being-named-the-parents-identity-does-not-make-it-yours",
    ],
)
def test_admit_refuses_borrowed_identities_and_parents(
    requester: base.UserInfo,
    spec: session.IncidentSessionSpec,
    ctx: sessions.SessionContext,
    reason: str,
    says: str,
) -> None:
    admission = sessions.admit(requester, spec, ctx)

    assert (admission.allowed, admission.reason) == (False, reason)
    assert says in admission.message
    assert "(allowed: " in admission.message


@pytest.mark.parametrize(
    ("access_mode", "status_first"),
    [
        pytest.param("gateway", True, id="gateway-mode-writes-the-terminal-phase-first"),
        pytest.param("direct", False, id="direct-mode-deletes-rbac-first"),
        pytest.param(None, False, id="unknown-mode-deletes-rbac-first"),
        pytest.param("Gateway", False, id="a-mode-spelled-otherwise-is-not-gateway"),
    ],
)
def test_status_before_credentials(access_mode: str | None, status_first: bool) -> None:
    assert sessions.status_before_credentials(access_mode) is status_first
