"""Writing a RemediationRequest's status: phase transitions, conditions, metrics and Events.

:func:`transition` is the one way a request changes phase. It sets the phase's condition and
``Ready``, writes the audit record of each decision (correlated by the session's uid), patches the
status subresource, counts the request in ``metrics.REQUESTS`` and emits an Event. The readers
(:func:`status`, :func:`phase`, :func:`created`) and the clock (:func:`now`, :func:`iso`) let the
request handlers read a body and stamp times the same way.

Every transition is conditional: the status patch carries the ``resourceVersion`` of the body the
decision was made on, so two writers (approval and expiry, cancellation and apply, an operator
restarted after a kill between its audit append and its status patch) can never both move the
request. The loser gets :class:`Superseded` and decides again on a fresh read. Conditions stay
truthful in every phase: ``Ready`` carries the reason and message of the phase the request is in.

The audit record of a decision is written only once its status patch is committed, so a
transition that loses a race records nothing, and before anything else happens to the request or
its target. One write may commit two decisions (``passing``: the approval on the way to
``Applying``, or to ``Failed`` when the apply-time check refuses it); their records follow in
order. :func:`record_committed` (on resume, and before an interrupted apply goes on) writes the
records of every decision the status commits (``policy.request_records``) if a crash came between
the patch and the records (record ids make that a no-op otherwise).

The request's API group is the one the apiserver returned it with (``apiVersion``): the
benchmark's floor drives requests of a copy of the CRD through this very code.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from agent_authority import failpoints, metrics
from agent_authority.audit import trail
from agent_authority.controllers import handling
from agent_authority.kube import api, errors, resources
from agent_authority.models import GROUP, request
from agent_authority.notify import notices, outbox
from agent_authority.policy import conditions, request_records

SESSION_UID_LABEL = "agentauthority.io/session-uid"
P = request.RequestPhase


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def status(body: api.Json) -> dict[str, Any]:
    return dict(body.get("status") or {})


def phase(body: api.Json) -> str | None:
    value = status(body).get("phase")
    return str(value) if value else None


def created(body: api.Json) -> datetime.datetime:
    value = body["metadata"].get("creationTimestamp")
    return datetime.datetime.fromisoformat(value) if value else now()


OPEN = frozenset({None, P.PENDING.value, P.AWAITING_APPROVAL.value, P.APPROVED.value})
"""Phases a request can still be cancelled in (nothing was changed on the target yet)."""


class Superseded(Exception):
    """The request changed since it was read: the transition did not happen; read it again."""


def group_of(body: api.Json) -> str:
    """The API group the request was read from (``agentauthority.io`` unless a copy's)."""
    version = str(body.get("apiVersion") or "")
    return version.partition("/")[0] if "/" in version else GROUP


@dataclasses.dataclass(frozen=True)
class Passing:
    """A decision committed by the same write as the next phase (``policy.request_records``)."""

    phase: request.RequestPhase
    reason: str
    message: str


Later = list[Callable[[], None]]
"""Events held back by a caller until its last status write (posted by :func:`post`)."""


def post(later: Later) -> None:
    """Post the Events held in ``later``, oldest first."""
    for send in later:
        send()
    later.clear()


async def _patch(kube: api.Kube, body: api.Json, update: dict[str, Any]) -> None:
    meta = body["metadata"]
    update.setdefault("observedGeneration", meta.get("generation"))
    version = meta.get("resourceVersion")
    if not version:
        raise Superseded(f"request {meta['name']!r} was read without a resourceVersion")
    try:
        patched = await resources.patch_request_status_at(
            kube, meta["namespace"], meta["name"], str(version), update, group=group_of(body)
        )
    except errors.Conflict as e:
        raise Superseded(f"request {meta['name']!r} changed since it was read") from e
    body["status"] = patched.get("status", update)
    meta["resourceVersion"] = (patched.get("metadata") or {}).get("resourceVersion", version)


async def fresh(kube: api.Kube, body: api.Json) -> api.Json | None:
    """The request as stored now (``None`` when deleted)."""
    meta = body["metadata"]
    return await resources.get_request(kube, meta["namespace"], meta["name"], group=group_of(body))


async def cancel(kube: api.Kube, body: api.Json, message: str) -> bool:
    """Cancel a request that is still open because its session ended; ``False`` when it was
    decided or started meanwhile (then it is left as it is)."""
    current: api.Json | None = body
    for _ in range(5):
        if current is None or phase(current) not in OPEN:
            return False
        try:
            await transition(
                kube,
                current,
                P.CANCELLED,
                "SessionEnded",
                f"{message}; nothing was applied",
                warning=True,
            )
            return True
        except Superseded:
            current = await fresh(kube, current)
    raise Superseded(f"request {body['metadata']['name']!r} kept changing while cancelling it")


def _cond(body: api.Json, type_: str, ok: bool, reason: str, message: str) -> list[dict[str, Any]]:
    return conditions.set_condition(
        status(body).get("conditions", []),
        type_=type_,
        status=ok,
        reason=reason,
        message=message,
        now=now(),
        generation=body["metadata"].get("generation"),
    )


def _action_label(body: api.Json) -> str:
    return str(body["spec"]["action"]["type"])


_EVENTS = {
    P.DENIED: trail.Event.REQUEST_DENIED,
    P.AWAITING_APPROVAL: trail.Event.REQUEST_EVALUATED,
    P.APPROVED: trail.Event.REQUEST_APPROVED,
    P.SUCCEEDED: trail.Event.REQUEST_APPLIED,
    P.FAILED: trail.Event.REQUEST_FAILED,
    P.EXPIRED: trail.Event.REQUEST_EXPIRED,
    P.CANCELLED: trail.Event.REQUEST_CANCELLED,
    P.ROLLED_BACK: trail.Event.REQUEST_ROLLED_BACK,
}


@metrics.counts_failures(metrics.AUDIT_TRAIL_WRITE_FAILURES)
async def _record(body: api.Json, to: request.RequestPhase, reason: str, message: str) -> None:
    """One audit record per decision about the request, correlated by its session's uid."""
    event = _EVENTS.get(to)
    if event is None:
        return  # Applying is a step, not a decision
    meta, spec = body["metadata"], body["spec"]
    approvers = [
        (a.get("approver") or {}).get("username", "") for a in status(body).get("approvals", [])
    ]
    actor = (
        approvers[-1]
        if reason in ("Approved", "DeniedByApprover") and approvers
        else ((spec.get("requester") or {}).get("username", "unknown"))
    )
    await trail.TRAIL.arecord(
        event,
        body,
        correlation_id=(meta.get("labels") or {}).get(SESSION_UID_LABEL)
        or f"{meta['namespace']}/{spec['sessionRef']['name']}",
        actor=str(actor),
        reason=reason,
        message=message,
        details={
            "session": spec["sessionRef"]["name"],
            "action": spec["action"]["type"],
            "target": f"{spec['action']['target']['kind']}/{spec['action']['target']['name']}",
            "approvers": [a for a in approvers if a] or None,
            "rollbackOf": (spec.get("rollbackOf") or {}).get("name"),
        },
    )


async def transition(
    kube: api.Kube,
    body: api.Json,
    to: request.RequestPhase,
    reason: str,
    message: str,
    *,
    condition: str | None = None,
    warning: bool = False,
    extra: dict[str, Any] | None = None,
    passing: Passing | None = None,
    later: Later | None = None,
) -> None:
    """Move the request to phase ``to``: conditions, audit record, status patch, metric, Event.

    ``condition`` (``Approved`` or ``Denied``) is set True with the same reason and message;
    ``Ready`` is True only in ``Succeeded`` and ``RolledBack``. ``extra`` fields are written to
    the status alongside the phase. ``passing``: a decision the same write commits first (its
    condition set with its own reason and message; its record, metric, Event and notice come
    before those of ``to``). ``later``: hold the Events there instead of posting them now.
    """
    update: dict[str, Any] = {"phase": to.value, "reason": reason, **(extra or {})}
    update["conditions"] = status(body).get("conditions", [])
    steps: list[tuple[request.RequestPhase, str, str, bool]] = []
    if passing is not None:
        origin = phase(body)
        if not request_records.may_pass(
            request.RequestPhase(origin) if origin else None, passing.phase, to
        ):
            raise ValueError(f"{origin} -> {passing.phase} -> {to} is not one status write")
        update["conditions"] = conditions.set_condition(
            update["conditions"],
            type_=request_records.CONDITION[passing.phase],
            status=True,
            reason=passing.reason,
            message=passing.message,
            now=now(),
            generation=body["metadata"].get("generation"),
        )
        steps.append((passing.phase, passing.reason, passing.message, False))
    if condition is not None:
        update["conditions"] = conditions.set_condition(
            update["conditions"],
            type_=condition,
            status=True,
            reason=reason,
            message=message,
            now=now(),
            generation=body["metadata"].get("generation"),
        )
    update["conditions"] = conditions.set_condition(
        update["conditions"],
        type_="Ready",
        status=to in (P.SUCCEEDED, P.ROLLED_BACK),
        reason=reason,
        message=message,
        now=now(),
    )
    steps.append((to, reason, message, warning))
    event = _EVENTS.get(passing.phase if passing is not None else to)
    await failpoints.pause(f"{failpoints.PAUSE_BEFORE_STATUS}:{event.value if event else to}")
    await _patch(kube, body, update)
    if event is not None:
        failpoints.hit(f"{failpoints.AFTER_STATUS}:{event.value}")
    for step, why, what, warn in steps:
        await _record(body, step, why, what)
        metrics.REQUESTS.labels(step.value, _action_label(body)).inc()
        send = _event_sender(body, why, what, warn)
        if later is None:
            send()
        else:
            later.append(send)
        # Notifications (docs/approvals.md): enqueued only, never waits for a receiver.
        outbox.OUTBOX.publish(notices.for_request(body, step, why, what))


def _event_sender(body: api.Json, reason: str, message: str, warning: bool) -> Callable[[], None]:
    snapshot: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind") if k in body}
    snapshot["metadata"] = dict(body["metadata"])
    return lambda: handling.event(snapshot, reason=reason, message=message, warning=warning)


async def record_committed(body: api.Json) -> None:
    """The records of the decisions the request's status commits (``policy.request_records``:
    the phase it is in, and an approval committed by the same write): no-ops for those the trail
    holds."""
    if not isinstance((body.get("spec") or {}).get("action"), dict):
        return
    for decision in request_records.committed(status(body)):
        await _record(body, decision.phase, decision.reason, decision.message)
