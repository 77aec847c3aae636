"""``IncidentSession`` (namespaced): one agent or sub-agent working one incident."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, ClassVar

import pydantic

from agent_authority.models import base, cel, grant

MIN_TTL_SECONDS = 10
MAX_TTL_SECONDS = 86400


class Incident(base.Model):
    id: Annotated[str, pydantic.Field(min_length=1, max_length=128)]
    title: Annotated[str, pydantic.Field(max_length=256)] | None = None
    severity: grant.Severity
    class_: grant.IncidentClass = pydantic.Field(alias="class")
    url: Annotated[str, pydantic.Field(max_length=2048, pattern=r"^https?://")] | None = None


class SessionScope(base.Model):
    """A requested read scope: a grant scope by name, optionally narrowed to some namespaces."""

    name: Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]
    namespaces: list[base.NamespaceName] | None = pydantic.Field(
        default=None, min_length=1, max_length=256
    )


class IncidentSessionSpec(base.Model):
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
    incident: Incident = pydantic.Field(json_schema_extra=cel.immutable("incident"))
    purpose: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    scopes: list[SessionScope] | None = pydantic.Field(
        default=None, max_length=64, json_schema_extra=cel.immutable("scopes")
    )
    """Requested read scopes, a subset of the grant's (and of the parent's); unset means all."""
    ttl_seconds: Annotated[int, pydantic.Field(ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)] | None = (
        pydantic.Field(default=None, json_schema_extra=cel.immutable("ttlSeconds"))
    )
    """Seconds the session lives; at most the grant's ``maxTtlSeconds``, which is also the
    default (filled in at admission)."""
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
    reason: Annotated[str, pydantic.Field(max_length=128)]
    message: Annotated[str, pydantic.Field(max_length=4096)] = ""
    time: datetime.datetime


class IncidentSessionStatus(base.Model):
    observed_generation: int | None = None
    phase: SessionPhase | None = None
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    service_account_name: str | None = None
    secret_name: str | None = None
    expires_at: datetime.datetime | None = None
    token_expires_at: datetime.datetime | None = None
    token_rotated_at: datetime.datetime | None = None
    depth: int | None = None
    effective_rules: list[grant.PolicyRule] = pydantic.Field(default_factory=list)
    denied_requests: int = 0
    access_mode: grant.AccessMode | None = None
    """How the session's token reaches the apiserver (``gateway``: only through the gateway)."""
    revocation: Revocation | None = None
    audit_digest: str | None = None


class IncidentSession(base.Model, base.ResourceMeta):
    kind: ClassVar[str] = "IncidentSession"
    plural: ClassVar[str] = "incidentsessions"
    singular: ClassVar[str] = "incidentsession"
    short_names: ClassVar[list[str]] = ["isess", "incsession"]
    namespaced: ClassVar[bool] = True
    printer_columns: ClassVar[list[base.PrinterColumn]] = [
        base.PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        base.PrinterColumn(name="Grant", type="string", json_path=".spec.grantRef.name"),
        base.PrinterColumn(name="Incident", type="string", json_path=".spec.incident.id"),
        base.PrinterColumn(name="Severity", type="string", json_path=".spec.incident.severity"),
        base.PrinterColumn(name="Expires", type="string", json_path=".status.expiresAt"),
        base.PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        base.PrinterColumn(
            name="Requester", type="string", json_path=".spec.requester.username", priority=1
        ),
        base.PrinterColumn(
            name="Reason", type="string", json_path=".status.revocation.reason", priority=1
        ),
    ]

    spec: IncidentSessionSpec
    status: IncidentSessionStatus | None = None
