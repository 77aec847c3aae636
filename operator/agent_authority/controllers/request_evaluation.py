"""Evaluating a new RemediationRequest: deny it, ask for approval (with a dry-run diff), or
auto-apply it; a denied request counts as a deviation of its session.

An ``auto`` request approved by policy is applied in the same drive: the approval is committed
by the write that starts the apply (``request_execution.apply``).
"""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from agent_authority import metrics
from agent_authority.actions import base as actions
from agent_authority.actions import registry
from agent_authority.audit import trail
from agent_authority.controllers import (
    request_execution,
    request_facts,
    request_status,
    session_fields,
    session_revocation,
)
from agent_authority.kube import api
from agent_authority.models import grant, request, session
from agent_authority.policy import approvals, invalid, remediation

P = request.RequestPhase


async def evaluate(
    kube: api.Kube,
    body: api.Json,
    operator: str = "",
    *,
    known: request_facts.Context | None = None,
) -> None:
    """Decide a new request: deny it, ask for approval (with a dry-run diff), or auto-apply it
    (``known``: its session and grant, when they were read with it)."""
    try:
        spec = request.RemediationRequestSpec.model_validate(body["spec"])
    except pydantic.ValidationError as e:
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            "InvalidSpec",
            f"the operator cannot read this request: {invalid.describe_invalid(e)}; nothing "
            "was evaluated",
            condition="Denied",
            warning=True,
        )
        return
    if spec.requester is None:
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            "NoAuthenticatedRequester",
            "spec.requester was not stamped by the admission webhook; the request cannot be "
            "attributed to a session identity",
            condition="Denied",
            warning=True,
        )
        return
    session_body, grant_body, missing = await request_facts.context(kube, body, known)
    if missing is not None or session_body is None or grant_body is None:
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            "SessionOrGrantNotFound",
            missing or "",
            condition="Denied",
            warning=True,
        )
        return
    if spec.rollback_of is not None and (
        problem := await request_facts.rollback_problem(kube, body, spec)
    ):
        await request_status.transition(
            kube, body, P.DENIED, "InvalidRollback", problem, condition="Denied", warning=True
        )
        return
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    session_spec = session.IncidentSessionSpec.model_validate(session_body["spec"])
    session_phase = request_facts.session_phase(spec, session_body)
    read_namespaces = await request_facts.read_namespaces(kube, grant_spec)
    module = registry.get(spec.action.type)
    plan: actions.Plan | None = None
    try:
        plan = await module.plan(
            kube,
            spec.action,
            request_uid=body["metadata"]["uid"],
            requested_at=request_status.created(body),
        )
        facts = plan.facts
    except actions.ActionError as e:
        if e.retryable:
            raise kopf.TemporaryError(str(e), delay=2) from e
        facts = e.facts
    decision = remediation.decide(
        grant_spec,
        session_phase,
        session_spec.incident,
        body["metadata"]["namespace"],
        read_namespaces,
        spec,
        facts,
        grant_name=grant_body["metadata"]["name"],
    )
    radius = decision.blast_radius.to_api() if decision.blast_radius else None
    if decision.phase is P.DENIED or plan is None:
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            decision.reason.value,
            decision.message,
            condition="Denied",
            warning=True,
            extra={"blastRadius": radius} if radius else None,
        )
        if decision.deviation and spec.rollback_of is None:
            await _deviation(kube, session_body, body, decision)
        return
    diff = await module.dry_run(kube, plan)
    recorded: dict[str, Any] = {
        "blastRadius": plan.radius.to_api(),
        "diff": [c.to_api() for c in diff],
        "inverse": plan.inverse.to_api() if plan.inverse else None,
        "requiredApprovals": decision.required_approvals,
        "targetUid": plan.target_uid,
        "pinned": plan.pinned.to_api() if plan.pinned else None,
    }
    if decision.outcome is remediation.Outcome.ALLOW_AUTO:
        # Approved by policy: committed by the write that starts the apply (or by its Failed),
        # after the apply-time checks, on the session and grant this drive just read.
        await request_execution.apply(
            kube,
            body,
            operator,
            known=(session_body, grant_body, None),
            approval=request_status.Passing(P.APPROVED, decision.reason.value, decision.message),
            reviewed=recorded,
        )
        return
    timeout = grant_spec.approval.timeout_seconds
    recorded["expiresAt"] = request_status.iso(
        approvals.expires_at(request_status.created(body), timeout)
    )
    await request_status.transition(
        kube,
        body,
        P.AWAITING_APPROVAL,
        "WaitingForApproval",
        f"{decision.message}; needs {decision.required_approvals} distinct approver(s) within "
        f"{timeout} s",
        extra=recorded,
    )


async def _deviation(
    kube: api.Kube, session_body: api.Json, body: api.Json, decision: remediation.Decision
) -> None:
    """An out-of-scope request revokes its session; the reason is recorded on both objects."""
    metrics.DEVIATIONS.labels("request").inc()
    await trail.TRAIL.arecord(
        trail.Event.DEVIATION_DETECTED,
        session_body,
        correlation_id=session_body["metadata"]["uid"],
        actor=str((body["spec"].get("requester") or {}).get("username", "unknown")),
        reason=decision.reason.value,
        message=decision.message,
        details={"request": body["metadata"]["name"]},
    )
    if request_status.status(session_body).get("phase") != session_fields.ACTIVE:
        return
    await session_revocation.revoke(
        kube,
        session_body,
        session.SessionPhase.REVOKED,
        "OutOfScopeRequest",
        f"RemediationRequest {body['metadata']['name']!r} was out of scope: "
        f"{decision.reason.value}: {decision.message}",
    )
