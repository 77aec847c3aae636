"""``AgentGrant`` (cluster-scoped): everything an agent may ever do, declared by a cluster admin."""

from __future__ import annotations

import enum
import re
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
                "!has(self.kind) || (self.kind == 'ServiceAccount'"
                " ? has(self.__namespace__) : !has(self.__namespace__))",
                "namespace is required for kind ServiceAccount and forbidden otherwise",
                field_path=".namespace",
            )
        )
    )

    kind: SubjectKind
    """ServiceAccount, User or Group."""
    name: Annotated[str, pydantic.Field(min_length=1, max_length=512)]
    """The ServiceAccount's, user's or group's name."""
    namespace: base.NamespaceName | None = None
    """The ServiceAccount's namespace (required for ServiceAccount, forbidden otherwise)."""


IncidentClass = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=base.DNS_LABEL)]


class AlertMatchType(enum.StrEnum):
    """How an :class:`AlertMatcher` compares a label, as Alertmanager's matchers do."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class AlertMatcher(base.Model):
    """One condition on the alert's labels (regular expressions match the whole value)."""

    name: Annotated[str, pydantic.Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z_]\w*$")]
    value: Annotated[str, pydantic.Field(max_length=1024)]
    match_type: AlertMatchType = AlertMatchType.EQUAL

    @pydantic.model_validator(mode="after")
    def _regex_compiles(self) -> AlertMatcher:
        if self.match_type in (AlertMatchType.REGEX, AlertMatchType.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as e:
                raise ValueError(f"value {self.value!r} is not a regular expression: {e}") from e
        return self


LabelName = Annotated[str, pydantic.Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z_]\w*$")]


class AlertBinding(base.Model):
    """Sessions are opened only for a firing Alertmanager alert, which decides their incident.

    ``spec.incident.id`` of a session is the alert's fingerprint. Admission reads the alert from
    Alertmanager's API v2 (``<url>/api/v2/alerts``); severity and class come from its labels, a
    session that declares other values is refused, and Alertmanager being unreachable refuses the
    session (fail closed). The session ends (``IncidentResolved``) when the alert resolves.
    """

    url: Annotated[str, pydantic.Field(min_length=1, max_length=2048, pattern=r"^https?://")]
    """Alertmanager's base URL (the API v2 is under ``/api/v2``)."""
    ca_bundle: Annotated[str, pydantic.Field(max_length=65536)] | None = None
    """PEM CA certificates that verify an https Alertmanager (default: the system's CAs)."""
    matchers: list[AlertMatcher] = pydantic.Field(default_factory=list, max_length=32)
    """Conditions the alert's labels must all meet (empty: any alert)."""
    severity_label: LabelName = "severity"
    """The alert label holding the incident's severity."""
    class_label: LabelName = "class"
    """The alert label holding the incident's class."""
    severity_values: dict[str, Severity] = pydantic.Field(default_factory=dict, max_length=32)
    """Label value → severity (e.g. ``critical: SEV1``); empty: the value must be SEV1..SEV4."""


class IncidentPolicy(base.Model):
    """Which incidents a session may be opened for."""

    severities: list[Severity] = pydantic.Field(min_length=1, max_length=4)
    """Incident severities a session may be opened for: SEV1 (worst) to SEV4."""
    classes: list[IncidentClass] = pydantic.Field(default_factory=list, max_length=64)
    """Allowed incident classes; empty means any class."""
    alertmanager: AlertBinding | None = None
    """When set, a session's incident must be a firing Alertmanager alert matching it."""


class ReadVerb(enum.StrEnum):
    GET = "get"
    LIST = "list"
    WATCH = "watch"


ResourceName = Annotated[
    str, pydantic.Field(min_length=1, max_length=253, pattern=r"^[a-z0-9][-a-z0-9.]*(/[a-z]+)?$")
]
ApiGroup = Annotated[str, pydantic.Field(max_length=253, pattern=r"^([a-z0-9][-a-z0-9.]*)?$")]


class LabelSelectorRequirement(base.Model):
    """One label requirement, as in a Kubernetes label selector."""

    key: Annotated[str, pydantic.Field(min_length=1, max_length=317)]
    """The label key."""
    operator: Annotated[
        str, pydantic.Field(max_length=16, pattern=r"^(In|NotIn|Exists|DoesNotExist)$")
    ]
    """In, NotIn, Exists or DoesNotExist."""
    values: list[Annotated[str, pydantic.Field(max_length=63)]] = pydantic.Field(
        default_factory=list, max_length=64
    )
    """The label values for In and NotIn; empty for Exists and DoesNotExist."""


class LabelSelector(base.Model):
    """Namespaces by label, as a Kubernetes label selector (an empty selector matches all)."""

    match_labels: dict[str, Annotated[str, pydantic.Field(max_length=63)]] | None = pydantic.Field(
        default=None, max_length=64
    )
    """Labels a namespace must have, with these values."""
    match_expressions: list[LabelSelectorRequirement] | None = pydantic.Field(
        default=None, max_length=16
    )
    """Requirements a namespace's labels must all meet."""


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
    """The namespaces this scope reads in (exactly one of namespaces or namespaceSelector)."""
    namespace_selector: LabelSelector | None = None
    """Namespaces by label, resolved by the operator when a session opens (and when labels
    change)."""
    api_groups: list[ApiGroup] = pydantic.Field(
        default_factory=lambda: [""], min_length=1, max_length=32
    )
    """API groups of the resources; ``""`` is the core group. ``*`` is never allowed."""
    resources: list[ResourceName] = pydantic.Field(min_length=1, max_length=64)
    """Resource names (plural), subresource ``pods/log`` allowed. ``*`` is never allowed."""
    verbs: list[ReadVerb] = pydantic.Field(
        default_factory=lambda: [ReadVerb.GET, ReadVerb.LIST], min_length=1, max_length=3
    )
    """Read verbs: get, list (the default) and, opted into, watch."""


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
    """Blast-radius limits: with autonomy auto, the edge of what is applied without a human;
    with propose, a hard cap (a bigger request is denied)."""

    max_replicas_delta: Annotated[int, pydantic.Field(ge=0, le=10000)] | None = None
    """The largest change of replica count one request may make (up or down)."""
    max_pods_affected: Annotated[int, pydantic.Field(ge=0, le=100000)] | None = None
    """The most pods one request may restart, delete or evict."""


class RemediationPolicy(base.Model):
    """One action type an agent may request, where, within which limits, with what autonomy."""

    action: ActionType
    """The action: restart-workload, scale-workload, rollback-deployment, delete-pod,
    cordon-node, uncordon-node or suspend-cronjob."""
    namespaces: list[base.NamespaceName] = pydantic.Field(default_factory=list, max_length=256)
    """Target namespaces; empty means the namespaces of the grant's read scopes. Node actions
    (cordon/uncordon) are cluster-scoped and ignore this list."""
    autonomy: Autonomy = Autonomy.PROPOSE
    """propose (the default): every request waits for human approval. auto: applied without a
    human when reversible and within limits, else it waits for approval. never: may not be
    requested at all; asking for it revokes the session."""
    limits: RemediationLimits = pydantic.Field(default_factory=RemediationLimits)
    """Blast-radius limits of one request."""
    require_evidence: bool = True
    """Requests must carry at least one evidence item (spec.evidence)."""
    severities: list[Severity] | None = pydantic.Field(default=None, max_length=4)
    """Incident severities for which this action may be requested; unset means all the grant's."""
    classes: list[IncidentClass] | None = pydantic.Field(default=None, max_length=64)
    """Incident classes for which this action may be requested; unset means all the grant's."""


class RequiredApprovals(base.Model):
    """Distinct human approvers a request needs, by the risk of its action."""

    reversible: Annotated[int, pydantic.Field(ge=1, le=10)] = 1
    """For actions with an inverse (scale, rollback, cordon, suspend)."""
    irreversible: Annotated[int, pydantic.Field(ge=1, le=10)] = 2
    """For actions without one (restart-workload, delete-pod)."""


class ApprovalPolicy(base.Model):
    """How approval works. Who may approve is RBAC: verb ``approve`` on this grant."""

    required_approvals: RequiredApprovals = pydantic.Field(default_factory=RequiredApprovals)
    """How many distinct approvers a request needs."""
    timeout_seconds: Annotated[int, pydantic.Field(ge=30, le=7 * 86400)] = 3600
    """A request not approved within this many seconds expires."""


class AccessMode(enum.StrEnum):
    """How a session reaches the apiserver."""

    DIRECT = "direct"
    """Token for the apiserver's audience; RBAC blocks, the audit webhook detects deviations."""
    GATEWAY = "gateway"
    """Token for the session gateway's audience; the gateway checks, forwards and cuts off."""


class SessionPolicy(base.Model):
    """Limits of the sessions opened under this grant."""

    max_ttl_seconds: Annotated[int, pydantic.Field(ge=10, le=86400)] = 3600
    """The longest a session may live, and the default ttlSeconds of a session."""
    max_concurrent_sessions: Annotated[int, pydantic.Field(ge=1, le=1000)] = 10
    """How many sessions may be Active under this grant at once."""
    max_sub_agent_depth: Annotated[int, pydantic.Field(ge=0, le=10)] = 2
    """How deep sub-agent sessions (spec.parentSession) may nest."""
    max_denied_requests: Annotated[int, pydantic.Field(ge=0, le=1000)] = 0
    """How many denied requests a session may make; the next one revokes it (0: the first)."""
    access_mode: AccessMode | None = None
    """``gateway`` or ``direct``; unset means the operator's ``--session-mode``."""


class AgentGrantSpec(base.Model):
    """Everything agents may ever do under this grant: who, for which incidents, what they may
    read, which changes they may ask for, how those are approved, and session limits."""

    subjects: list[Subject] = pydantic.Field(min_length=1, max_length=64)
    """Base identities that may open sessions under this grant (RBAC subjects)."""
    incidents: IncidentPolicy
    """Which incidents (severities, classes) sessions may be opened for."""
    read: list[ReadScope] = pydantic.Field(default_factory=list, max_length=64)
    """Read scopes: what a session token may get and list, in which namespaces."""
    remediations: list[RemediationPolicy] = pydantic.Field(default_factory=list, max_length=32)
    """Actions agents may request as RemediationRequests, where, within which limits, with what
    autonomy."""
    approval: ApprovalPolicy = pydantic.Field(default_factory=ApprovalPolicy)
    """How requests are approved. Who may approve is RBAC: verb approve on this grant."""
    session: SessionPolicy = pydantic.Field(default_factory=SessionPolicy)
    """Session lifetime, concurrency, sub-agent depth and tolerated denials."""


class PolicyRule(base.Model):
    """An RBAC rule in one namespace, as the grant compiles it (status only)."""

    namespace: str
    """The namespace the rule applies in."""
    api_groups: list[str]
    """API groups ("" is the core group)."""
    resources: list[str]
    """Resources (plural, with subresources such as pods/log)."""
    verbs: list[str]
    """Read verbs."""
    resource_names: list[str] | None = None
    """Object names the rule is limited to (secrets are only ever granted by name)."""


class AgentGrantStatus(base.Model):
    """What the operator made of the grant (written by the operator only)."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    conditions: list[base.Condition] = pydantic.Field(default_factory=list)
    """Valid (the grant passed the operator's checks) and Ready."""
    effective_rules: list[PolicyRule] = pydantic.Field(default_factory=list)
    """The RBAC rules the read scopes compile to, per namespace."""
    active_sessions: int = 0
    """Sessions Active under this grant now."""


class AgentGrant(base.Model, base.ResourceMeta):
    """What AI incident agents may ever do, declared by a cluster admin (cluster-scoped).

    Sessions (IncidentSession) get short-lived, scoped read access within it; changes are asked
    for as RemediationRequests and decided by its remediations and approval rules.
    """

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
    """What agents may do under this grant."""
    status: AgentGrantStatus | None = None
    """What the operator made of it."""
