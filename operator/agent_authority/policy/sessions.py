"""Incident sessions: who may open one, with which rules, and when deviation revokes one.

- :func:`admit` decides whether a new IncidentSession may open. It reports the first failure, in
  this order: the grant (exists, valid), the requester (never a session identity; a subject of
  the grant), the incident
  (for an alert-bound grant the firing alert it names, see :mod:`incidents`; then severity,
  class), the TTL, the scopes (known, inside the grant), the parent session (exists,
  active, opened by the requester, same grant, depth, no wider
  than the parent), and last the only transient refusal, the number of active sessions; so a
  refusal names what must change in the spec before "try later".
- :func:`is_session_identity` says whether a user is one of the ServiceAccounts the operator mints
  for sessions (``aa-*``); those open no sessions at all, root or sub-agent (a session identity
  creates RemediationRequests and nothing else; the admission policy
  ``agentauthority.io-session-identities-only-request`` says the same). A sub-agent is opened by
  the agent's base identity, naming the parent it opened in ``spec.parentSession``.
- :func:`deviation_exceeded` decides when denied requests revoke a session.

What may change in a session after it opened, and which denied reads are its own, is decided in
:mod:`session_changes`, with the reasons of :class:`Reason`.

What a grant change or deletion does to a live session is decided in :mod:`grant_changes`, which
reuses the subject and incident checks of admission (:func:`subject_failure`,
:func:`incident_failure`) and the reasons of :class:`Reason`. Every refusal carries a machine
reason and a message that names the field, says what was refused and why, and what would be
allowed, worded with :mod:`wording`.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping, Sequence

from agent_authority.models import base, grant, session
from agent_authority.policy import incidents, rbac, suggestions, wording

__all__ = [
    "Admission",
    "Failure",
    "ParentInfo",
    "Reason",
    "SessionContext",
    "admit",
    "alert_failure",
    "deviation_exceeded",
    "effective_ttl",
    "incident_failure",
    "is_session_identity",
    "is_subject",
    "narrowed",
    "session_expiry",
    "subject_failure",
]


class Reason(enum.StrEnum):
    """Machine reasons of admission and revocation decisions (status, Events, metrics)."""

    ADMITTED = "Admitted"
    GRANT_NOT_FOUND = "GrantNotFound"
    GRANT_INVALID = "GrantInvalid"
    GRANT_DELETED = "GrantDeleted"
    NOT_A_SUBJECT = "NotASubject"
    SEVERITY_NOT_ALLOWED = "SeverityNotAllowed"
    CLASS_NOT_ALLOWED = "ClassNotAllowed"
    TTL_TOO_LONG = "TTLTooLong"
    UNKNOWN_SCOPE = "UnknownScope"
    SCOPE_EMPTY = "ScopeEmpty"
    SCOPE_WIDER_THAN_GRANT = "ScopeWiderThanGrant"
    PARENT_NOT_FOUND = "ParentNotFound"
    PARENT_NOT_ACTIVE = "ParentNotActive"
    PARENT_GRANT_MISMATCH = "ParentGrantMismatch"
    DEPTH_EXCEEDED = "DepthExceeded"
    SCOPE_WIDER_THAN_PARENT = "ScopeWiderThanParent"
    SESSION_IDENTITY = "SessionIdentity"
    PARENT_NOT_OWNED = "ParentNotOwned"
    TOO_MANY_SESSIONS = "TooManySessions"
    NO_SCOPE_LEFT = "NoScopeLeft"
    # Alert-bound grants (spec.incidents.alertmanager), decided in policy.incidents:
    ALERTMANAGER_UNREACHABLE = incidents.Reason.ALERTMANAGER_UNREACHABLE.value
    INCIDENT_NOT_FIRING = incidents.Reason.INCIDENT_NOT_FIRING.value
    ALERT_NOT_MATCHED = incidents.Reason.ALERT_NOT_MATCHED.value
    ALERT_LABEL_INVALID = incidents.Reason.ALERT_LABEL_INVALID.value
    INCIDENT_DISAGREES_WITH_ALERT = incidents.Reason.INCIDENT_DISAGREES_WITH_ALERT.value
    SPEC_IMMUTABLE = "SpecImmutable"
    NOT_ALLOWED_TO_END = "NotAllowedToEnd"
    OPERATOR_OWNED = "OperatorOwned"


@dataclasses.dataclass(frozen=True)
class ParentInfo:
    """What admission needs to know about the parent session of a sub-agent."""

    name: str
    grant_name: str
    phase: session.SessionPhase | None
    depth: int
    """0 for a root session."""
    effective_rules: Sequence[grant.PolicyRule]
    expires_at: datetime.datetime | None = None
    requester: str | None = None
    """Username of whoever opened the parent (stamped at its admission)."""
    identity: str | None = None
    """Username of the parent's own session ServiceAccount, once it has one."""


@dataclasses.dataclass(frozen=True)
class SessionContext:
    """What the caller read from the cluster for one admission decision."""

    grant: grant.AgentGrantSpec | None
    """The referenced grant's spec, or ``None`` when it does not exist."""
    grant_name: str
    grant_valid: bool
    """Whether the grant's ``Valid`` condition is True."""
    active_sessions: int
    """Sessions under this grant in a non-terminal phase, not counting the new one."""
    resolved: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    """Scope name → namespaces its ``namespaceSelector`` selects now."""
    parent: ParentInfo | None = None
    """The parent session, when ``spec.parentSession`` is set and that session exists."""
    alert: incidents.Lookup | None = None
    """What Alertmanager said about ``spec.incident.id`` (read only for alert-bound grants)."""


@dataclasses.dataclass(frozen=True)
class Admission:
    """The admission decision for a new session."""

    allowed: bool
    reason: Reason
    message: str
    rules: list[grant.PolicyRule] = dataclasses.field(default_factory=list)
    """The session's effective rules (when allowed)."""
    depth: int = 0
    """The session's sub-agent depth, 0 for a root session (when allowed)."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why a session may not open, or may not stay open: a machine reason and a message."""

    reason: Reason
    message: str


# Identity ---------------------------------------------------------------------------------------

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SESSION_ACCOUNT_PREFIX = "aa-"
"""Every session ServiceAccount the operator mints is named ``aa-<session>-<hash>``."""


def is_session_identity(user: base.UserInfo) -> bool:
    """Whether the user is a session ServiceAccount (``system:serviceaccount:<ns>:aa-*``)."""
    if not user.username.startswith(SERVICE_ACCOUNT_PREFIX):
        return False
    _, _, name = user.username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    return name.startswith(SESSION_ACCOUNT_PREFIX)


def is_subject(user: base.UserInfo, subjects: Sequence[grant.Subject]) -> bool:
    """Whether the user is one of the subjects, matched as RBAC matches subjects."""
    return any(_matches(user, subject) for subject in subjects)


def _matches(user: base.UserInfo, subject: grant.Subject) -> bool:
    if subject.kind == grant.SubjectKind.SERVICE_ACCOUNT:
        if not subject.namespace:
            return False
        return user.username == f"system:serviceaccount:{subject.namespace}:{subject.name}"
    if subject.kind == grant.SubjectKind.USER:
        return user.username == subject.name
    return subject.name in user.groups


def _describe_subject(subject: grant.Subject) -> str:
    if subject.kind == grant.SubjectKind.SERVICE_ACCOUNT:
        return f"ServiceAccount {subject.namespace}/{subject.name}"
    return f"{subject.kind} {subject.name}"


# Checks shared by admission and grant changes ---------------------------------------------------


def subject_failure(
    requester: base.UserInfo | None, spec: grant.AgentGrantSpec, grant_name: str
) -> Failure | None:
    if requester is not None and is_subject(requester, spec.subjects):
        return None
    who = "no requester" if requester is None else f"user '{requester.username}'"
    if requester is not None and requester.groups:
        who += f" (groups: {wording.listing(requester.groups)})"
    subjects = wording.listing([_describe_subject(s) for s in spec.subjects])
    return Failure(
        Reason.NOT_A_SUBJECT,
        f"spec.requester: {who} is not a subject of grant '{grant_name}' (allowed: {subjects})",
    )


def incident_failure(
    incident: session.Incident, spec: grant.AgentGrantSpec, grant_name: str
) -> Failure | None:
    if incident.severity not in spec.incidents.severities:
        return Failure(
            Reason.SEVERITY_NOT_ALLOWED,
            f"spec.incident.severity: {incident.severity} is not allowed by grant "
            f"'{grant_name}' (allowed: {wording.listing(spec.incidents.severities)})",
        )
    classes = spec.incidents.classes
    if classes and incident.class_ not in classes:
        return Failure(
            Reason.CLASS_NOT_ALLOWED,
            f"spec.incident.class: '{incident.class_}' is not allowed by grant '{grant_name}' "
            f"(allowed: {wording.listing(classes)})",
        )
    return None


def alert_failure(
    incident: session.Incident, spec: grant.AgentGrantSpec, lookup: incidents.Lookup | None
) -> Failure | None:
    """For an alert-bound grant: the incident must be the firing alert it names, as the alert
    says (see :mod:`incidents`); no lookup for such a grant is a refusal (fail closed)."""
    binding = spec.incidents.alertmanager
    if binding is None:
        return None
    found = incidents.refusal(
        binding,
        lookup or incidents.Lookup(binding.url, error="it was not asked"),
        fingerprint=incident.id,
        severity=incident.severity.value,
        class_=incident.class_,
    )
    return None if found is None else Failure(Reason(found.reason.value), found.message)


def narrowed(scope: grant.ReadScope, namespaces: Sequence[str]) -> grant.ReadScope:
    """The grant scope restricted to some namespaces, listed explicitly."""
    return scope.model_copy(update={"namespaces": list(namespaces), "namespace_selector": None})


# Admission --------------------------------------------------------------------------------------


def admit(
    requester: base.UserInfo, spec: session.IncidentSessionSpec, ctx: SessionContext
) -> Admission:
    """Whether a new session may open, and if so with which rules at which depth.

    ``requester`` is the authenticated user (as the admission webhook stamps it). Raises
    ``ValueError`` when ``ctx.parent`` does not describe ``spec.parentSession`` (a caller bug).
    """
    if ctx.parent is not None and ctx.parent.name != spec.parent_session:
        raise ValueError(
            f"ctx.parent describes session {ctx.parent.name!r}, "
            f"not spec.parentSession {spec.parent_session!r}"
        )
    outcome = _admission_failure_or_rules(requester, spec, ctx)
    if isinstance(outcome, Failure):
        return Admission(allowed=False, reason=outcome.reason, message=outcome.message)
    depth = 0 if ctx.parent is None else ctx.parent.depth + 1
    return Admission(
        allowed=True,
        reason=Reason.ADMITTED,
        message=(
            f"session admitted under grant '{ctx.grant_name}' at depth {depth} "
            f"with {len(outcome)} rule(s)"
        ),
        rules=outcome,
        depth=depth,
    )


def _admission_failure_or_rules(
    requester: base.UserInfo, spec: session.IncidentSessionSpec, ctx: SessionContext
) -> Failure | list[grant.PolicyRule]:
    if ctx.grant is None:
        return Failure(
            Reason.GRANT_NOT_FOUND,
            f"spec.grantRef.name: grant '{ctx.grant_name}' does not exist "
            "(allowed: the name of an existing AgentGrant)",
        )
    if not ctx.grant_valid:
        return Failure(
            Reason.GRANT_INVALID,
            f"spec.grantRef.name: grant '{ctx.grant_name}' is not Valid, so it opens no sessions "
            "(allowed: a grant whose Valid condition is True; see its status for the problems)",
        )
    failure = (
        _requester_failure(requester, spec, ctx)
        or alert_failure(spec.incident, ctx.grant, ctx.alert)
        or incident_failure(spec.incident, ctx.grant, ctx.grant_name)
        or _ttl_failure(effective_ttl(spec, ctx.grant), ctx.grant, ctx.grant_name)
    )
    if failure:
        return failure
    scopes = _requested_scopes(spec.scopes, ctx.grant, ctx.grant_name, ctx.resolved)
    if isinstance(scopes, Failure):
        return scopes
    rules = rbac.compile_rules(scopes, {})
    failure = _parent_failure(requester, spec, ctx, ctx.grant, rules) or _capacity_failure(
        ctx.grant, ctx
    )
    return failure or rules


def _requester_failure(
    requester: base.UserInfo, spec: session.IncidentSessionSpec, ctx: SessionContext
) -> Failure | None:
    """A session identity opens no session, root or sub-agent, whatever groups it is in: it
    creates RemediationRequests and nothing else."""
    assert ctx.grant is not None
    if is_session_identity(requester):
        return Failure(
            Reason.SESSION_IDENTITY,
            f"spec.requester: '{requester.username}' is the identity of a session, and a "
            "session token opens no sessions, neither root sessions nor sub-agents, whatever "
            "groups it is in (allowed: open it with the agent's base identity; for a sub-agent, "
            "name a session that identity opened in spec.parentSession)",
        )
    return subject_failure(requester, ctx.grant, ctx.grant_name)


def _ttl_failure(ttl: int, spec: grant.AgentGrantSpec, grant_name: str) -> Failure | None:
    limit = spec.session.max_ttl_seconds
    if ttl <= limit:
        return None
    return Failure(
        Reason.TTL_TOO_LONG,
        f"spec.ttlSeconds: {ttl} exceeds spec.session.maxTtlSeconds of grant '{grant_name}' "
        f"(allowed: at most {limit})",
    )


def _requested_scopes(
    requested: Sequence[session.SessionScope] | None,
    spec: grant.AgentGrantSpec,
    grant_name: str,
    resolved: Mapping[str, Sequence[str]],
) -> list[grant.ReadScope] | Failure:
    """The grant scopes a new session asks for, narrowed to the namespaces it asks for.

    Unset ``requested`` means every grant scope in all its namespaces (a selector scope that
    selects nothing adds nothing); a scope asked for by name must exist and select something.
    """
    if requested is None:
        return [
            narrowed(scope, namespaces)
            for scope in spec.read
            if (namespaces := rbac.scope_namespaces(scope, resolved))
        ]
    by_name = {scope.name: scope for scope in spec.read}
    scopes = []
    for i, wanted in enumerate(requested):
        scope = by_name.get(wanted.name)
        if scope is None:
            return Failure(
                Reason.UNKNOWN_SCOPE,
                f"spec.scopes[{i}].name: scope '{wanted.name}' is not in grant '{grant_name}'"
                + suggestions.did_you_mean(wanted.name, by_name)
                + f" (allowed: {wording.listing(sorted(by_name))})",
            )
        allowed = rbac.scope_namespaces(scope, resolved)
        if not allowed:
            return Failure(
                Reason.SCOPE_EMPTY,
                f"spec.scopes[{i}].name: grant scope '{scope.name}' selects no namespace now "
                "(its namespaceSelector matches none), so it would grant nothing "
                "(allowed: a scope that selects at least one namespace)",
            )
        namespaces = sorted(set(wanted.namespaces)) if wanted.namespaces else allowed
        outside = [ns for ns in namespaces if ns not in allowed]
        if outside:
            return Failure(
                Reason.SCOPE_WIDER_THAN_GRANT,
                f"spec.scopes[{i}].namespaces: {wording.plural('namespace', outside)} "
                f"{wording.quoted(outside)} {'is' if len(outside) == 1 else 'are'} not in "
                f"grant scope '{scope.name}' (allowed: {wording.listing(allowed)})",
            )
        scopes.append(narrowed(scope, namespaces))
    return scopes


def _parent_failure(
    requester: base.UserInfo,
    spec: session.IncidentSessionSpec,
    ctx: SessionContext,
    grant_spec: grant.AgentGrantSpec,
    rules: Sequence[grant.PolicyRule],
) -> Failure | None:
    if spec.parent_session is None:
        return None
    parent = ctx.parent
    if parent is None:
        return Failure(
            Reason.PARENT_NOT_FOUND,
            f"spec.parentSession: session '{spec.parent_session}' does not exist in this "
            "namespace (allowed: an Active session of the same namespace, or unset for a root "
            "session)",
        )
    if parent.phase != session.SessionPhase.ACTIVE:
        state = f"is {parent.phase}" if parent.phase else "has no phase yet"
        return Failure(
            Reason.PARENT_NOT_ACTIVE,
            f"spec.parentSession: parent session '{parent.name}' {state}, not Active "
            "(allowed: an Active parent session; a sub-agent ends with its parent)",
        )
    if parent.requester is None or requester.username != parent.requester:
        return Failure(
            Reason.PARENT_NOT_OWNED,
            f"spec.parentSession: session '{parent.name}' was opened by "
            f"'{parent.requester or 'unknown'}', not by '{requester.username}' (allowed: a "
            "session you opened yourself)",
        )
    if parent.grant_name != ctx.grant_name:
        return Failure(
            Reason.PARENT_GRANT_MISMATCH,
            f"spec.grantRef.name: grant '{ctx.grant_name}' differs from grant "
            f"'{parent.grant_name}' of parent session '{parent.name}' "
            f"(allowed: '{parent.grant_name}')",
        )
    limit = grant_spec.session.max_sub_agent_depth
    if parent.depth + 1 > limit:
        allowed = f"a parent at depth {limit - 1} or less" if limit else "no parentSession"
        return Failure(
            Reason.DEPTH_EXCEEDED,
            f"spec.parentSession: a sub-agent of '{parent.name}' would be at depth "
            f"{parent.depth + 1}, beyond spec.session.maxSubAgentDepth {limit} of grant "
            f"'{ctx.grant_name}' (allowed: {allowed})",
        )
    extra = rbac.is_subset(rules, parent.effective_rules)
    if extra:
        unset = " (unset: every grant scope)" if spec.scopes is None else ""
        held = [
            wording.describe_rule(rule)
            for rule in rbac.compact(rbac.expand(parent.effective_rules))
        ]
        return Failure(
            Reason.SCOPE_WIDER_THAN_PARENT,
            f"spec.scopes{unset}: a sub-agent can only narrow its parent, but "
            f"{len(extra)} permission(s) are not held by parent session '{parent.name}': "
            f"{wording.listing(extra)} (allowed: at most the parent's {wording.listing(held)})",
        )
    return None


def _capacity_failure(spec: grant.AgentGrantSpec, ctx: SessionContext) -> Failure | None:
    limit = spec.session.max_concurrent_sessions
    if ctx.active_sessions < limit:
        return None
    return Failure(
        Reason.TOO_MANY_SESSIONS,
        f"spec.grantRef.name: grant '{ctx.grant_name}' already has {ctx.active_sessions} "
        f"active session(s), its spec.session.maxConcurrentSessions is {limit} "
        "(allowed: a new session once another one ends or expires)",
    )


def effective_ttl(spec: session.IncidentSessionSpec, grant_spec: grant.AgentGrantSpec) -> int:
    """The session's TTL: as requested, or the grant's maximum when the spec leaves it out."""
    return spec.ttl_seconds or grant_spec.session.max_ttl_seconds


def session_expiry(
    now: datetime.datetime, ttl_seconds: int, parent: ParentInfo | None
) -> datetime.datetime:
    """When a session opened at ``now`` expires: after its TTL, and never after its parent."""
    expires_at = now + datetime.timedelta(seconds=ttl_seconds)
    if parent is not None and parent.expires_at is not None:
        return min(expires_at, parent.expires_at)
    return expires_at


# Deviation --------------------------------------------------------------------------------------


def deviation_exceeded(denied_requests: int, max_denied: int) -> bool:
    """Whether a session made more denied requests than its grant allows (0: the first revokes)."""
    return denied_requests > max_denied


# Revocation -------------------------------------------------------------------------------------

CREDENTIALS_REVOKED = "CredentialsRevoked"
"""Condition of a terminal session: whether its RoleBindings, Secret and ServiceAccount are gone."""


def status_before_credentials(access_mode: str | None) -> bool:
    """Whether revoking a session writes its terminal phase before deleting its RBAC objects.

    Gateway mode: the token is only good for the gateway's audience and every gateway replica
    refuses the session as soon as its watch shows a terminal phase, so the status write *is* the
    revocation; the RBAC objects follow as defence in depth. Direct mode (and a session whose mode
    is unknown, failing closed): the apiserver checks the token and RBAC itself, so the RBAC
    objects are the revocation and go first, as they always have.
    """
    return access_mode == grant.AccessMode.GATEWAY.value
