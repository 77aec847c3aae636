"""The decision on a RemediationRequest, one table row per rule."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from agent_authority.models import grant, request, session
from agent_authority.policy import blast, remediation

A = grant.ActionType
K = request.TargetKind
OUT = remediation.Outcome
R = remediation.Reason
SHA = "a" * 64
READ_NAMESPACES = ("web", "api")


def entry(action: grant.ActionType, **fields: Any) -> dict[str, Any]:
    """A remediation entry in wire form (camelCase keys)."""
    return {"action": action, **fields}


def make_grant(*entries: dict[str, Any], **fields: Any) -> grant.AgentGrantSpec:
    """A grant for SEV1/SEV2 incidents of any class with the given remediation entries."""
    return grant.AgentGrantSpec.model_validate(
        {
            "subjects": [{"kind": "ServiceAccount", "name": "sre-bot", "namespace": "agents"}],
            "incidents": {"severities": ["SEV1", "SEV2"]},
            "remediations": list(entries),
            **fields,
        }
    )


def make_spec(
    action: grant.ActionType,
    kind: request.TargetKind = K.DEPLOYMENT,
    namespace: str | None = "web",
    *,
    name: str = "frontend",
    evidence: bool = True,
    rollback_of: str | None = None,
    **params: Any,
) -> request.RemediationRequestSpec:
    target: dict[str, Any] = {"kind": kind, "name": name}
    if namespace is not None:
        target["namespace"] = namespace
    body: dict[str, Any] = {
        "sessionRef": {"name": "sess-1"},
        "action": {"type": action, "target": target, **({"params": params} if params else {})},
        "hypothesis": "p99 latency is up because the pool is saturated",
    }
    if evidence:
        body["evidence"] = [
            {
                "kind": "metric",
                "source": "prometheus",
                "sha256": SHA,
                "observedAt": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            }
        ]
    if rollback_of:
        body["rollbackOf"] = {"name": rollback_of}
    return request.RemediationRequestSpec.model_validate(body)


def incident(severity: str = "SEV2", class_: str = "latency") -> session.Incident:
    return session.Incident.model_validate({"id": "INC-7", "severity": severity, "class": class_})


SCALE_AUTO = entry(
    A.SCALE_WORKLOAD, namespaces=["web", "api"], autonomy="auto", limits={"maxReplicasDelta": 2}
)
SCALE_PROPOSE = entry(A.SCALE_WORKLOAD, namespaces=["web", "api"], limits={"maxReplicasDelta": 2})
DEPLOYMENT_3 = blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=3, current_pods=3)


@dataclasses.dataclass(frozen=True)
class Case:
    grant: grant.AgentGrantSpec
    spec: request.RemediationRequestSpec
    facts: blast.TargetFacts
    outcome: remediation.Outcome
    reason: remediation.Reason
    deviation: bool = False
    required: int = 0
    message: str = ""
    """A substring the message must contain (the whole message when it starts with '=')."""
    phase: session.SessionPhase = session.SessionPhase.ACTIVE
    incident: session.Incident = dataclasses.field(default_factory=incident)
    read_namespaces: tuple[str, ...] = READ_NAMESPACES


CASES = [
    # --- auto: within and beyond its limits -------------------------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
            message="scale-workload of Deployment web/frontend scales from 3 to 4 replicas "
            "(delta +1, 1 pod affected, reversible): within the auto limits of scale-workload "
            "in grant 'sre-bot'; applied without a human",
        ),
        id="auto-scale-3-to-4-within-delta-2-applies-without-human",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=5),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="auto-scale-exactly-at-the-limit-applies-without-human",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=6),
            DEPLOYMENT_3,
            OUT.NEEDS_APPROVAL,
            R.AUTO_LIMIT_EXCEEDED,
            required=1,
            message="replicas delta 3 exceeds maxReplicasDelta 2 of scale-workload in grant "
            "'sre-bot' (auto limit); waiting for 1 approver",
        ),
        id="auto-scale-3-to-6-beyond-delta-waits-for-approval",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=0),
            DEPLOYMENT_3,
            OUT.NEEDS_APPROVAL,
            R.AUTO_LIMIT_EXCEEDED,
            required=1,
            message="replicas delta 3 exceeds",
        ),
        id="auto-scale-down-counts-the-absolute-delta",
    ),
    pytest.param(
        Case(
            make_grant(
                entry(A.ROLLBACK_DEPLOYMENT, autonomy="auto", limits={"maxPodsAffected": 3})
            ),
            make_spec(A.ROLLBACK_DEPLOYMENT),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_pods=5, previous_revision_exists=True),
            OUT.NEEDS_APPROVAL,
            R.AUTO_LIMIT_EXCEEDED,
            required=1,
            message="pods affected 5 exceeds maxPodsAffected 3",
        ),
        id="auto-rollback-touching-more-pods-than-allowed-waits-for-approval",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            blast.TargetFacts(kind=K.DEPLOYMENT),
            OUT.NEEDS_APPROVAL,
            R.AUTO_LIMIT_EXCEEDED,
            required=1,
            message="replicas delta cannot be verified against maxReplicasDelta 2 "
            "(live target facts missing: current_replicas)",
        ),
        id="auto-with-unknown-blast-radius-never-applies-without-human",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.RESTART_WORKLOAD, autonomy="auto")),
            make_spec(A.RESTART_WORKLOAD),
            DEPLOYMENT_3,
            OUT.NEEDS_APPROVAL,
            R.IRREVERSIBLE_ACTION,
            required=2,
            message="auto applies only reversible actions; waiting for 2 distinct approvers "
            "(irreversible action",
        ),
        id="auto-restart-is-irreversible-so-waits-for-two-person-rule",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.SUSPEND_CRONJOB, autonomy="auto", requireEvidence=False)),
            make_spec(A.SUSPEND_CRONJOB, K.CRON_JOB, name="report", evidence=False),
            blast.TargetFacts(kind=K.CRON_JOB, cronjob_suspended=False),
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="auto-suspend-cronjob-without-required-evidence-applies",
    ),
    # --- propose: always a human; limits are hard ------------------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_PROPOSE),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.NEEDS_APPROVAL,
            R.APPROVAL_REQUIRED,
            required=1,
            message="scale-workload in grant 'sre-bot' has autonomy propose; waiting for "
            "1 approver (reversible action, grant 'sre-bot')",
        ),
        id="propose-scale-within-limit-waits-for-one-approver",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.DELETE_POD, namespaces=["web"])),
            make_spec(A.DELETE_POD, K.POD, name="frontend-7d9c-x2"),
            blast.TargetFacts(kind=K.POD),
            OUT.NEEDS_APPROVAL,
            R.APPROVAL_REQUIRED,
            required=2,
        ),
        id="propose-delete-pod-is-irreversible-two-person-rule",
    ),
    pytest.param(
        Case(
            make_grant(
                entry(A.DELETE_POD),
                approval={"requiredApprovals": {"reversible": 2, "irreversible": 3}},
            ),
            make_spec(A.DELETE_POD, K.POD, name="frontend-7d9c-x2"),
            blast.TargetFacts(kind=K.POD),
            OUT.NEEDS_APPROVAL,
            R.APPROVAL_REQUIRED,
            required=3,
        ),
        id="propose-uses-the-grants-own-irreversible-count",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_PROPOSE),
            make_spec(A.SCALE_WORKLOAD, replicas=10),
            DEPLOYMENT_3,
            OUT.DENY,
            R.BLAST_RADIUS_EXCEEDED,
            message="replicas delta 7 exceeds maxReplicasDelta 2 of scale-workload in grant "
            "'sre-bot' (propose limits are hard limits; request a smaller change)",
        ),
        id="propose-beyond-limit-is-denied-not-a-deviation",
    ),
    # --- session state -----------------------------------------------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.SESSION_NOT_ACTIVE,
            phase=session.SessionPhase.REVOKED,
            message="=spec.sessionRef: session 'incidents/sess-1' is Revoked; only an Active "
            "session may request remediations",
        ),
        id="revoked-session-is-denied-not-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.SESSION_NOT_ACTIVE,
            phase=session.SessionPhase.PENDING,
        ),
        id="pending-session-is-denied",
    ),
    # --- scope: each denial is a deviation -----------------------------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.DELETE_POD, K.POD, name="frontend-7d9c-x2"),
            blast.TargetFacts(kind=K.POD),
            OUT.NO_POLICY,
            R.ACTION_NOT_ALLOWED,
            deviation=True,
            message="=spec.action.type: grant 'sre-bot' has no remediation entry for "
            "delete-pod (requestable: scale-workload)",
        ),
        id="action-without-entry-is-no-policy-denied-and-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO, entry(A.DELETE_POD, autonomy="never")),
            make_spec(A.DELETE_POD, K.POD, name="frontend-7d9c-x2"),
            blast.TargetFacts(kind=K.POD),
            OUT.DENY,
            R.AUTONOMY_NEVER,
            deviation=True,
            message="=spec.action.type: delete-pod of Pod web/frontend-7d9c-x2 has autonomy "
            "'never' in grant 'sre-bot' and may not be requested (other requestable actions: "
            "scale-workload)",
        ),
        id="autonomy-never-is-denied-and-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, namespace="payments", replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.TARGET_OUT_OF_SCOPE,
            deviation=True,
            message="=spec.action.target.namespace: 'payments' is not a target namespace of "
            "scale-workload in grant 'sre-bot' (allowed: api, web)",
        ),
        id="namespace-outside-the-entry-is-denied-and-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.SCALE_WORKLOAD, autonomy="auto")),
            make_spec(A.SCALE_WORKLOAD, namespace="api", replicas=4),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="entry-without-namespaces-targets-the-read-namespaces",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.SCALE_WORKLOAD, autonomy="auto")),
            make_spec(A.SCALE_WORKLOAD, namespace="payments", replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.TARGET_OUT_OF_SCOPE,
            deviation=True,
            message="(allowed (from its read scopes): api, web)",
        ),
        id="entry-without-namespaces-refuses-namespaces-outside-read-scopes",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.SCALE_WORKLOAD, autonomy="auto")),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.TARGET_OUT_OF_SCOPE,
            deviation=True,
            read_namespaces=(),
            message="(allowed (from its read scopes): none)",
        ),
        id="no-target-namespaces-anywhere-puts-every-target-out-of-scope",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, namespace="payments", replicas=4, evidence=False),
            DEPLOYMENT_3,
            OUT.DENY,
            R.TARGET_OUT_OF_SCOPE,
            deviation=True,
        ),
        id="out-of-scope-without-evidence-is-still-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.DELETE_POD, severities=["SEV1"])),
            make_spec(A.DELETE_POD, K.POD, name="frontend-7d9c-x2"),
            blast.TargetFacts(kind=K.POD),
            OUT.DENY,
            R.SEVERITY_NOT_ALLOWED,
            deviation=True,
            message="=spec.sessionRef: incident INC-7 has severity SEV2; delete-pod in grant "
            "'sre-bot' may be requested only for severities SEV1",
        ),
        id="severity-excluded-by-the-entry-is-denied-and-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.SEVERITY_NOT_ALLOWED,
            deviation=True,
            incident=incident(severity="SEV3"),
            message="only for severities SEV1, SEV2",
        ),
        id="severity-no-longer-in-a-narrowed-grant-is-denied",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.RESTART_WORKLOAD, classes=["crashloop"])),
            make_spec(A.RESTART_WORKLOAD),
            DEPLOYMENT_3,
            OUT.DENY,
            R.CLASS_NOT_ALLOWED,
            deviation=True,
            message="incident INC-7 has class 'latency'; restart-workload in grant 'sre-bot' "
            "may be requested only for classes crashloop",
        ),
        id="class-excluded-by-the-entry-is-denied-and-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant(
                SCALE_AUTO,
                incidents={"severities": ["SEV1", "SEV2"], "classes": ["capacity"]},
            ),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.CLASS_NOT_ALLOWED,
            deviation=True,
        ),
        id="entry-without-classes-inherits-the-grants-classes",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.CORDON_NODE, namespaces=["web"], autonomy="auto")),
            make_spec(A.CORDON_NODE, K.NODE, namespace=None, name="node-1"),
            blast.TargetFacts(kind=K.NODE, pods_on_node=12),
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
            message="cordon-node of Node node-1 evicts no pods (12 pods keep running on the "
            "node; reversible)",
        ),
        id="node-action-ignores-target-namespaces-and-evicts-nothing",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.UNCORDON_NODE)),
            make_spec(A.UNCORDON_NODE, K.NODE, namespace=None, name="node-1"),
            blast.TargetFacts(kind=K.NODE),
            OUT.NEEDS_APPROVAL,
            R.APPROVAL_REQUIRED,
            required=1,
            read_namespaces=(),
        ),
        id="node-action-needs-no-read-namespaces",
    ),
    # --- malformed, stale or incomplete: denied, not deviations --------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, K.DAEMON_SET, replicas=4),
            blast.TargetFacts(kind=K.DAEMON_SET),
            OUT.DENY,
            R.TARGET_KIND_MISMATCH,
            message="=spec.action.target.kind: scale-workload acts on Deployment or "
            "StatefulSet, not on DaemonSet",
        ),
        id="scale-of-a-daemonset-is-a-kind-mismatch",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, K.NODE, namespace=None, replicas=4),
            blast.TargetFacts(kind=K.NODE),
            OUT.DENY,
            R.TARGET_KIND_MISMATCH,
        ),
        id="namespaced-action-on-a-node-is-a-kind-mismatch",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.CORDON_NODE)),
            make_spec(A.CORDON_NODE, namespace="payments"),
            DEPLOYMENT_3,
            OUT.DENY,
            R.TARGET_KIND_MISMATCH,
        ),
        id="node-action-on-a-deployment-is-a-kind-mismatch",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD),
            DEPLOYMENT_3,
            OUT.DENY,
            R.INVALID_PARAMS,
            message="=spec.action.params.replicas: scale-workload needs the desired replica count",
        ),
        id="scale-without-replicas-is-invalid",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            blast.TargetFacts(),
            OUT.DENY,
            R.TARGET_NOT_FOUND,
            message="=spec.action.target: Deployment web/frontend does not exist",
        ),
        id="missing-target-is-denied",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.ROLLBACK_DEPLOYMENT)),
            make_spec(A.ROLLBACK_DEPLOYMENT, toRevision=4),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_pods=3, previous_revision_exists=False),
            OUT.DENY,
            R.REVISION_NOT_FOUND,
            message="=spec.action.params.toRevision: Deployment web/frontend has no revision 4 "
            "to roll back to",
        ),
        id="rollback-to-a-missing-revision-is-denied",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4, evidence=False),
            DEPLOYMENT_3,
            OUT.DENY,
            R.EVIDENCE_REQUIRED,
            message="=spec.evidence: scale-workload in grant 'sre-bot' requires evidence; "
            "attach at least one item (log, metric, trace, event, query) supporting the "
            "hypothesis",
        ),
        id="missing-evidence-is-denied-as-incomplete-not-a-deviation",
    ),
    pytest.param(
        Case(
            make_grant({**SCALE_AUTO, "requireEvidence": False}),
            make_spec(A.SCALE_WORKLOAD, replicas=4, evidence=False),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="evidence-optional-when-the-entry-does-not-require-it",
    ),
    # --- rollbacks: the recorded inverse, same rules -------------------------------------------
    pytest.param(
        Case(
            make_grant(entry(A.SCALE_WORKLOAD, autonomy="auto", limits={"maxReplicasDelta": 3})),
            make_spec(A.SCALE_WORKLOAD, replicas=3, rollback_of="scale-up-1"),
            blast.TargetFacts(kind=K.DEPLOYMENT, current_replicas=6),
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
            message="=rollback of 'scale-up-1': scale-workload of Deployment web/frontend "
            "scales from 6 to 3 replicas (delta -3, 3 pods affected, reversible): within the "
            "auto limits of scale-workload in grant 'sre-bot'; applied without a human",
        ),
        id="rollback-of-a-scale-is-decided-as-a-scale",
    ),
    pytest.param(
        Case(
            make_grant(entry(A.CORDON_NODE)),
            make_spec(A.UNCORDON_NODE, K.NODE, namespace=None, rollback_of="cordon-1"),
            blast.TargetFacts(kind=K.NODE),
            OUT.NO_POLICY,
            R.ACTION_NOT_ALLOWED,
            deviation=True,
            message="rollback of 'cordon-1': spec.action.type",
        ),
        id="rollback-whose-inverse-the-grant-does-not-cover-is-no-policy",
    ),
    # --- several entries for one action type -----------------------------------------------------
    pytest.param(
        Case(
            make_grant(SCALE_PROPOSE, SCALE_AUTO),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="several-entries-the-most-favourable-wins",
    ),
    pytest.param(
        Case(
            make_grant(SCALE_AUTO, entry(A.SCALE_WORKLOAD, namespaces=["web"], autonomy="never")),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.DENY,
            R.AUTONOMY_NEVER,
            deviation=True,
            message="(other requestable actions: none)",
        ),
        id="several-entries-a-never-covering-the-target-wins",
    ),
    pytest.param(
        Case(
            make_grant(
                SCALE_AUTO, entry(A.SCALE_WORKLOAD, namespaces=["payments"], autonomy="never")
            ),
            make_spec(A.SCALE_WORKLOAD, replicas=4),
            DEPLOYMENT_3,
            OUT.ALLOW_AUTO,
            R.AUTO_APPROVED,
        ),
        id="several-entries-a-never-elsewhere-does-not-block",
    ),
    pytest.param(
        Case(
            make_grant(
                entry(A.SCALE_WORKLOAD, namespaces=["payments"], requireEvidence=False),
                SCALE_AUTO,
            ),
            make_spec(A.SCALE_WORKLOAD, replicas=4, evidence=False),
            DEPLOYMENT_3,
            OUT.DENY,
            R.EVIDENCE_REQUIRED,
        ),
        id="several-entries-an-in-scope-denial-is-not-a-deviation",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_decide(case: Case) -> None:
    decision = remediation.decide(
        case.grant,
        case.phase,
        case.incident,
        "incidents",
        case.read_namespaces,
        case.spec,
        case.facts,
        grant_name="sre-bot",
    )
    assert (decision.outcome, decision.reason) == (case.outcome, case.reason), decision.message
    assert decision.deviation is case.deviation
    assert decision.required_approvals == case.required
    if case.message.startswith("="):
        assert decision.message == case.message[1:]
    else:
        assert case.message in decision.message
    assert decision.risk_class == blast.risk_class(case.spec.action.type)


def test_every_reason_code_has_a_case() -> None:
    covered = {p.values[0].reason for p in CASES if isinstance(p.values[0], Case)}
    assert covered == set(remediation.Reason)


@pytest.mark.parametrize(
    ("outcome", "phase"),
    [
        pytest.param(OUT.ALLOW_AUTO, request.RequestPhase.APPROVED, id="auto-is-approved"),
        pytest.param(
            OUT.NEEDS_APPROVAL, request.RequestPhase.AWAITING_APPROVAL, id="approval-is-awaited"
        ),
        pytest.param(OUT.DENY, request.RequestPhase.DENIED, id="deny-is-denied"),
        pytest.param(OUT.NO_POLICY, request.RequestPhase.DENIED, id="no-policy-is-never-an-allow"),
    ],
)
def test_phase_of_outcome(outcome: remediation.Outcome, phase: request.RequestPhase) -> None:
    decision = remediation.Decision(outcome, R.AUTO_APPROVED, "", blast.RiskClass.REVERSIBLE)
    assert decision.phase is phase


def test_blast_radius_is_reported_with_the_decision() -> None:
    decision = remediation.decide(
        make_grant(SCALE_AUTO),
        session.SessionPhase.ACTIVE,
        incident(),
        "incidents",
        READ_NAMESPACES,
        make_spec(A.SCALE_WORKLOAD, replicas=6),
        DEPLOYMENT_3,
    )
    assert decision.blast_radius == request.BlastRadius(
        pods_affected=3, replicas_delta=3, reversible=True
    )
    assert "in the grant (auto limit)" in decision.message
