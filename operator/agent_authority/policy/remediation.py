"""The decision on a RemediationRequest: auto-apply, wait for approval, deny, or no policy applies.

:func:`decide` is pure: the caller reads the grant, the session, the live target
(:class:`~agent_authority.policy.blast.TargetFacts`) and the resolved read namespaces, and turns the
:class:`Decision` into status, conditions, Events and audit records.

Outcomes (three-way, as cert-manager's approver-policy, plus the auto path):

- ``ALLOW_AUTO``: applied without a human (phase ``Approved``).
- ``NEEDS_APPROVAL``: waits for ``required_approvals`` distinct approvers (``AwaitingApproval``).
- ``DENY``: a rule of the grant refuses the request (``Denied``).
- ``NO_POLICY``: no remediation entry of the grant covers the action type. This is never an allow
  and no human can approve it either (approval is granted per grant, and this grant says nothing
  about the action), so the request is ``Denied`` with reason ``ActionNotAllowed``. Asking for an
  action the grant does not cover is asking for authority the agent was never given, so it is a
  deviation, like any other out-of-scope request.

Deviation (``Decision.deviation``): the request asked for authority the grant does not give in this
incident, and the session is revoked. That is: an action type without an entry, an entry with
autonomy ``never``, a target namespace outside the entry, an incident severity or class the entry
excludes. A denial is *not* a deviation when it comes from state or completeness rather than
scope: the session is not active, the target kind or params are malformed, the target or revision
does not exist, evidence is missing (incomplete, not hostile: the agent may ask again with
evidence), or the blast radius, computed from live state the agent does not control, is over a
hard limit. Scope is checked before completeness, so leaving out evidence cannot hide an
out-of-scope request.

Limits (``RemediationPolicy.limits``) bound what an entry lets through on its autonomy level:

- ``auto``: the limits are the boundary of autonomy. Within them a reversible action is applied
  without a human; beyond them (or when the blast radius cannot be computed) it waits for approval,
  as does any irreversible action.
- ``propose``: a human reviews every request, so the limits can only mean a hard cap: a request
  beyond them (or whose blast radius cannot be verified against them) is denied with
  ``BlastRadiusExceeded``.

Required approvals follow the risk class of the action (``grant.approval.requiredApprovals``,
reversible or irreversible), whatever made the request wait.

When several entries of a grant name the same action type, an entry with autonomy ``never`` that
covers the target wins (an explicit no); otherwise each entry is evaluated and the most favourable
decision wins (allow, then approval, then a denial that is not a deviation), as RBAC rules add up.

A rollback request (``spec.rollbackOf``) carries the recorded inverse as its action and is decided
by the same rules.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum

from agent_authority.models import grant, request, session
from agent_authority.policy import approvals, blast


class Outcome(enum.StrEnum):
    ALLOW_AUTO = "AllowAuto"
    NEEDS_APPROVAL = "NeedsApproval"
    DENY = "Deny"
    NO_POLICY = "NoPolicy"


class Reason(enum.StrEnum):
    """Machine reason codes, as written to ``status.reason`` and condition reasons."""

    SESSION_NOT_ACTIVE = "SessionNotActive"
    ACTION_NOT_ALLOWED = "ActionNotAllowed"
    AUTONOMY_NEVER = "AutonomyNever"
    TARGET_OUT_OF_SCOPE = "TargetOutOfScope"
    SEVERITY_NOT_ALLOWED = "SeverityNotAllowed"
    CLASS_NOT_ALLOWED = "ClassNotAllowed"
    TARGET_KIND_MISMATCH = "TargetKindMismatch"
    INVALID_PARAMS = "InvalidParams"
    TARGET_NOT_FOUND = "TargetNotFound"
    REVISION_NOT_FOUND = "RevisionNotFound"
    EVIDENCE_REQUIRED = "EvidenceRequired"
    BLAST_RADIUS_EXCEEDED = "BlastRadiusExceeded"
    AUTO_APPROVED = "AutoApproved"
    APPROVAL_REQUIRED = "ApprovalRequired"
    AUTO_LIMIT_EXCEEDED = "AutoLimitExceeded"
    IRREVERSIBLE_ACTION = "IrreversibleAction"


_PHASES: collections.abc.Mapping[Outcome, request.RequestPhase] = {
    Outcome.ALLOW_AUTO: request.RequestPhase.APPROVED,
    Outcome.NEEDS_APPROVAL: request.RequestPhase.AWAITING_APPROVAL,
    Outcome.DENY: request.RequestPhase.DENIED,
    Outcome.NO_POLICY: request.RequestPhase.DENIED,
}


@dataclasses.dataclass(frozen=True)
class Decision:
    """The policy's answer for one request, with a message a human can act on."""

    outcome: Outcome
    reason: Reason
    message: str
    risk_class: blast.RiskClass
    required_approvals: int = 0
    """Distinct approvers needed (``NEEDS_APPROVAL`` only; 0 otherwise)."""
    deviation: bool = False
    """The request is out of the grant's scope: it counts against the session and revokes it."""
    blast_radius: request.BlastRadius | None = None
    """Computed from the live target; ``None`` when the decision came before it, or unknown."""

    @property
    def phase(self) -> request.RequestPhase:
        """The request phase this decision leads to (``NO_POLICY`` is denied, never allowed)."""
        return _PHASES[self.outcome]


@dataclasses.dataclass(frozen=True)
class _Request:
    """Everything one evaluation needs, so checks are small functions of one argument."""

    spec: grant.AgentGrantSpec
    grant_label: str
    phase: session.SessionPhase
    incident: session.Incident
    session_label: str
    read_namespaces: tuple[str, ...]
    action: request.Action
    evidence: int
    prefix: str
    facts: blast.TargetFacts

    @property
    def risk(self) -> blast.RiskClass:
        return blast.risk_class(self.action.type)

    def deny(self, reason: Reason, message: str, *, deviation: bool = False) -> Decision:
        return Decision(Outcome.DENY, reason, self.prefix + message, self.risk, deviation=deviation)


def decide(
    grant_spec: grant.AgentGrantSpec,
    session_phase: session.SessionPhase,
    incident: session.Incident,
    session_namespace: str,
    read_namespaces: collections.abc.Sequence[str],
    spec: request.RemediationRequestSpec,
    facts: blast.TargetFacts,
    *,
    grant_name: str | None = None,
) -> Decision:
    """Decide ``spec`` under ``grant_spec`` for a session in ``session_phase`` (module docstring).

    ``read_namespaces`` are the namespaces of the grant's read scopes, resolved by the caller
    (selectors included); they are the target namespaces of entries that list none.
    ``grant_name`` only makes messages name the grant.
    """
    req = _Request(
        spec=grant_spec,
        grant_label=f"grant '{grant_name}'" if grant_name else "the grant",
        phase=session_phase,
        incident=incident,
        session_label=f"{session_namespace}/{spec.session_ref.name}",
        read_namespaces=tuple(read_namespaces),
        action=spec.action,
        evidence=len(spec.evidence),
        prefix=f"rollback of '{spec.rollback_of.name}': " if spec.rollback_of else "",
        facts=facts,
    )
    if (refused := _check_session(req)) is not None:
        return refused
    entries = [e for e in grant_spec.remediations if e.action is spec.action.type]
    if not entries:
        return _no_policy(req)
    in_scope: list[grant.RemediationPolicy] = []
    scope_denials: list[Decision] = []
    for entry in entries:
        denial = _check_scope(req, entry)
        if denial is None and entry.autonomy is grant.Autonomy.NEVER:
            return _never(req, entry)
        if denial is None:
            in_scope.append(entry)
        else:
            scope_denials.append(denial)
    if not in_scope:
        return scope_denials[0]
    if (refused := _check_shape(req)) is not None:
        return refused
    decisions = [_decide_entry(req, entry) for entry in in_scope]
    return min(decisions, key=_rank)


def _rank(decision: Decision) -> int:
    """Lower is more favourable to the request (the first of equals wins, as ``min`` keeps it)."""
    if decision.outcome is Outcome.ALLOW_AUTO:
        return 0
    if decision.outcome is Outcome.NEEDS_APPROVAL:
        return 1
    return 3 if decision.deviation else 2


def _check_session(req: _Request) -> Decision | None:
    """Only an Active session may have requests decided (not a deviation: it is state)."""
    if req.phase is session.SessionPhase.ACTIVE:
        return None
    return req.deny(
        Reason.SESSION_NOT_ACTIVE,
        f"spec.sessionRef: session '{req.session_label}' is {req.phase}; "
        f"only an Active session may request remediations",
    )


def _no_policy(req: _Request) -> Decision:
    """No entry covers the action type: out of scope, denied, a deviation."""
    requestable = _requestable(req.spec)
    return Decision(
        Outcome.NO_POLICY,
        Reason.ACTION_NOT_ALLOWED,
        f"{req.prefix}spec.action.type: {req.grant_label} has no remediation entry for "
        f"{req.action.type} (requestable: {', '.join(requestable) or 'none'})",
        req.risk,
        deviation=True,
    )


def _never(req: _Request, entry: grant.RemediationPolicy) -> Decision:
    """An entry with autonomy ``never`` is an explicit no: out of scope, a deviation."""
    others = [a for a in _requestable(req.spec) if a != entry.action]
    target = req.action.target
    return req.deny(
        Reason.AUTONOMY_NEVER,
        f"spec.action.type: {entry.action} of {target.kind} {_name(target)} has autonomy "
        f"'never' in {req.grant_label} and may not be requested "
        f"(other requestable actions: {', '.join(others) or 'none'})",
        deviation=True,
    )


def _requestable(spec: grant.AgentGrantSpec) -> list[str]:
    """Action types a grant lets an agent request, sorted, without duplicates."""
    return sorted(
        {str(e.action) for e in spec.remediations if e.autonomy is not grant.Autonomy.NEVER}
    )


def _check_scope(req: _Request, entry: grant.RemediationPolicy) -> Decision | None:
    """Target namespace, incident severity and class against one entry; denials are deviations."""
    target = req.action.target
    if entry.action not in blast.NODE_ACTIONS and target.namespace is not None:
        allowed = entry.namespaces or list(req.read_namespaces)
        if target.namespace not in allowed:
            origin = "" if entry.namespaces else " (from its read scopes)"
            return req.deny(
                Reason.TARGET_OUT_OF_SCOPE,
                f"spec.action.target.namespace: '{target.namespace}' is not a target namespace "
                f"of {entry.action} in {req.grant_label} "
                f"(allowed{origin}: {', '.join(sorted(allowed)) or 'none'})",
                deviation=True,
            )
    severities = _narrowed(req.spec.incidents.severities, entry.severities)
    if req.incident.severity not in severities:
        return req.deny(
            Reason.SEVERITY_NOT_ALLOWED,
            f"spec.sessionRef: incident {req.incident.id} has severity {req.incident.severity}; "
            f"{entry.action} in {req.grant_label} may be requested only for severities "
            f"{', '.join(sorted(severities)) or 'none'}",
            deviation=True,
        )
    classes = _narrowed(req.spec.incidents.classes, entry.classes)
    if (req.spec.incidents.classes or entry.classes is not None) and (
        req.incident.class_ not in classes
    ):
        return req.deny(
            Reason.CLASS_NOT_ALLOWED,
            f"spec.sessionRef: incident {req.incident.id} has class '{req.incident.class_}'; "
            f"{entry.action} in {req.grant_label} may be requested only for classes "
            f"{', '.join(sorted(classes)) or 'none'}",
            deviation=True,
        )
    return None


def _narrowed(
    granted: collections.abc.Sequence[str], entry: collections.abc.Sequence[str] | None
) -> list[str]:
    """An entry's severities or classes: unset means the grant's, set is cut to the grant's.

    An empty ``granted`` list of classes means any class, so the entry's list stands alone.
    """
    if entry is None:
        return list(granted)
    return [value for value in entry if not granted or value in granted]


def _check_shape(req: _Request) -> Decision | None:
    """Target kind, params, and the live target: malformed or stale, never a deviation."""
    if (problem := blast.target_kind_problem(req.action)) is not None:
        return req.deny(Reason.TARGET_KIND_MISMATCH, problem)
    if (problem := blast.params_problem(req.action)) is not None:
        return req.deny(Reason.INVALID_PARAMS, problem)
    target = req.action.target
    if req.facts.kind is None:
        return req.deny(
            Reason.TARGET_NOT_FOUND,
            f"spec.action.target: {target.kind} {_name(target)} does not exist",
        )
    if (
        req.action.type is grant.ActionType.ROLLBACK_DEPLOYMENT
        and req.facts.previous_revision_exists is False
    ):
        params = req.action.params or request.ActionParams()
        revision = f"revision {params.to_revision}" if params.to_revision else "a previous revision"
        return req.deny(
            Reason.REVISION_NOT_FOUND,
            f"spec.action.params.toRevision: Deployment {_name(target)} has no {revision} "
            f"to roll back to",
        )
    return None


def _decide_entry(req: _Request, entry: grant.RemediationPolicy) -> Decision:
    """Evidence, blast radius and autonomy under one in-scope entry."""
    if entry.require_evidence and req.evidence == 0:
        return req.deny(
            Reason.EVIDENCE_REQUIRED,
            f"spec.evidence: {entry.action} in {req.grant_label} requires evidence; attach at "
            f"least one item (log, metric, trace, event, query) supporting the hypothesis",
        )
    missing = blast.missing_facts(req.action.type, req.facts)
    radius = None if missing else blast.blast_radius(req.action, req.facts)
    effect = blast.describe(req.action, req.facts, radius) if radius else "(blast radius unknown)"
    what = f"{req.action.type} of {req.action.target.kind} {_name(req.action.target)} {effect}"
    over = _over_limits(entry.limits, radius, missing)
    where = f"{entry.action} in {req.grant_label}"
    if entry.autonomy is grant.Autonomy.PROPOSE and over:
        return dataclasses.replace(
            req.deny(
                Reason.BLAST_RADIUS_EXCEEDED,
                f"blast radius: {what}: {'; '.join(over)} of {where} "
                f"(propose limits are hard limits; request a smaller change)",
            ),
            blast_radius=radius,
        )
    if entry.autonomy is grant.Autonomy.PROPOSE:
        return _wait(req, Reason.APPROVAL_REQUIRED, f"{what}: {where} has autonomy propose", radius)
    if not blast.is_reversible(req.action.type):
        return _wait(
            req, Reason.IRREVERSIBLE_ACTION, f"{what}: auto applies only reversible actions", radius
        )
    if over or radius is None:
        limits = "; ".join(over) or "blast radius unknown"
        return _wait(
            req, Reason.AUTO_LIMIT_EXCEEDED, f"{what}: {limits} of {where} (auto limit)", radius
        )
    return Decision(
        Outcome.ALLOW_AUTO,
        Reason.AUTO_APPROVED,
        f"{req.prefix}{what}: within the auto limits of {where}; applied without a human",
        req.risk,
        blast_radius=radius,
    )


def _wait(req: _Request, reason: Reason, why: str, radius: request.BlastRadius | None) -> Decision:
    """Wait for the approvals the grant requires for the action's risk class."""
    required = approvals.required_approvals(req.spec.approval, req.risk)
    noun = "approver" if required == 1 else "distinct approvers"
    return Decision(
        Outcome.NEEDS_APPROVAL,
        reason,
        f"{req.prefix}{why}; waiting for {required} {noun} ({req.risk} action, {req.grant_label})",
        req.risk,
        required_approvals=required,
        blast_radius=radius,
    )


def _over_limits(
    limits: grant.RemediationLimits,
    radius: request.BlastRadius | None,
    missing: collections.abc.Sequence[str],
) -> list[str]:
    """Each limit the blast radius exceeds, or cannot be verified against, as a phrase."""
    over: list[str] = []
    checks = (
        ("maxReplicasDelta", limits.max_replicas_delta, "replicas delta", _delta),
        ("maxPodsAffected", limits.max_pods_affected, "pods affected", _pods),
    )
    for field, limit, label, measure in checks:
        if limit is None:
            continue
        if radius is None:
            over.append(
                f"{label} cannot be verified against {field} {limit} "
                f"(live target facts missing: {', '.join(missing)})"
            )
        elif (value := measure(radius)) > limit:
            over.append(f"{label} {value} exceeds {field} {limit}")
    return over


def _delta(radius: request.BlastRadius) -> int:
    return abs(radius.replicas_delta)


def _pods(radius: request.BlastRadius) -> int:
    return radius.pods_affected


def _name(target: request.Target) -> str:
    """``namespace/name`` of a namespaced target, ``name`` of a Node."""
    return f"{target.namespace}/{target.name}" if target.namespace else target.name
