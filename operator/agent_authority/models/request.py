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
    """The object the action changes."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "!has(self.kind) || "
                "(self.kind == 'Node' ? !has(self.__namespace__) : has(self.__namespace__))",
                "namespace is required for namespaced kinds and forbidden for Node",
                field_path=".namespace",
            )
        )
    )

    kind: TargetKind
    """Deployment, StatefulSet, DaemonSet, Pod, Node or CronJob."""
    namespace: base.NamespaceName | None = None
    """The target's namespace (required, except for Node)."""
    name: base.ObjectName
    """The target's name."""


class ActionParams(base.Model):
    """Parameters of the action, where it takes any."""

    replicas: Annotated[int, pydantic.Field(ge=0, le=100000)] | None = None
    """scale-workload: the desired replica count."""
    to_revision: Annotated[int, pydantic.Field(ge=1)] | None = None
    """rollback-deployment: the revision to go back to (default: the previous one)."""
    suspend: bool | None = None
    """suspend-cronjob: true to suspend (default), false to resume."""


class Action(base.Model):
    """One action of the operator's catalog, on one target."""

    type: grant.ActionType
    """restart-workload, scale-workload, rollback-deployment, delete-pod, cordon-node,
    uncordon-node or suspend-cronjob; the grant must list it in spec.remediations."""
    target: Target
    """What the action changes."""
    params: ActionParams | None = None
    """Parameters (replicas, toRevision, suspend)."""


class EvidenceKind(enum.StrEnum):
    LOG = "log"
    METRIC = "metric"
    TRACE = "trace"
    EVENT = "event"
    QUERY = "query"
    OTHER = "other"


class Evidence(base.Model):
    """What the agent saw that supports its hypothesis, pinned by a hash."""

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
    """log, metric, trace, event, query or other."""
    source: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    """Where it came from: a system, a query, a URL."""
    excerpt: Annotated[str, pydantic.Field(max_length=4096)] | None = None
    """The part an approver should read."""
    sha256: Annotated[str, pydantic.Field(max_length=64, pattern=SHA256_HEX)]
    """64 lower-case hex digits, the SHA-256 of the full evidence the excerpt was
    taken from (e.g. sha256sum of the saved query result)."""
    observed_at: Annotated[
        datetime.datetime,
        pydantic.Field(json_schema_extra={"pattern": RFC3339_YEAR_1_TO_9999, "maxLength": 64}),
    ]
    """When it was observed, RFC 3339 with a time zone, e.g. 2026-11-21T07:00:00Z (years 0001 to
    9999)."""


class RemediationRequestSpec(base.Model):
    """The change an agent asks for, why, and on what evidence (immutable once created)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "self == oldSelf",
                "spec is immutable: an approval always refers to exactly the action reviewed",
            )
        )
    )

    session_ref: base.LocalObjectReference
    """The IncidentSession (same namespace) the request is made in; it must be Active."""
    action: Action
    """What to do, to what."""
    hypothesis: Annotated[str, pydantic.Field(min_length=1, max_length=4096)]
    """Why the agent thinks this fixes the incident, for approvers."""
    evidence: list[Evidence] = pydantic.Field(default_factory=list, max_length=32)
    """What supports the hypothesis; required when the grant's remediation has requireEvidence
    (the default)."""
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
    """approve or deny."""
    reason: Annotated[str, pydantic.Field(min_length=1, max_length=1024)]
    """Why, in the approver's words."""
    approver: base.UserInfo | None = None
    """Who decided: stamped by the admission webhook; client values are ignored."""
    time: datetime.datetime | None = None
    """When (stamped by the admission webhook)."""


class BlastRadius(base.Model):
    """How much the action changes, computed from the live target."""

    pods_affected: int = 0
    """Pods restarted, deleted or evicted."""
    replicas_delta: int = 0
    """Change of replica count."""
    reversible: bool = True
    """Whether the action has an inverse the operator records before applying."""


class FieldChange(base.Model):
    """One field the action changes, from a server-side dry-run."""

    path: str
    """The field, e.g. spec.replicas."""
    before: str | None = None
    """Its value before (unset when the field did not exist)."""
    after: str | None = None
    """Its value after."""


class Pinned(base.Model):
    """What a plan resolved at evaluation and the apply must use, not resolve again."""

    revision: Annotated[int, pydantic.Field(ge=1)] | None = None
    """rollback-deployment: the revision the request goes back to, as evaluated."""
    replica_set_uid: Annotated[str, pydantic.Field(max_length=128)] | None = None
    """rollback-deployment: the uid of that revision's ReplicaSet (kept when it is renumbered)."""


class Inverse(base.Model):
    """What undoes an applied action, recorded before it is applied."""

    action: Action
    """The action that undoes the applied one."""
    description: str = ""
    """What undoing does, for people."""


class RemediationRequestStatus(base.Model):
    """The request's state (written by the operator; approvals by approvers, stamped)."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    phase: RequestPhase | None = None
    """Pending, AwaitingApproval, Approved, Applying, or a final phase: Succeeded, Denied,
    Failed, Expired, Cancelled, RolledBack."""
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    """Ready (and others) with reasons and messages."""
    reason: str | None = None
    """The policy's reason code for the current phase (e.g. AutoApproved, ActionNotAllowed)."""
    required_approvals: int | None = None
    """Distinct approvers the request needs."""
    approvals: list[Approval] = pydantic.Field(default_factory=list)
    """Approvers' decisions, appended through the status subresource."""
    blast_radius: BlastRadius | None = None
    """How much the action changes."""
    diff: list[FieldChange] = pydantic.Field(default_factory=list)
    """The fields the action changes (server-side dry-run)."""
    inverse: Inverse | None = None
    """What undoes the action, recorded before it is applied."""
    target_uid: Annotated[str, pydantic.Field(max_length=128)] | None = None
    """The target's metadata.uid when evaluated: approvals are for that object, not a recreation."""
    pinned: Pinned | None = None
    expires_at: datetime.datetime | None = None
    """When a request awaiting approval expires."""
    applied_at: datetime.datetime | None = None
    """When the action was applied."""


class RemediationRequest(base.Model, base.ResourceMeta):
    """A change an agent asks the operator to make, decided by the grant and human approvers.

    Agents never hold write credentials: the operator plans the change with a server-side
    dry-run, records its inverse, and applies it once policy and approvers allow.
    """

    kind: ClassVar[str] = "RemediationRequest"
    plural: ClassVar[str] = "remediationrequests"
    singular: ClassVar[str] = "remediationrequest"
    short_names: ClassVar[list[str]] = ["rr", "remreq"]
    namespaced: ClassVar[bool] = True
    printer_columns: ClassVar[list[base.PrinterColumn]] = [
        base.PrinterColumn(name="Action", type="string", json_path=".spec.action.type"),
        base.PrinterColumn(name="Kind", type="string", json_path=".spec.action.target.kind"),
        base.PrinterColumn(
            name="Target NS",
            type="string",
            json_path=".spec.action.target.namespace",
            description="The target's namespace (empty for a Node)",
        ),
        base.PrinterColumn(name="Target", type="string", json_path=".spec.action.target.name"),
        base.PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        base.PrinterColumn(
            name="Needs",
            type="integer",
            json_path=".status.requiredApprovals",
            description="Distinct approvers the request needs",
        ),
        base.PrinterColumn(
            name="Approved",
            type="string",
            json_path='.status.conditions[?(@.type=="Approved")].status',
            description="True once enough distinct approvers approved (agent-authority requests "
            "counts them: 1/2)",
        ),
        base.PrinterColumn(name="Session", type="string", json_path=".spec.sessionRef.name"),
        base.PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        base.PrinterColumn(name="Reason", type="string", json_path=".status.reason", priority=1),
    ]

    spec: RemediationRequestSpec
    """The action, the session, the hypothesis and the evidence."""
    status: RemediationRequestStatus | None = None
    """Phase, blast radius, diff, inverse and approvals."""
