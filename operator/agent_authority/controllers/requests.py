"""RemediationRequest handlers: evaluate, dry-run, await approval, apply once, record the inverse.

Phases: ``Pending`` → ``Denied`` | ``AwaitingApproval`` | ``Approved`` → ``Applying`` →
``Succeeded`` | ``Failed``; also ``Expired`` (no decision in time), ``Cancelled`` (its session
ended first) and ``RolledBack`` (a rollback request undid it).

This module drives a request (:func:`reconcile`, :func:`drive`) and wires the kopf handlers; the
decision lives in :mod:`request_evaluation`, approval and apply in :mod:`request_execution`, what
both read in :mod:`request_facts`, and every status write in :mod:`request_status`.

Never twice: the phase is persisted as ``Applying`` before the change is made, and every action
is idempotent, so an operator killed mid-apply finishes the same change on restart instead of
making another one. Every status transition is conditional on the ``resourceVersion`` it was
decided on (``request_status``), so expiry, cancellation, approval and apply cannot race, and
each handler decides on a fresh read. No handler relies on kopf's diff base (there are no update
handlers, and approvals arrive as watch events): whether a request was handled is read from its
status (``persistence``), so kopf writes nothing to a request after its create handler.

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
import collections.abc
import datetime
from typing import Any

import kopf

from agent_authority.controllers import (
    handling,
    request_evaluation,
    request_execution,
    request_facts,
    request_status,
)
from agent_authority.kube import api
from agent_authority.models import GROUP, VERSION, request

PLURAL = "remediationrequests"
P = request.RequestPhase


def _expired(body: api.Json) -> bool:
    expires = request_status.status(body).get("expiresAt")
    return bool(expires) and datetime.datetime.fromisoformat(str(expires)) <= request_status.now()


async def reconcile(
    kube: api.Kube,
    body: api.Json,
    operator: str,
    known: request_facts.Context | None = None,
    ahead: request_execution.Ahead | None = None,
) -> None:
    """One step of the request's state machine, decided on ``body`` as read just now (and its
    session and grant, ``known``, when they were read with it; ``ahead``: its target planned
    beside those reads)."""
    phase = request_status.phase(body)
    if phase in (None, P.PENDING.value):
        await request_evaluation.evaluate(kube, body, operator, known=known)
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
            await request_execution.tally(kube, body, operator, known=known, ahead=ahead)
    elif phase in (P.APPROVED.value, P.APPLYING.value):
        await request_execution.apply(kube, body, operator, known=known)


_locks: dict[str, asyncio.Lock] = {}
ATTEMPTS = 5


async def drive(
    kube: api.Kube,
    namespace: str,
    name: str,
    uid: str,
    operator: str,
    *,
    hint: collections.abc.Mapping[str, Any] | None = None,
    group: str = GROUP,
) -> None:
    """Reconcile the request as stored now; decide again on a fresh read when a transition was
    superseded. One request is driven by one handler at a time in this process.

    ``hint``: the request as last seen (the watch event's body). Its session (a request's
    ``spec.sessionRef`` never changes) and that session's grant are read at the same time as the
    request (``request_facts.read``), and a request seen waiting with approvals has its target
    planned meanwhile (``request_execution.plan_ahead``); every decision is still made on the
    fresh reads. ``group``: the API group of the request's CRD; the benchmark's floor drives
    requests of a copy of it through this very function, so it makes the operator's calls in
    the operator's order and overlap.
    """
    session = request_facts.session_of(hint) if hint is not None else None
    lock = _locks.setdefault(uid, asyncio.Lock())
    async with lock:
        ahead = request_execution.plan_ahead(kube, hint) if hint is not None else None
        try:
            for _ in range(ATTEMPTS):
                body, known = await request_facts.read(kube, namespace, name, session, group=group)
                if body is None or body["metadata"].get("uid") != uid:
                    return
                body.setdefault("status", {})
                try:
                    await reconcile(kube, body, operator, known, ahead)
                    return
                except request_status.Superseded:
                    if ahead is not None:
                        ahead.discard()
                    ahead = None
                    continue
        finally:
            if ahead is not None:
                ahead.discard()
    raise kopf.TemporaryError(f"request {namespace}/{name} kept changing; trying again", delay=1)


# -- kopf wiring ---------------------------------------------------------------------------------


def _operator(memo: Any) -> str:
    operator = getattr(memo, "operator", None)
    return str(operator.username) if operator is not None else ""


def _drive(body: kopf.Body, memo: Any) -> Any:
    meta = body["metadata"]
    return drive(
        api.default(),
        meta["namespace"],
        meta["name"],
        meta["uid"],
        _operator(memo),
        hint=body,
    )


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def created(body: kopf.Body, memo: Any, **_: Any) -> None:
    await request_status.record_committed(handling.plain(body))  # a crash before its record
    await _drive(body, memo)


def _approvals_given(status: kopf.Status, **_: Any) -> bool:
    """A waiting request with an approval or denial to count. The event of the write that made
    it wait, and kopf's own writes, have none: nothing to tally, no drive (expiry is the
    ``approval_deadline`` daemon's); every approval is a write, whose event then comes."""
    return status.get("phase") == P.AWAITING_APPROVAL.value and bool(status.get("approvals"))


@kopf.on.event(GROUP, VERSION, PLURAL, when=_approvals_given)
@handling.translating
async def approvals_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    """Approvals arrive as status writes, which kopf's change handlers do not see: watch events."""
    await _drive(body, memo)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (P.APPROVED.value, P.APPLYING.value)


UNFINISHED_INTERVAL = 3.0


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=UNFINISHED_INTERVAL,
    initial_delay=UNFINISHED_INTERVAL,
    when=_unfinished,
)
@handling.translating
async def unfinished(body: kopf.Body, memo: Any, **_: Any) -> None:
    """An approved or applying request whose apply was interrupted is driven on until done.

    First after one interval, not at once: kopf starts the timer on the event of the
    ``Applying`` write, which it handles only once the drive that made it has returned, in the
    normal case with the request ``Succeeded`` (its event then stops the timer). Driving at once
    re-read the request, its session and its grant for nothing, on every apply, while the next
    requests were being applied. An apply interrupted in this process is driven on within
    the interval; one interrupted by a restart at once, by the resume handler."""
    await _drive(body, memo)


UNDECIDED = frozenset({None, P.PENDING.value, P.AWAITING_APPROVAL.value})


def _undecided(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in UNDECIDED


@kopf.daemon(GROUP, VERSION, PLURAL, when=_undecided, cancellation_timeout=5.0)
@handling.translating
async def approval_deadline(
    body: kopf.Body, memo: Any, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Expire a request that is still waiting for approval at ``status.expiresAt``.

    It runs from the request's creation, not only while it waits: kopf keeps its finalizer on
    an object while a daemon or timer of it runs, so the finalizer (stamped at admission, see
    ``webhooks.requests``) stays from creation until the request is decided and applied,
    instead of being added the moment it starts waiting, where that write raced the approver's
    status patch (the apiserver then runs the approval webhooks again). ``body`` is kept up to
    date by kopf while the daemon runs.
    """
    while not stopped:
        status = body.get("status") or {}
        if status.get("phase") == P.AWAITING_APPROVAL.value:
            break
        await stopped.wait(1.0)  # still being evaluated
    expires = (body.get("status") or {}).get("expiresAt")
    if stopped or not expires:
        return
    left = (datetime.datetime.fromisoformat(expires) - request_status.now()).total_seconds()
    await stopped.wait(max(0.0, left))
    if stopped:
        return
    await _drive(body, memo)
