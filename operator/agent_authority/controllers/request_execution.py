"""Approving and applying a RemediationRequest: approvals tallied, authority verified again at
apply time, the change applied once, the inverse recorded, rollbacks marked.

The critical path of an approval, from the drive's fresh reads to ``Succeeded``: the request,
its session and grant read at once (``request_facts.read``), and the target planned (one read)
beside them (:func:`plan_ahead`, from the watch event's body; used only when the request as read
has the same inputs, else planned again); the
dry-run beside every approver's SubjectAccessReview (and the read of the grant's selected
namespaces); one status write that commits the approval and starts the apply (``Applying`` with
``Approved`` set, ``policy.request_records``); the approval's audit record; the change; the
``Succeeded`` write; then the Events. The benchmark's floor (``bench/remediation.py``) runs this
same code on a copy of the CRD, so it makes exactly these calls.

Crash safety: ``Applying`` is committed before the change is made, together with the approval
when it was decided in this drive; a crash after that write and before the approval's record
leaves a request in ``Applying`` whose ``Approved`` condition is not in the trail yet: a
restarted operator records it (``request_status.record_committed``, on resume and again right
before an interrupted apply goes on) before it makes the change. A crash before that write
leaves the request as it was (``AwaitingApproval`` with its approvals, or ``Pending``): it is
decided again from scratch.
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import datetime
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import kopf

from agent_authority import failpoints, metrics
from agent_authority.actions import base as actions
from agent_authority.actions import registry
from agent_authority.controllers import handling, request_facts, request_status
from agent_authority.kube import access, api, lineage, resources
from agent_authority.models import GROUP, base, grant, request, session
from agent_authority.policy import approvals, blast, conditions, drift, remediation

P = request.RequestPhase
T = TypeVar("T")
U = TypeVar("U")


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


async def tally(
    kube: api.Kube,
    body: api.Json,
    operator: str,
    *,
    known: request_facts.Context | None = None,
    ahead: Ahead | None = None,
) -> None:
    """Count the approvals of a waiting request and move it on when decided: denied, or approved
    and applied in the same drive (the approval is committed by the write that starts the
    apply, :func:`apply`)."""
    if request_status.phase(body) != P.AWAITING_APPROVAL.value:
        return
    status = request_status.status(body)
    given = [request.Approval.model_validate(a) for a in status.get("approvals", [])]
    if not given:
        return
    session_body, grant_body, missing = await request_facts.context(kube, body, known)
    if missing is not None or session_body is None or grant_body is None:
        await _fail(kube, body, "SessionOrGrantNotFound", f"{missing}; nothing was applied")
        return
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    try:
        excluded = await _excluded(kube, body, session_body, grant_spec)
    except _Refused as e:
        await _fail(kube, body, e.reason, e.message)
        return
    result = approvals.tally(
        given, int(status.get("requiredApprovals") or 1), ignored=excluded | {operator}
    )
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
        # The session and grant just read decide the apply too: a session ending meanwhile
        # cancels the request, which the resourceVersion of the Applying transition then sees.
        await apply(
            kube,
            body,
            operator,
            known=(session_body, grant_body, None),
            approval=request_status.Passing(P.APPROVED, "Approved", result.message),
            excluded=excluded,
            ahead=ahead,
        )


async def _fail(
    kube: api.Kube,
    body: api.Json,
    reason: str,
    message: str,
    *,
    passing: request_status.Passing | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    await request_status.transition(
        kube, body, P.FAILED, reason, message, warning=True, passing=passing, extra=extra
    )


async def _verify_authority(
    kube: api.Kube,
    body: api.Json,
    spec: request.RemediationRequestSpec,
    facts: blast.TargetFacts,
    operator: str,
    known: request_facts.Context | None = None,
    excluded: set[str] | None = None,
) -> str:
    """Re-decide the request as things are now; the message of what allows it, or ``_Refused``.

    Session and grant read again (or ``known``, when the caller read them after the request's
    last change); the policy decides again on the fresh target facts; a request that needs
    approval has its ``status.approvals`` counted again against the grant's current requirement,
    every approver re-authorized with a SubjectAccessReview (all at once, beside the read of the
    grant's namespaces; ``excluded``: the lineage identities when the caller just worked them out
    from the same session).
    """
    session_body, grant_body, missing = await request_facts.context(kube, body, known)
    if missing is not None or session_body is None or grant_body is None:
        raise _Refused("SessionOrGrantNotFound", f"{missing}; nothing was applied")
    grant_name = grant_body["metadata"]["name"]
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    session_spec = session.IncidentSessionSpec.model_validate(session_body["spec"])
    given = [
        request.Approval.model_validate(a) for a in request_status.status(body).get("approvals", [])
    ]
    if excluded is None:
        excluded = await _excluded(kube, body, session_body, grant_spec)
    excluded = excluded | {operator}
    candidates = sorted(
        {
            a.approver.username: a.approver
            for a in given
            if a.approver is not None and a.approver.username not in excluded
        }.items()
    )

    async def authorized(who: base.UserInfo) -> bool:
        return await access.allowed(
            kube,
            base.UserInfo(username=who.username, groups=list(who.groups)),
            verb="approve",
            group=GROUP,
            resource="agentgrants",
            name=grant_name,
        )

    read_namespaces, verdicts = await asyncio.gather(
        request_facts.read_namespaces(kube, grant_spec),
        asyncio.gather(*[authorized(who) for _, who in candidates]),
    )
    decision = remediation.decide(
        grant_spec,
        request_facts.session_phase(spec, session_body),
        session_spec.incident,
        body["metadata"]["namespace"],
        read_namespaces,
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
    unauthorized = {name for (name, _), ok in zip(candidates, verdicts, strict=True) if not ok}
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


@dataclasses.dataclass
class Ahead:
    """The target of a request planned beside the drive's fresh reads (:func:`plan_ahead`), and
    what it was planned from: used only when the request as read has the same inputs."""

    task: asyncio.Task[actions.Plan]
    action: request.Action
    request_uid: str
    requested_at: datetime.datetime
    pinned: request.Pinned | None
    used: bool = False

    def take(
        self,
        action: request.Action,
        request_uid: str,
        requested_at: datetime.datetime,
        pinned: request.Pinned | None,
    ) -> asyncio.Task[actions.Plan] | None:
        """The plan, when the request as read has the inputs it was planned from."""
        same = (self.action, self.request_uid, self.requested_at, self.pinned) == (
            action,
            request_uid,
            requested_at,
            pinned,
        )
        if not same or self.used:
            return None
        self.used = True
        return self.task

    def discard(self) -> None:
        """Stop a plan nobody used (and retrieve its error, if it had one)."""
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()


def plan_ahead(kube: api.Kube, hint: collections.abc.Mapping[str, Any]) -> Ahead | None:
    """Start planning the target of a request seen waiting with approvals (``hint``: the body of
    the watch event): its plan reads the target while the drive reads the request, its session
    and its grant. ``None`` for any other request, or one whose spec cannot be read."""
    status = hint.get("status")
    if not isinstance(status, collections.abc.Mapping):
        return None
    if status.get("phase") != P.AWAITING_APPROVAL.value or not status.get("approvals"):
        return None
    try:
        spec = request.RemediationRequestSpec.model_validate(dict(hint["spec"]))
        pinned = request.Pinned.model_validate(status["pinned"]) if status.get("pinned") else None
        uid = str(hint["metadata"]["uid"])
        created = datetime.datetime.fromisoformat(str(hint["metadata"]["creationTimestamp"]))
    except (KeyError, TypeError, ValueError):
        return None
    module = registry.get(spec.action.type)
    task = asyncio.ensure_future(
        module.plan(kube, spec.action, request_uid=uid, requested_at=created, pinned=pinned)
    )
    return Ahead(task, spec.action, uid, created, pinned)


async def _both(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Both at once; an error of ``first`` wins over one of ``second`` (as in sequence)."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


async def apply(
    kube: api.Kube,
    body: api.Json,
    operator: str = "",
    *,
    known: request_facts.Context | None = None,
    approval: request_status.Passing | None = None,
    reviewed: dict[str, Any] | None = None,
    excluded: set[str] | None = None,
    ahead: Ahead | None = None,
) -> None:
    """Apply an approved request exactly once, after checking it again (module docstring).

    ``known``: the session and grant when the caller has just read them. ``approval``: the
    approval the caller has just decided (by people, or by policy for an ``auto`` request): it is
    committed by the write that starts the apply (``Applying`` with ``Approved`` set), or by the
    ``Failed`` write when the apply-time check refuses; its audit record is written right after
    that write and before the change is made. ``reviewed``: what the evaluation recorded in the
    same drive (diff, blast radius, target uid, inverse, pinned), written with that status.
    ``ahead``: the target planned beside the drive's reads, used when planned from what the
    request as read says. The Events of the transitions are posted once the last status is
    written.
    """
    status = request_status.status(body)
    if approval is None and not conditions.is_true(status.get("conditions"), "Approved"):
        handling.event(body, reason="WaitingForApproval", message="not applied: not approved")
        return
    if reviewed is not None:
        status = {**status, **reviewed}
    spec = request.RemediationRequestSpec.model_validate(body["spec"])
    resuming = request_status.phase(body) == P.APPLYING.value
    module = registry.get(spec.action.type)
    started = time.monotonic()
    pinned = request.Pinned.model_validate(status["pinned"]) if status.get("pinned") else None
    later: request_status.Later = []
    try:
        try:
            planned = (
                ahead.take(
                    spec.action, body["metadata"]["uid"], request_status.created(body), pinned
                )
                if ahead is not None
                else None
            )
            plan = await (
                planned
                if planned is not None
                else module.plan(
                    kube,
                    spec.action,
                    request_uid=body["metadata"]["uid"],
                    requested_at=request_status.created(body),
                    pinned=pinned,
                )
            )
            if resuming:
                diff = await module.dry_run(kube, plan)
                if diff:  # not in place yet: check again before making the change
                    await _verify_authority(kube, body, spec, plan.facts, operator, known)
            else:
                diff, _ = await _both(
                    module.dry_run(kube, plan),
                    _verify_authority(kube, body, spec, plan.facts, operator, known, excluded),
                )
            changed = drift.target_drift(
                target=actions.label(spec.action.target),
                reviewed_uid=status.get("targetUid"),
                uid=plan.target_uid,
                reviewed_diff=[
                    request.FieldChange.model_validate(c) for c in status.get("diff", [])
                ],
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
                    f"{changed}; nothing was applied: create a new request for the target as "
                    "it is now",
                )
            if not resuming:
                await request_status.transition(
                    kube,
                    body,
                    P.APPLYING,
                    "Applying",
                    "applying the approved change",
                    extra=reviewed,
                    passing=approval,
                    later=later,
                )
            else:
                # An apply interrupted after its approval was committed: that decision's record
                # is in the trail before the change is made (a no-op when it is there already).
                await request_status.record_committed(body)
            failpoints.hit(failpoints.BEFORE_APPLY)
            message = await module.apply(kube, plan)
            failpoints.hit(failpoints.AFTER_APPLY)
        except _Refused as e:
            await _fail(kube, body, e.reason, e.message, **_uncommitted(body, approval, reviewed))
            return
        except actions.TargetNotFound as e:
            if resuming and spec.action.type is grant.ActionType.DELETE_POD:
                message = f"already applied before a restart: {e}"
            else:
                await _fail(
                    kube,
                    body,
                    e.reason,
                    f"{e}; nothing was applied",
                    **_uncommitted(body, approval, reviewed),
                )
                return
        except actions.ActionError as e:
            if e.retryable:
                raise kopf.TemporaryError(str(e), delay=2) from e
            await _fail(kube, body, e.reason, str(e), **_uncommitted(body, approval, reviewed))
            return
        metrics.APPLY_DURATION.labels(spec.action.type.value).observe(time.monotonic() - started)
        await request_status.transition(
            kube,
            body,
            P.SUCCEEDED,
            "Applied",
            message,
            extra={"appliedAt": request_status.iso(request_status.now())},
            later=later,
        )
    finally:
        request_status.post(later)  # the Events, after the last status write
    if spec.rollback_of is not None:
        await _mark_rolled_back(kube, body, spec.rollback_of.name, message)


def _uncommitted(
    body: api.Json, approval: request_status.Passing | None, reviewed: dict[str, Any] | None
) -> dict[str, Any]:
    """What a ``Failed`` write must commit besides the failure: the approval decided in this
    drive and what the evaluation recorded with it, while no write has committed them yet (the
    request is not ``Applying``)."""
    if approval is None or request_status.phase(body) == P.APPLYING.value:
        return {}
    return {"passing": approval, "extra": reviewed}


async def _mark_rolled_back(kube: api.Kube, body: api.Json, name: str, message: str) -> None:
    for _ in range(5):
        original = await resources.get_request(
            kube, body["metadata"]["namespace"], name, group=request_status.group_of(body)
        )
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
