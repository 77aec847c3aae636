"""RemediationRequest handlers: evaluate, dry-run, await approval, apply once, record the inverse.

Phases: ``Pending`` → ``Denied`` | ``AwaitingApproval`` | ``Approved`` → ``Applying`` →
``Succeeded`` | ``Failed``; also ``Expired`` (no decision in time), ``Cancelled`` (its session
ended first) and ``RolledBack`` (a rollback request undid it).

Never twice: the phase is persisted as ``Applying`` before the change is made, and every action
is idempotent, so an operator killed mid-apply finishes the same change on restart instead of
making another one. Every status transition is conditional on the ``resourceVersion`` it was
decided on (``request_status``), so expiry, cancellation, approval and apply cannot race, and
each handler decides on a fresh read.

What was reviewed is recorded in the request's status at evaluation (written by the operator
only): the target's uid, the dry-run diff, the blast radius, the inverse, and what the plan
resolved (``status.pinned``: a rollback's revision). Nothing is read back from annotations on the
target.

The executor trusts no ``Approved`` condition. At apply time it reads the session and grant
again, re-decides the request under the grant as it is now (session still Active, action still
allowed), re-counts ``status.approvals`` against the grant's current requirement (each approver
re-authorized by RBAC, none of them the requester, an identity of the request's session or of any
ancestor session, or the operator), plans the target again and compares its uid, diff and blast
radius with what was reviewed. Any mismatch is a terminal phase whose condition says why.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import kopf
import pydantic

from agent_authority import failpoints, metrics
from agent_authority.actions import base as actions
from agent_authority.actions import registry
from agent_authority.audit import trail
from agent_authority.controllers import handling, request_status, sessions
from agent_authority.kube import access, api, lineage, resources
from agent_authority.models import GROUP, VERSION, base, grant, request, session
from agent_authority.policy import approvals, blast, conditions, drift, invalid, rbac, remediation

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
    if original["spec"]["sessionRef"]["name"] != spec.session_ref.name:
        return (
            f"spec.sessionRef: a rollback belongs to the session of the request it undoes "
            f"({original['spec']['sessionRef']['name']!r}), not {spec.session_ref.name!r}: it "
            "is judged under that session's grant and approval rules"
        )
    if request_status.phase(original) != P.SUCCEEDED.value:
        return (
            f"spec.rollbackOf: request {spec.rollback_of.name!r} is "
            f"{request_status.phase(original)}; only a Succeeded request can be rolled back"
        )
    inverse = request_status.status(original).get("inverse")
    if not inverse:
        return (
            f"spec.rollbackOf: request {spec.rollback_of.name!r} has no recorded inverse "
            "(status.inverse), so it cannot be undone"
        )
    if request.Action.model_validate(inverse["action"]) != spec.action:
        return (
            "spec.action: a rollback must carry exactly the recorded inverse of "
            f"{spec.rollback_of.name!r} (status.inverse.action)"
        )
    return None


def _session_phase(
    spec: request.RemediationRequestSpec, session_body: api.Json
) -> session.SessionPhase:
    """The session's phase, as the policy sees it for this request.

    A person's rollback (its requester is neither the session's own identity nor whoever opened
    the session) undoes an applied change after the incident, usually when the session has ended:
    it is judged as if the session were Active, under the same grant. An agent's rollback is a
    request of its session like any other.
    """
    status = request_status.status(session_body)
    phase = session.SessionPhase(status.get("phase") or "Pending")
    account = status.get("serviceAccountName")
    ns = session_body["metadata"]["namespace"]
    agents = {
        f"{lineage.SA_PREFIX}{ns}:{account}" if account else "",
        str((session_body["spec"].get("requester") or {}).get("username", "")),
    } - {""}
    requester = spec.requester.username if spec.requester else None
    if spec.rollback_of is not None and requester is not None and requester not in agents:
        return session.SessionPhase.ACTIVE
    return phase


async def _read_namespaces(kube: api.Kube, grant_spec: grant.AgentGrantSpec) -> list[str]:
    resolved = await resources.resolve_selectors(kube, grant_spec.read)
    return sorted({r.namespace for r in rbac.compile_rules(grant_spec.read, resolved)})


async def evaluate(kube: api.Kube, body: api.Json, operator: str = "") -> None:
    """Decide a new request: deny it, ask for approval (with a dry-run diff), or auto-apply it."""
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
    session_phase = _session_phase(spec, session_body)
    read_namespaces = await _read_namespaces(kube, grant_spec)
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
        await request_status.transition(
            kube,
            body,
            P.APPROVED,
            decision.reason.value,
            decision.message,
            condition="Approved",
            extra=recorded,
        )
        await apply(kube, body, operator)
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
    session_body, grant_body, missing = await _context(kube, body)
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
        await apply(kube, body, operator)


async def _fail(kube: api.Kube, body: api.Json, reason: str, message: str) -> None:
    await request_status.transition(kube, body, P.FAILED, reason, message, warning=True)


async def _verify_authority(
    kube: api.Kube,
    body: api.Json,
    spec: request.RemediationRequestSpec,
    facts: blast.TargetFacts,
    operator: str,
) -> str:
    """Re-decide the request as things are now; the message of what allows it, or ``_Refused``.

    Session and grant read again; the policy decides again on the fresh target facts; a request
    that needs approval has its ``status.approvals`` counted again against the grant's current
    requirement, every approver re-authorized with a SubjectAccessReview.
    """
    session_body, grant_body, missing = await _context(kube, body)
    if missing is not None or session_body is None or grant_body is None:
        raise _Refused("SessionOrGrantNotFound", f"{missing}; nothing was applied")
    grant_name = grant_body["metadata"]["name"]
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    session_spec = session.IncidentSessionSpec.model_validate(session_body["spec"])
    decision = remediation.decide(
        grant_spec,
        _session_phase(spec, session_body),
        session_spec.incident,
        body["metadata"]["namespace"],
        await _read_namespaces(kube, grant_spec),
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


async def apply(kube: api.Kube, body: api.Json, operator: str = "") -> None:
    """Apply an approved request exactly once, after checking it again (module docstring)."""
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
            await _verify_authority(kube, body, spec, plan.facts, operator)
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


def _expired(body: api.Json) -> bool:
    expires = request_status.status(body).get("expiresAt")
    return bool(expires) and datetime.datetime.fromisoformat(str(expires)) <= request_status.now()


async def reconcile(kube: api.Kube, body: api.Json, operator: str) -> None:
    phase = request_status.phase(body)
    if phase in (None, P.PENDING.value):
        await evaluate(kube, body, operator)
    elif phase == P.AWAITING_APPROVAL.value:
        if _expired(body):
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
        await apply(kube, body, operator)


_locks: dict[str, asyncio.Lock] = {}
ATTEMPTS = 5


async def drive(kube: api.Kube, namespace: str, name: str, uid: str, operator: str) -> None:
    """Reconcile the request as stored now; decide again on a fresh read when a transition was
    superseded. One request is driven by one handler at a time in this process."""
    lock = _locks.setdefault(uid, asyncio.Lock())
    async with lock:
        for _ in range(ATTEMPTS):
            body = await resources.get_request(kube, namespace, name)
            if body is None or body["metadata"].get("uid") != uid:
                return
            body.setdefault("status", {})
            try:
                await reconcile(kube, body, operator)
                return
            except request_status.Superseded:
                continue
    raise kopf.TemporaryError(f"request {namespace}/{name} kept changing; trying again", delay=1)


# -- kopf wiring ---------------------------------------------------------------------------------


def _operator(memo: Any) -> str:
    operator = getattr(memo, "operator", None)
    return str(operator.username) if operator is not None else ""


def _drive(body: kopf.Body, memo: Any) -> Any:
    meta = body["metadata"]
    return drive(api.default(), meta["namespace"], meta["name"], meta["uid"], _operator(memo))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def created(body: kopf.Body, memo: Any, **_: Any) -> None:
    await request_status.record_committed(handling.plain(body))  # a crash before its record
    await _drive(body, memo)


@kopf.on.event(
    GROUP, VERSION, PLURAL, when=lambda status, **_: status.get("phase") == "AwaitingApproval"
)
@handling.translating
async def approvals_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """Approvals arrive as status writes, which kopf's change handlers do not see: watch events."""
    await _drive(body, memo)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (P.APPROVED.value, P.APPLYING.value)


@kopf.timer(GROUP, VERSION, PLURAL, interval=3.0, when=_unfinished)
@handling.translating
async def unfinished(body: kopf.Body, memo: Any, **_: Any) -> None:
    """An approved or applying request whose apply was interrupted is driven on until done."""
    await _drive(body, memo)


def _awaiting(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == P.AWAITING_APPROVAL.value


@kopf.daemon(GROUP, VERSION, PLURAL, when=_awaiting, cancellation_timeout=5.0)
@handling.translating
async def approval_deadline(
    body: kopf.Body, memo: Any, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Expire a request that is still waiting for approval at ``status.expiresAt``."""
    expires = (body.get("status") or {}).get("expiresAt")
    if not expires:
        return
    left = (datetime.datetime.fromisoformat(expires) - request_status.now()).total_seconds()
    await stopped.wait(max(0.0, left))
    if stopped:
        return
    await _drive(body, memo)
