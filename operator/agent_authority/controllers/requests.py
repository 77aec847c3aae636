"""RemediationRequest handlers: evaluate, dry-run, await approval, apply once, record the inverse.

Phases: ``Pending`` → ``Denied`` | ``AwaitingApproval`` | ``Approved`` → ``Applying`` →
``Succeeded`` | ``Failed``; also ``Expired`` (no decision in time), ``Cancelled`` (its session
ended first) and ``RolledBack`` (a rollback request undid it).

Never twice: the phase is persisted as ``Applying`` before the change is made, and every action
is idempotent and leaves a marker on its target, so an operator killed mid-apply finishes the
same change on restart instead of making another one. The executor refuses to act until the
``Approved`` condition is True. The target is planned again at apply time; if what would change
differs from what was reviewed, the request fails rather than apply something nobody approved.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import kopf

from agent_authority import failpoints, metrics
from agent_authority.actions import base as actions
from agent_authority.actions import registry
from agent_authority.audit import trail
from agent_authority.controllers import handling, request_status, sessions
from agent_authority.kube import api, resources
from agent_authority.models import GROUP, VERSION, grant, request, session
from agent_authority.policy import approvals, conditions, rbac, remediation

PLURAL = "remediationrequests"
P = request.RequestPhase


# -- evaluation ----------------------------------------------------------------------------------


async def _context(
    kube: api.Kube, body: api.Json
) -> tuple[api.Json | None, api.Json | None, str | None]:
    """The request's session and grant (None when missing) and why, if something is missing."""
    meta, spec = body["metadata"], body["spec"]
    session_body = await resources.get_session(kube, meta["namespace"], spec["sessionRef"]["name"])
    if session_body is None:
        return None, None, f"spec.sessionRef: session {spec['sessionRef']['name']!r} not found"
    grant_name = session_body["spec"]["grantRef"]["name"]
    grant_body = await resources.get_grant(kube, grant_name)
    if grant_body is None:
        return session_body, None, f"grant {grant_name!r} of the session no longer exists"
    return session_body, grant_body, None


async def _rollback_problem(
    kube: api.Kube, body: api.Json, spec: request.RemediationRequestSpec
) -> str | None:
    assert spec.rollback_of is not None
    original = await resources.get_request(
        kube, body["metadata"]["namespace"], spec.rollback_of.name
    )
    if original is None:
        return f"spec.rollbackOf: request {spec.rollback_of.name!r} not found"
    if request_status.phase(original) != P.SUCCEEDED.value:
        return (
            f"spec.rollbackOf: request {spec.rollback_of.name!r} is "
            f"{request_status.phase(original)}; only a Succeeded request can be rolled back"
        )
    inverse = request_status.status(original).get("inverse")
    if not inverse:
        return f"spec.rollbackOf: request {spec.rollback_of.name!r} is not reversible"
    if request.Action.model_validate(inverse["action"]) != spec.action:
        return (
            "spec.action: a rollback must carry exactly the recorded inverse of "
            f"{spec.rollback_of.name!r} (status.inverse.action)"
        )
    return None


async def evaluate(kube: api.Kube, body: api.Json) -> None:
    """Decide a new request: deny it, ask for approval (with a dry-run diff), or auto-apply it."""
    spec = request.RemediationRequestSpec.model_validate(body["spec"])
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
    session_body, grant_body, missing = await _context(kube, body)
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
    if spec.rollback_of is not None and (problem := await _rollback_problem(kube, body, spec)):
        await request_status.transition(
            kube, body, P.DENIED, "InvalidRollback", problem, condition="Denied", warning=True
        )
        return
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    session_spec = session.IncidentSessionSpec.model_validate(session_body["spec"])
    session_phase = session.SessionPhase(
        request_status.status(session_body).get("phase") or "Pending"
    )
    if spec.rollback_of is not None:
        # Undoing an applied change is judged by the same rules, whoever's session it came from.
        session_phase = session.SessionPhase.ACTIVE
    resolved = await resources.resolve_selectors(kube, grant_spec.read)
    read_namespaces = sorted({r.namespace for r in rbac.compile_rules(grant_spec.read, resolved)})
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
    }
    if decision.outcome is remediation.Outcome.ALLOW_AUTO:
        await request_status.transition(
            kube,
            body,
            P.APPROVED,
            decision.reason.value,
            decision.message,
            condition="Approved",
            extra=recorded,
        )
        await apply(kube, body)
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
    if request_status.status(session_body).get("phase") != sessions.ACTIVE:
        return
    await sessions.revoke(
        kube,
        session_body,
        session.SessionPhase.REVOKED,
        "OutOfScopeRequest",
        f"RemediationRequest {body['metadata']['name']!r} was out of scope: "
        f"{decision.reason.value}: {decision.message}",
    )


# -- approval and application --------------------------------------------------------------------


async def _ignored(kube: api.Kube, body: api.Json) -> set[str]:
    """Identities whose approvals never count: the requester, its session, the operator."""
    ignored = {str((body["spec"].get("requester") or {}).get("username", ""))}
    session_body = await resources.get_session(
        kube, body["metadata"]["namespace"], body["spec"]["sessionRef"]["name"]
    )
    if session_body is not None:
        ignored.add(str((session_body["spec"].get("requester") or {}).get("username", "")))
        account = request_status.status(session_body).get("serviceAccountName")
        if account:
            ignored.add(f"system:serviceaccount:{body['metadata']['namespace']}:{account}")
    return ignored - {""}


async def tally(kube: api.Kube, body: api.Json, operator: str) -> None:
    """Count the approvals of a waiting request and move it on when decided."""
    fresh = await resources.get_request(
        kube, body["metadata"]["namespace"], body["metadata"]["name"]
    )
    if fresh is None or request_status.phase(fresh) != P.AWAITING_APPROVAL.value:
        return  # decided meanwhile (two handlers can see the same stale event)
    body = fresh
    status = request_status.status(body)
    given = [request.Approval.model_validate(a) for a in status.get("approvals", [])]
    if not given:
        return
    ignored = await _ignored(kube, body) | {operator}
    result = approvals.tally(given, int(status.get("requiredApprovals") or 1), ignored=ignored)
    waited = (request_status.now() - request_status.created(body)).total_seconds()
    if result.state is approvals.State.DENIED:
        metrics.APPROVAL_WAIT.observe(waited)
        await request_status.transition(
            kube,
            body,
            P.DENIED,
            "DeniedByApprover",
            result.message,
            condition="Denied",
            warning=True,
        )
    elif result.state is approvals.State.APPROVED:
        metrics.APPROVAL_WAIT.observe(waited)
        await request_status.transition(
            kube, body, P.APPROVED, "Approved", result.message, condition="Approved"
        )
        await apply(kube, body)


async def apply(kube: api.Kube, body: api.Json) -> None:
    """Apply an approved request exactly once (see the module docstring)."""
    if not conditions.is_true(request_status.status(body).get("conditions"), "Approved"):
        handling.event(body, reason="WaitingForApproval", message="not applied: not approved")
        return
    spec = request.RemediationRequestSpec.model_validate(body["spec"])
    resuming = request_status.phase(body) == P.APPLYING.value
    if not resuming:
        await request_status.transition(
            kube, body, P.APPLYING, "Applying", "applying the approved change"
        )
    module = registry.get(spec.action.type)
    started = time.monotonic()
    try:
        plan = await module.plan(
            kube,
            spec.action,
            request_uid=body["metadata"]["uid"],
            requested_at=request_status.created(body),
        )
        reviewed = request_status.status(body).get("blastRadius")
        if not plan.resumed and reviewed and plan.radius.to_api() != reviewed:
            await request_status.transition(
                kube,
                body,
                P.FAILED,
                "TargetChanged",
                f"the target changed since the request was reviewed (was {reviewed}, now "
                f"{plan.radius.to_api()}); nothing was applied: create a new request",
                warning=True,
            )
            return
        failpoints.hit(failpoints.BEFORE_APPLY)
        message = await module.apply(kube, plan)
        failpoints.hit(failpoints.AFTER_APPLY)
    except actions.TargetNotFound as e:
        if resuming and spec.action.type is grant.ActionType.DELETE_POD:
            message = f"already applied before a restart: {e}"
        else:
            await request_status.transition(kube, body, P.FAILED, e.reason, str(e), warning=True)
            return
    except actions.ActionError as e:
        if e.retryable:
            raise kopf.TemporaryError(str(e), delay=2) from e
        await request_status.transition(kube, body, P.FAILED, e.reason, str(e), warning=True)
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
        original = await resources.get_request(
            kube, body["metadata"]["namespace"], spec.rollback_of.name
        )
        if original is not None:
            await request_status.transition(
                kube,
                original,
                P.ROLLED_BACK,
                "RolledBack",
                f"undone by {body['metadata']['name']!r}: {message}",
            )


async def reconcile(kube: api.Kube, body: api.Json, operator: str) -> None:
    phase = request_status.phase(body)
    if phase in (None, P.PENDING.value):
        await evaluate(kube, body)
    elif phase == P.AWAITING_APPROVAL.value:
        expires = request_status.status(body).get("expiresAt")
        if expires and datetime.datetime.fromisoformat(expires) <= request_status.now():
            await request_status.transition(
                kube,
                body,
                P.EXPIRED,
                "ApprovalTimeout",
                "no decision before status.expiresAt; nothing was applied",
                warning=True,
            )
        else:
            await tally(kube, body, operator)
    elif phase in (P.APPROVED.value, P.APPLYING.value):
        await apply(kube, body)


# -- kopf wiring ---------------------------------------------------------------------------------


def _operator(memo: Any) -> str:
    operator = getattr(memo, "operator", None)
    return str(operator.username) if operator is not None else ""


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def created(body: kopf.Body, memo: Any, **_: Any) -> None:
    await reconcile(api.default(), handling.plain(body), _operator(memo))


@kopf.on.event(
    GROUP, VERSION, PLURAL, when=lambda status, **_: status.get("phase") == "AwaitingApproval"
)
@handling.translating
async def approvals_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """Approvals arrive as status writes, which kopf's change handlers do not see: watch events."""
    await tally(api.default(), handling.plain(body), _operator(memo))


def _awaiting(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == P.AWAITING_APPROVAL.value


@kopf.daemon(GROUP, VERSION, PLURAL, when=_awaiting, cancellation_timeout=5.0)
@handling.translating
async def approval_deadline(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Expire a request that is still waiting for approval at ``status.expiresAt``."""
    expires = (body.get("status") or {}).get("expiresAt")
    if not expires:
        return
    left = (datetime.datetime.fromisoformat(expires) - request_status.now()).total_seconds()
    await stopped.wait(max(0.0, left))
    if stopped:
        return
    kube = api.default()
    fresh = await resources.get_request(
        kube, body["metadata"]["namespace"], body["metadata"]["name"]
    )
    if fresh is not None and request_status.phase(fresh) == P.AWAITING_APPROVAL.value:
        await request_status.transition(
            kube,
            fresh,
            P.EXPIRED,
            "ApprovalTimeout",
            "no decision before status.expiresAt; nothing was applied",
            warning=True,
        )
