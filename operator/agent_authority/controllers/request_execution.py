"""Approving and applying a RemediationRequest: approvals tallied, authority verified again at
apply time, the change applied once, the inverse recorded, rollbacks marked.

Moved out of :mod:`requests` unchanged.
"""

from __future__ import annotations

import time

import kopf

from agent_authority import failpoints, metrics
from agent_authority.actions import base as actions
from agent_authority.actions import registry
from agent_authority.controllers import handling, request_facts, request_status
from agent_authority.kube import access, api, lineage, resources
from agent_authority.models import GROUP, base, grant, request, session
from agent_authority.policy import approvals, blast, conditions, drift, remediation

P = request.RequestPhase


class _Refused(Exception):
    """The executor will not apply: ``reason`` and ``message`` go to the terminal condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def _excluded(
    kube: api.Kube, body: api.Json, session_body: api.Json, grant_spec: grant.AgentGrantSpec
) -> set[str]:
    """Identities whose decisions never count: the requester, every identity acting for the
    request's session or an ancestor of it (``policy.approvals``); ``_Refused`` when the lineage
    cannot be established."""
    ns = body["metadata"]["namespace"]
    try:
        chain = await lineage.chain(kube, ns, session_body, grant_spec.session.max_sub_agent_depth)
    except lineage.LineageError as e:
        raise _Refused("LineageUnknown", f"{e}; nothing was applied") from e
    excluded = set(approvals.lineage_identities(lineage.identities(ns, chain)))
    excluded.add(str((body["spec"].get("requester") or {}).get("username", "")))
    return excluded - {""}


async def tally(kube: api.Kube, body: api.Json, operator: str) -> None:
    """Count the approvals of a waiting request and move it on when decided."""
    if request_status.phase(body) != P.AWAITING_APPROVAL.value:
        return
    status = request_status.status(body)
    given = [request.Approval.model_validate(a) for a in status.get("approvals", [])]
    if not given:
        return
    session_body, grant_body, missing = await request_facts.context(kube, body)
    if missing is not None or session_body is None or grant_body is None:
        await _fail(kube, body, "SessionOrGrantNotFound", f"{missing}; nothing was applied")
        return
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    try:
        ignored = await _excluded(kube, body, session_body, grant_spec) | {operator}
    except _Refused as e:
        await _fail(kube, body, e.reason, e.message)
        return
    result = approvals.tally(given, int(status.get("requiredApprovals") or 1), ignored=ignored)
    waited = (request_status.now() - request_status.created(body)).total_seconds()
    if result.state is approvals.State.DENIED:
        metrics.APPROVAL_WAIT.observe(waited)
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            "DeniedByApprover",
            f"{result.message}; nothing was applied",
            condition="Denied",
            warning=True,
        )
    elif result.state is approvals.State.APPROVED:
        metrics.APPROVAL_WAIT.observe(waited)
        await request_status.transition(
            kube, body, P.APPROVED, "Approved", result.message, condition="Approved"
        )
        # The session and grant just read decide the apply too: a session ending meanwhile
        # cancels the request, which the resourceVersion of the Applying transition then sees.
        await apply(kube, body, operator, context=(session_body, grant_body))


async def _fail(kube: api.Kube, body: api.Json, reason: str, message: str) -> None:
    await request_status.transition(kube, body, P.FAILED, reason, message, warning=True)


Context = tuple[api.Json, api.Json]
"""A request's session and grant, read by this drive of the request after its last change."""


async def _verify_authority(
    kube: api.Kube,
    body: api.Json,
    spec: request.RemediationRequestSpec,
    facts: blast.TargetFacts,
    operator: str,
    context: Context | None = None,
) -> str:
    """Re-decide the request as things are now; the message of what allows it, or ``_Refused``.

    Session and grant read again (or ``context``, when the caller read them after the request's
    last change); the policy decides again on the fresh target facts; a request that needs
    approval has its ``status.approvals`` counted again against the grant's current requirement,
    every approver re-authorized with a SubjectAccessReview.
    """
    session_body: api.Json | None
    grant_body: api.Json | None
    missing: str | None = None
    if context is not None:
        session_body, grant_body = context
    else:
        session_body, grant_body, missing = await request_facts.context(kube, body)
    if missing is not None or session_body is None or grant_body is None:
        raise _Refused("SessionOrGrantNotFound", f"{missing}; nothing was applied")
    grant_name = grant_body["metadata"]["name"]
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    session_spec = session.IncidentSessionSpec.model_validate(session_body["spec"])
    decision = remediation.decide(
        grant_spec,
        request_facts.session_phase(spec, session_body),
        session_spec.incident,
        body["metadata"]["namespace"],
        await request_facts.read_namespaces(kube, grant_spec),
        spec,
        facts,
        grant_name=grant_name,
    )
    if decision.outcome is remediation.Outcome.ALLOW_AUTO:
        return decision.message
    if decision.outcome is not remediation.Outcome.NEEDS_APPROVAL:
        raise _Refused(
            decision.reason.value,
            f"no longer allowed at apply time: {decision.message}; nothing was applied",
        )
    given = [
        request.Approval.model_validate(a) for a in request_status.status(body).get("approvals", [])
    ]
    excluded = await _excluded(kube, body, session_body, grant_spec) | {operator}
    unauthorized: set[str] = set()
    for approval in given:
        who = approval.approver
        if who is None or who.username in excluded or who.username in unauthorized:
            continue
        allowed = await access.allowed(
            kube,
            base.UserInfo(username=who.username, groups=list(who.groups)),
            verb="approve",
            group=GROUP,
            resource="agentgrants",
            name=grant_name,
        )
        if not allowed:
            unauthorized.add(who.username)
    counted = approvals.recount(
        given, decision.required_approvals, excluded=excluded, unauthorized=unauthorized
    )
    if not counted.approved:
        raise _Refused(
            "ApprovalNotVerified",
            "status says Approved, but the approvals do not add up under grant "
            f"{grant_name!r} now: {counted.message}; nothing was applied",
        )
    return counted.message


async def apply(
    kube: api.Kube, body: api.Json, operator: str = "", *, context: Context | None = None
) -> None:
    """Apply an approved request exactly once, after checking it again (module docstring);
    ``context`` is the session and grant when the caller has just read them."""
    if not conditions.is_true(request_status.status(body).get("conditions"), "Approved"):
        handling.event(body, reason="WaitingForApproval", message="not applied: not approved")
        return
    spec = request.RemediationRequestSpec.model_validate(body["spec"])
    status = request_status.status(body)
    resuming = request_status.phase(body) == P.APPLYING.value
    module = registry.get(spec.action.type)
    started = time.monotonic()
    pinned = request.Pinned.model_validate(status["pinned"]) if status.get("pinned") else None
    try:
        plan = await module.plan(
            kube,
            spec.action,
            request_uid=body["metadata"]["uid"],
            requested_at=request_status.created(body),
            pinned=pinned,
        )
        diff = await module.dry_run(kube, plan)
        in_place = resuming and not diff
        if not in_place:
            await _verify_authority(kube, body, spec, plan.facts, operator, context)
        changed = drift.target_drift(
            target=actions.label(spec.action.target),
            reviewed_uid=status.get("targetUid"),
            uid=plan.target_uid,
            reviewed_diff=[request.FieldChange.model_validate(c) for c in status.get("diff", [])],
            diff=diff,
            reviewed_radius=(
                request.BlastRadius.model_validate(status["blastRadius"])
                if status.get("blastRadius")
                else None
            ),
            radius=plan.radius,
            resuming=resuming,
        )
        if changed is not None:
            raise _Refused(
                "TargetChanged",
                f"{changed}; nothing was applied: create a new request for the target as it is now",
            )
        if not resuming:
            await request_status.transition(
                kube, body, P.APPLYING, "Applying", "applying the approved change"
            )
        failpoints.hit(failpoints.BEFORE_APPLY)
        message = await module.apply(kube, plan)
        failpoints.hit(failpoints.AFTER_APPLY)
    except _Refused as e:
        await _fail(kube, body, e.reason, e.message)
        return
    except actions.TargetNotFound as e:
        if resuming and spec.action.type is grant.ActionType.DELETE_POD:
            message = f"already applied before a restart: {e}"
        else:
            await _fail(kube, body, e.reason, f"{e}; nothing was applied")
            return
    except actions.ActionError as e:
        if e.retryable:
            raise kopf.TemporaryError(str(e), delay=2) from e
        await _fail(kube, body, e.reason, str(e))
        return
    metrics.APPLY_DURATION.labels(spec.action.type.value).observe(time.monotonic() - started)
    await request_status.transition(
        kube,
        body,
        P.SUCCEEDED,
        "Applied",
        message,
        extra={"appliedAt": request_status.iso(request_status.now())},
    )
    if spec.rollback_of is not None:
        await _mark_rolled_back(kube, body, spec.rollback_of.name, message)


async def _mark_rolled_back(kube: api.Kube, body: api.Json, name: str, message: str) -> None:
    for _ in range(5):
        original = await resources.get_request(kube, body["metadata"]["namespace"], name)
        if original is None or request_status.phase(original) != P.SUCCEEDED.value:
            return
        try:
            await request_status.transition(
                kube,
                original,
                P.ROLLED_BACK,
                "RolledBack",
                f"undone by {body['metadata']['name']!r}: {message}",
            )
            return
        except request_status.Superseded:
            continue
