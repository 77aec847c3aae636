"""``AgentGrant`` (cluster-scoped): everything an agent may ever do, declared by a cluster admin."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import pydantic

from agent_authority.models import base, cel


class Severity(enum.StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class SubjectKind(enum.StrEnum):
    SERVICE_ACCOUNT = "ServiceAccount"
    USER = "User"
    GROUP = "Group"


class Subject(base.Model):
    """A base identity allowed to open sessions, written as an RBAC subject."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "self.kind == 'ServiceAccount'"
                " ? has(self.__namespace__) : !has(self.__namespace__)",
                "namespace is required for kind ServiceAccount and forbidden otherwise",
                field_path=".namespace",
            )
        )
    )

    kind: SubjectKind
    name: Annotated[str, pydantic.Field(min_length=1, max_length=512)]
    namespace: base.NamespaceName | None = None


IncidentClass = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]


class IncidentPolicy(base.Model):
    """Which incidents a session may be opened for."""

    severities: list[Severity] = pydantic.Field(min_length=1, max_length=4)
    classes: list[IncidentClass] = pydantic.Field(default_factory=list, max_length=64)
    """Allowed incident classes; empty means any class."""


class ReadVerb(enum.StrEnum):
    GET = "get"
    LIST = "list"
    WATCH = "watch"


ResourceName = Annotated[
    str, pydantic.Field(min_length=1, max_length=253, pattern=r"^[a-z0-9][-a-z0-9.]*(/[a-z]+)?$")
]
ApiGroup = Annotated[str, pydantic.Field(max_length=253, pattern=r"^([a-z0-9][-a-z0-9.]*)?$")]


class LabelSelectorRequirement(base.Model):
    key: Annotated[str, pydantic.Field(min_length=1, max_length=317)]
    operator: Annotated[str, pydantic.Field(pattern=r"^(In|NotIn|Exists|DoesNotExist)$")]
    values: list[Annotated[str, pydantic.Field(max_length=63)]] = pydantic.Field(
        default_factory=list
    )


class LabelSelector(base.Model):
    match_labels: dict[str, Annotated[str, pydantic.Field(max_length=63)]] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class ReadScope(base.Model):
    """One investigation scope: namespaces x API groups/resources x read verbs.

    ``watch`` is opt-in: a watch opened before revocation keeps streaming until it closes, so a
    grant has to ask for it explicitly. ``secrets`` are readable only when listed by name here.
    """

    model_config = pydantic.ConfigDict(
        json_schema_extra=cel.rules(
            cel.rule(
                "has(self.namespaces) != has(self.namespaceSelector)",
                "exactly one of namespaces or namespaceSelector must be set",
            )
        )
    )

    name: Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]
    """The scope's id; sessions request scopes by this name."""
    namespaces: list[base.NamespaceName] | None = pydantic.Field(
        default=None, min_length=1, max_length=256
    )
    namespace_selector: LabelSelector | None = None
    api_groups: list[ApiGroup] = pydantic.Field(
        default_factory=lambda: [""], min_length=1, max_length=32
    )
    """API groups of the resources; ``""`` is the core group. ``*`` is never allowed."""
    resources: list[ResourceName] = pydantic.Field(min_length=1, max_length=64)
    """Resource names (plural), subresource ``pods/log`` allowed. ``*`` is never allowed."""
    verbs: list[ReadVerb] = pydantic.Field(
        default_factory=lambda: [ReadVerb.GET, ReadVerb.LIST], min_length=1, max_length=3
    )


class ActionType(enum.StrEnum):
    RESTART_WORKLOAD = "restart-workload"
    SCALE_WORKLOAD = "scale-workload"
    ROLLBACK_DEPLOYMENT = "rollback-deployment"
    DELETE_POD = "delete-pod"
    CORDON_NODE = "cordon-node"
    UNCORDON_NODE = "uncordon-node"
    SUSPEND_CRONJOB = "suspend-cronjob"


class Autonomy(enum.StrEnum):
    PROPOSE = "propose"
    """Always needs human approval."""
    AUTO = "auto"
    """Applied without a human when reversible and inside its blast-radius limits."""
    NEVER = "never"
    """Never allowed (documents an explicit no)."""


class RemediationLimits(base.Model):
    max_replicas_delta: Annotated[int, pydantic.Field(ge=0, le=10000)] | None = None
    max_pods_affected: Annotated[int, pydantic.Field(ge=0, le=100000)] | None = None


class RemediationPolicy(base.Model):
    """One action type an agent may request, where, within which limits, with what autonomy."""

    action: ActionType
    namespaces: list[base.NamespaceName] = pydantic.Field(default_factory=list, max_length=256)
    """Target namespaces; empty means the namespaces of the grant's read scopes. Node actions
    (cordon/uncordon) are cluster-scoped and ignore this list."""
    autonomy: Autonomy = Autonomy.PROPOSE
    limits: RemediationLimits = pydantic.Field(default_factory=RemediationLimits)
    require_evidence: bool = True
    severities: list[Severity] | None = None
    """Incident severities for which this action may be requested; unset means all the grant's."""
    classes: list[IncidentClass] | None = None
    """Incident classes for which this action may be requested; unset means all the grant's."""


class RequiredApprovals(base.Model):
    reversible: Annotated[int, pydantic.Field(ge=1, le=10)] = 1
    irreversible: Annotated[int, pydantic.Field(ge=1, le=10)] = 2


class ApprovalPolicy(base.Model):
    """How approval works. Who may approve is RBAC: verb ``approve`` on this grant."""

    required_approvals: RequiredApprovals = pydantic.Field(default_factory=RequiredApprovals)
    timeout_seconds: Annotated[int, pydantic.Field(ge=30, le=7 * 86400)] = 3600


class AccessMode(enum.StrEnum):
    """How a session reaches the apiserver."""

    DIRECT = "direct"
    """Token for the apiserver's audience; RBAC blocks, the audit webhook detects deviations."""
    GATEWAY = "gateway"
    """Token for the session gateway's audience; the gateway checks, forwards and cuts off."""


class SessionPolicy(base.Model):
    max_ttl_seconds: Annotated[int, pydantic.Field(ge=10, le=86400)] = 3600
    max_concurrent_sessions: Annotated[int, pydantic.Field(ge=1, le=1000)] = 10
    max_sub_agent_depth: Annotated[int, pydantic.Field(ge=0, le=10)] = 2
    max_denied_requests: Annotated[int, pydantic.Field(ge=0, le=1000)] = 0
    """How many denied requests a session may make; the next one revokes it (0: the first)."""
    access_mode: AccessMode | None = None
    """``gateway`` or ``direct``; unset means the operator's ``--session-mode``."""


class AgentGrantSpec(base.Model):
    subjects: list[Subject] = pydantic.Field(min_length=1, max_length=64)
    incidents: IncidentPolicy
    read: list[ReadScope] = pydantic.Field(default_factory=list, max_length=64)
    remediations: list[RemediationPolicy] = pydantic.Field(default_factory=list, max_length=32)
    approval: ApprovalPolicy = pydantic.Field(default_factory=ApprovalPolicy)
    session: SessionPolicy = pydantic.Field(default_factory=SessionPolicy)


class PolicyRule(base.Model):
    """An RBAC rule in one namespace, as the grant compiles it (status only)."""

    namespace: str
    api_groups: list[str]
    resources: list[str]
    verbs: list[str]
    resource_names: list[str] | None = None


class AgentGrantStatus(base.Model):
    observed_generation: int | None = None
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    effective_rules: list[PolicyRule] = pydantic.Field(default_factory=list)
    active_sessions: int = 0


class AgentGrant(base.Model, base.ResourceMeta):
    kind: ClassVar[str] = "AgentGrant"
    plural: ClassVar[str] = "agentgrants"
    singular: ClassVar[str] = "agentgrant"
    short_names: ClassVar[list[str]] = ["ag", "grant"]
    namespaced: ClassVar[bool] = False
    printer_columns: ClassVar[list[base.PrinterColumn]] = [
        base.PrinterColumn(
            name="Valid", type="string", json_path='.status.conditions[?(@.type=="Valid")].status'
        ),
        base.PrinterColumn(
            name="Ready", type="string", json_path='.status.conditions[?(@.type=="Ready")].status'
        ),
        base.PrinterColumn(name="Sessions", type="integer", json_path=".status.activeSessions"),
        base.PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
    ]

    spec: AgentGrantSpec
    status: AgentGrantStatus | None = None
