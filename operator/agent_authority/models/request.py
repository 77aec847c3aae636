"""``RemediationRequest`` (namespaced): a state-changing action an agent asks the operator to do."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, ClassVar

import pydantic

from agent_authority.models import base, cel, grant

SHA256_HEX = r"^[a-f0-9]{64}$"
RFC3339_YEAR_1_TO_9999 = r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-"
"""Years 0001-9999 only: the schema's ``date-time`` format admits year 0000, which no datetime
library the operator (or most clients) use can represent."""


class TargetKind(enum.StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    POD = "Pod"
    NODE = "Node"
    CRON_JOB = "CronJob"


class Target(base.Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "self.kind == 'Node' ? !has(self.__namespace__) : has(self.__namespace__)",
                "namespace is required for namespaced kinds and forbidden for Node",
                field_path=".namespace",
            )
        )
    )

    kind: TargetKind
    namespace: base.NamespaceName | None = None
    name: base.ObjectName


class ActionParams(base.Model):
    replicas: Annotated[int, pydantic.Field(ge=0, le=100000)] | None = None
    """scale-workload: the desired replica count."""
    to_revision: Annotated[int, pydantic.Field(ge=1)] | None = None
    """rollback-deployment: the revision to go back to (default: the previous one)."""
    suspend: bool | None = None
    """suspend-cronjob: true to suspend (default), false to resume."""


class Action(base.Model):
    type: grant.ActionType
    target: Target
    params: ActionParams | None = None


class EvidenceKind(enum.StrEnum):
    LOG = "log"
    METRIC = "metric"
    TRACE = "trace"
    EVENT = "event"
    QUERY = "query"
    OTHER = "other"


class Evidence(base.Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            # The apiserver's date-time format check lets a list through ([]), after which no
            # rule on the object can be evaluated again, not even for a status write: touching
            # the value refuses it at creation instead.
            cel.rule(
                "self.observedAt >= timestamp('0001-01-01T00:00:00Z')",
                "observedAt must be an RFC 3339 date-time string, e.g. 2026-11-21T07:00:00Z",
                field_path=".observedAt",
            )
        )
    )

    kind: EvidenceKind
    source: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    excerpt: Annotated[str, pydantic.Field(max_length=4096)] | None = None
    sha256: Annotated[str, pydantic.Field(pattern=SHA256_HEX)]
    """Lower-case hex SHA-256 of the full evidence the excerpt was taken from."""
    observed_at: Annotated[
        datetime.datetime,
        pydantic.Field(json_schema_extra={"pattern": RFC3339_YEAR_1_TO_9999, "maxLength": 64}),
    ]
    """When the evidence was observed (RFC 3339, e.g. ``2026-11-21T07:00:00Z``)."""


class RemediationRequestSpec(base.Model):
    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "self == oldSelf",
                "spec is immutable: an approval always refers to exactly the action reviewed",
            )
        )
    )

    session_ref: base.LocalObjectReference
    action: Action
    hypothesis: Annotated[str, pydantic.Field(min_length=1, max_length=4096)]
    evidence: list[Evidence] = pydantic.Field(default_factory=list, max_length=32)
    rollback_of: base.LocalObjectReference | None = None
    """Set on a request that undoes an applied request (its recorded inverse)."""
    requester: base.UserInfo | None = None
    """Stamped by the admission webhook from the authenticated user; client values are ignored."""


class RequestPhase(enum.StrEnum):
    PENDING = "Pending"
    DENIED = "Denied"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    APPLYING = "Applying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"
    ROLLED_BACK = "RolledBack"


class ApprovalDecision(enum.StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Approval(base.Model):
    """One approver's decision, appended through the status subresource (identity stamped)."""

    decision: ApprovalDecision
    reason: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    approver: base.UserInfo | None = None
    time: datetime.datetime | None = None


class BlastRadius(base.Model):
    pods_affected: int = 0
    replicas_delta: int = 0
    reversible: bool = True


class FieldChange(base.Model):
    path: str
    before: str | None = None
    after: str | None = None


class Pinned(base.Model):
    """What a plan resolved at evaluation and the apply must use, not resolve again."""

    revision: Annotated[int, pydantic.Field(ge=1)] | None = None
    """rollback-deployment: the revision the request goes back to, as evaluated."""
    replica_set_uid: Annotated[str, pydantic.Field(max_length=128)] | None = None
    """rollback-deployment: the uid of that revision's ReplicaSet (kept when it is renumbered)."""


class Inverse(base.Model):
    """What undoes an applied action, recorded before it is applied."""

    action: Action
    description: str = ""


class RemediationRequestStatus(base.Model):
    observed_generation: int | None = None
    phase: RequestPhase | None = None
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    reason: str | None = None
    required_approvals: int | None = None
    approvals: list[Approval] = pydantic.Field(default_factory=list)
    blast_radius: BlastRadius | None = None
    diff: list[FieldChange] = pydantic.Field(default_factory=list)
    inverse: Inverse | None = None
    target_uid: Annotated[str, pydantic.Field(max_length=128)] | None = None
    """The target's metadata.uid when evaluated: approvals are for that object, not a recreation."""
    pinned: Pinned | None = None
    expires_at: datetime.datetime | None = None
    applied_at: datetime.datetime | None = None


class RemediationRequest(base.Model, base.ResourceMeta):
    kind: ClassVar[str] = "RemediationRequest"
    plural: ClassVar[str] = "remediationrequests"
    singular: ClassVar[str] = "remediationrequest"
    short_names: ClassVar[list[str]] = ["rr", "remreq"]
    namespaced: ClassVar[bool] = True
    printer_columns: ClassVar[list[base.PrinterColumn]] = [
        base.PrinterColumn(name="Action", type="string", json_path=".spec.action.type"),
        base.PrinterColumn(name="Kind", type="string", json_path=".spec.action.target.kind"),
        base.PrinterColumn(name="Target", type="string", json_path=".spec.action.target.name"),
        base.PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        base.PrinterColumn(name="Session", type="string", json_path=".spec.sessionRef.name"),
        base.PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        base.PrinterColumn(name="Reason", type="string", json_path=".status.reason", priority=1),
    ]

    spec: RemediationRequestSpec
    status: RemediationRequestStatus | None = None
