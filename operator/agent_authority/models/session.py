"""``IncidentSession`` (namespaced): one agent or sub-agent working one incident."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, ClassVar

import pydantic

from agent_authority.models import base, cel, grant

MIN_TTL_SECONDS = 10
MAX_TTL_SECONDS = 86400


def _within_hard_cap(seconds: int) -> int:
    """The cap of every grant's maxTtlSeconds, also a CEL rule (worded to name the grant's)."""
    if seconds > MAX_TTL_SECONDS:
        raise ValueError(
            f"ttlSeconds {seconds} is over {MAX_TTL_SECONDS}: at most the grant's "
            "spec.session.maxTtlSeconds"
        )
    return seconds


class Incident(base.Model):
    """The incident the session works on (checked against the grant's incidents)."""

    id: Annotated[str, pydantic.Field(min_length=1, max_length=128)]
    """The incident's id in your incident tool, e.g. INC-4711."""
    title: Annotated[str, pydantic.Field(max_length=256)] | None = None
    """A short title for people."""
    severity: grant.Severity
    """SEV1 (worst) to SEV4; must be one of the grant's incidents.severities."""
    class_: grant.IncidentClass = pydantic.Field(alias="class")
    """What kind of incident, e.g. latency; must be one of the grant's classes, if it lists any."""
    url: Annotated[str, pydantic.Field(max_length=2048, pattern=r"^https?://")] | None = None
    """A link to the incident (http or https)."""


class SessionScope(base.Model):
    """A requested read scope: a grant scope by name, optionally narrowed to some namespaces."""

    name: Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]
    """The name of one of the grant's read scopes."""
    namespaces: list[base.NamespaceName] | None = pydantic.Field(
        default=None, min_length=1, max_length=256
    )
    """Only these of the scope's namespaces; unset means all of them."""


class IncidentSessionSpec(base.Model):
    """One agent's work on one incident: under which grant, why, with which scopes, how long."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "has(self.parentSession) == has(oldSelf.parentSession)",
                "parentSession is immutable",
                field_path=".parentSession",
            ),
            cel.rule(
                "has(self.scopes) == has(oldSelf.scopes)",
                "scopes is immutable",
                field_path=".scopes",
            ),
            cel.rule(
                "has(self.ttlSeconds) == has(oldSelf.ttlSeconds)",
                "ttlSeconds is immutable",
                field_path=".ttlSeconds",
            ),
            cel.rule(
                "has(self.requester) == has(oldSelf.requester)",
                "requester is immutable",
                field_path=".requester",
            ),
            cel.rule(
                "!has(oldSelf.ended) || !oldSelf.ended || (has(self.ended) && self.ended)",
                "ended cannot be set back to false once a session has ended",
                field_path=".ended",
            ),
        )
    )

    grant_ref: base.LocalObjectReference = pydantic.Field(
        json_schema_extra=cel.immutable("grantRef")
    )
    """The AgentGrant (cluster-scoped) the session works under; the caller must be one of its
    subjects."""
    incident: Incident = pydantic.Field(json_schema_extra=cel.immutable("incident"))
    """The incident the session is for."""
    purpose: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    """Why the session is opened, for the audit trail and approvers."""
    scopes: list[SessionScope] | None = pydantic.Field(
        default=None, max_length=64, json_schema_extra=cel.immutable("scopes")
    )
    """Requested read scopes, a subset of the grant's (and of the parent's); unset means all."""
    ttl_seconds: (
        Annotated[
            int, pydantic.Field(ge=MIN_TTL_SECONDS), pydantic.AfterValidator(_within_hard_cap)
        ]
        | None
    ) = pydantic.Field(
        default=None,
        json_schema_extra=cel.rules(
            cel.rule(
                f"self <= {MAX_TTL_SECONDS}",
                f"must be at most the grant's spec.session.maxTtlSeconds, which is at most "
                f"{MAX_TTL_SECONDS} (24 h); leave ttlSeconds out to get the grant's maximum",
            ),
            *cel.immutable("ttlSeconds")[cel.KEY],
        ),
    )
    """Seconds the session lives; at most the grant's spec.session.maxTtlSeconds, which is also
    the default (filled in at admission). Admission names the grant's maximum when it is
    exceeded."""
    parent_session: base.ObjectName | None = pydantic.Field(
        default=None, json_schema_extra=cel.immutable("parentSession")
    )
    """A sub-agent's parent session (same namespace): it can only narrow, and ends with it."""
    requester: base.UserInfo | None = pydantic.Field(
        default=None, json_schema_extra=cel.immutable("requester")
    )
    """Stamped by the admission webhook from the authenticated user; client values are ignored."""
    ended: bool | None = None
    """Set to true to end the session (revokes its credentials at once)."""


class SessionPhase(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    ENDED = "Ended"
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    DENIED = "Denied"


TERMINAL_PHASES = frozenset(
    {SessionPhase.ENDED, SessionPhase.EXPIRED, SessionPhase.REVOKED, SessionPhase.DENIED}
)


class Revocation(base.Model):
    """Why and when the session lost its access."""

    reason: Annotated[str, pydantic.Field(max_length=128)]
    """Ended, Expired, ParentEnded, GrantDeleted, Deviation, OutOfScopeRequest, …"""
    message: Annotated[str, pydantic.Field(max_length=4096)] = ""
    """What happened, for people."""
    time: datetime.datetime
    """When access was revoked."""


class IncidentSessionStatus(base.Model):
    """The session's state (written by the operator only)."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    phase: SessionPhase | None = None
    """Pending, Active, or a final phase: Ended, Expired, Revoked, Denied."""
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    """Ready and Active, with reasons and messages."""
    service_account_name: str | None = None
    """The session's own ServiceAccount (in the session's namespace)."""
    secret_name: str | None = None
    """The Secret holding the session token; only the requester may read it."""
    expires_at: datetime.datetime | None = None
    """When the session's access ends: creation + ttlSeconds (never after its parent), or the
    time it was ended or revoked, if that came first."""
    token_expires_at: datetime.datetime | None = None
    """When the current token expires (it is rotated before)."""
    token_rotated_at: datetime.datetime | None = None
    """When the token was last rotated."""
    depth: int | None = None
    """0 for a top-level session, 1 for a sub-agent of one, …"""
    effective_rules: list[grant.PolicyRule] = pydantic.Field(default_factory=list)
    """The RBAC rules the session token holds, per namespace."""
    denied_requests: int = 0
    """Forbidden requests seen for the session token so far."""
    access_mode: grant.AccessMode | None = None
    """How the session's token reaches the apiserver (``gateway``: only through the gateway)."""
    revocation: Revocation | None = None
    """Set once the session lost its access: reason, message, time."""
    audit_digest: str | None = None
    """Hash of the session's last audit-trail record."""


class IncidentSession(base.Model, base.ResourceMeta):
    """One agent or sub-agent working one incident, with a short-lived, scoped token.

    The operator gives the session its own ServiceAccount and a token that reads what its scopes
    allow, and revokes it when the session ends, expires or steps out of scope.
    """

    kind: ClassVar[str] = "IncidentSession"
    plural: ClassVar[str] = "incidentsessions"
    singular: ClassVar[str] = "incidentsession"
    short_names: ClassVar[list[str]] = ["isess", "incsession"]
    namespaced: ClassVar[bool] = True
    printer_columns: ClassVar[list[base.PrinterColumn]] = [
        base.PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        base.PrinterColumn(name="Reason", type="string", json_path=".status.revocation.reason"),
        base.PrinterColumn(name="Grant", type="string", json_path=".spec.grantRef.name"),
        base.PrinterColumn(name="Incident", type="string", json_path=".spec.incident.id"),
        base.PrinterColumn(name="Severity", type="string", json_path=".spec.incident.severity"),
        base.PrinterColumn(
            name="Expires",
            type="string",
            json_path=".status.expiresAt",
            description="When the session expires; once it is over, see Reason",
        ),
        base.PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        base.PrinterColumn(
            name="Requester", type="string", json_path=".spec.requester.username", priority=1
        ),
    ]

    spec: IncidentSessionSpec
    """The incident, the grant and the requested scopes."""
    status: IncidentSessionStatus | None = None
    """Phase, token, expiry and revocation."""
