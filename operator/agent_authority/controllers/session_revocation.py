"""Revocation: end a session once, and take its credentials away.

Every end (``spec.ended``, TTL, deviation, grant change, parent ended, alert resolved) goes
through :func:`revoke`: one conditional status transition from a phase that is not terminal, the
deletion of the RoleBindings, Secret and ServiceAccount in the order of the session's mode, the
audit record, then its sub-agent sessions and its undecided remediation requests. A terminal
phase never changes, so a late revocation cannot turn Ended into Revoked. :func:`sweep_orphans`
deletes, at start-up, every credential whose session is gone or has ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agent_authority import metrics
from agent_authority.audit import trail
from agent_authority.controllers import (
    handling,
    request_status,
    session_fields,
    session_records,
    session_state,
)
from agent_authority.kube import api, credentials, errors, resources
from agent_authority.models import session
from agent_authority.notify import notices, outbox
from agent_authority.policy import conditions, sessions

TERMINAL = session_fields.TERMINAL
NOT_TERMINAL = session_fields.NOT_TERMINAL
logger = logging.getLogger(__name__)


async def revoke(
    kube: api.Kube,
    body: api.Json,
    phase: session.SessionPhase,
    reason: str,
    message: str,
) -> bool:
    """End a session, once: the status transition (only from a phase that is not terminal) and
    the deletion of its credentials (RoleBindings, Secret, ServiceAccount), then its sub-agent
    sessions.

    Which of the two comes first depends on the session's mode
    (:func:`policy.sessions.status_before_credentials`): direct mode deletes the credentials
    first (RBAC is the revocation there); gateway mode writes the terminal phase first, so every
    gateway replica refuses the session from that one watch event, and deletes the credentials
    after, recording in the condition ``CredentialsRevoked`` whether they are gone yet (a crash
    in between is finished by the resume handler and the lifetime schedule, every 3 s).

    False when the session was already terminal (or gone): nothing is recorded or counted again,
    and the phase it reached first stays.
    """
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None:
            await credentials.revoke(kube, session_fields.ref_of(body))
            return False
        if session_fields.status_of(fresh).get("phase") in TERMINAL:
            body.update(fresh)
            return False
        status_first = sessions.status_before_credentials(
            session_fields.status_of(fresh).get("accessMode")
        )
        started = time.monotonic()
        if not status_first:
            await credentials.revoke(kube, session_fields.ref_of(fresh))
        latency = time.monotonic() - started
        event = {
            session.SessionPhase.ENDED: trail.Event.SESSION_ENDED,
            session.SessionPhase.EXPIRED: trail.Event.SESSION_EXPIRED,
        }.get(phase, trail.Event.SESSION_REVOKED)
        now = session_fields.now()
        ready = session_fields.condition(fresh, "Ready", False, reason, message)
        status = {
            "phase": phase.value,
            "conditions": _credentials_condition(fresh, ready, removed=not status_first),
            "revocation": {"reason": reason, "message": message, "time": session_fields.iso(now)},
        }
        expires = session_fields.parse(session_fields.status_of(fresh).get("expiresAt"))
        if expires is None or expires > now:
            # Access ended now: no future EXPIRES in kubectl.
            status["expiresAt"] = session_fields.iso(now)
        if not await session_state.transition(kube, fresh, status, NOT_TERMINAL, event=event.value):
            body.update(fresh)
            return False
        if status_first:  # the gateways refuse it already; now the RBAC objects go too
            try:
                await remove_credentials(kube, fresh)
            except errors.KubeError as e:  # CredentialsRevoked stays False: retried in 3 s
                logger.warning(
                    "deleting the credentials of %s failed: %s", fresh["metadata"]["name"], e
                )
            latency = time.monotonic() - started
        await session_records.recorded(kube, fresh, event, reason, message)
        body.update(fresh)
    metrics.REVOCATION_LATENCY.observe(latency)
    metrics.REVOCATIONS.labels(reason).inc()
    session_state.count_out(body["spec"]["grantRef"]["name"], body["metadata"]["uid"])
    handling.event(
        body,
        reason=reason,
        message=f"session {phase.value.lower()}: {message}; credentials revoked",
        warning=phase is session.SessionPhase.REVOKED,
    )
    if phase is session.SessionPhase.REVOKED:  # notifications: enqueued only, never waits
        outbox.OUTBOX.publish(notices.for_revoked_session(body, reason, message))
    await end_children(kube, body)
    await _cancel_requests(kube, body, f"session {body['metadata']['name']!r} ended: {reason}")
    return True


def _credentials_condition(
    body: api.Json, conditions_now: list[dict[str, Any]], *, removed: bool
) -> list[dict[str, Any]]:
    """``conditions_now`` with ``CredentialsRevoked`` set: whether the RBAC objects are gone."""
    message = (
        "the session's RoleBindings, Secret and ServiceAccount are deleted"
        if removed
        else "refused by the session gateway; its RoleBindings, Secret and ServiceAccount "
        "are being deleted"
    )
    return conditions.set_condition(
        conditions_now,
        type_=sessions.CREDENTIALS_REVOKED,
        status=removed,
        reason="Deleted" if removed else "Deleting",
        message=message,
        now=session_fields.now(),
        generation=body["metadata"].get("generation"),
    )


def credentials_pending(status: dict[str, Any]) -> bool:
    """A terminal session whose status says its RBAC objects may still exist."""
    return status.get("phase") in TERMINAL and any(
        c.get("type") == sessions.CREDENTIALS_REVOKED and c.get("status") != "True"
        for c in status.get("conditions") or []
    )


async def remove_credentials(kube: api.Kube, body: api.Json) -> None:
    """Delete a terminal session's credentials, then say so in ``CredentialsRevoked``."""
    await credentials.revoke(kube, session_fields.ref_of(body))
    if not credentials_pending(session_fields.status_of(body)):
        return
    done = _credentials_condition(
        body, session_fields.status_of(body).get("conditions", []), removed=True
    )
    patched = await resources.patch_session_status(
        kube, body["metadata"]["namespace"], body["metadata"]["name"], {"conditions": done}
    )
    body["status"] = (patched or {}).get("status") or {
        **session_fields.status_of(body),
        "conditions": done,
    }


OPEN_REQUESTS = {"Pending", "AwaitingApproval", "Approved"}


async def _cancel_requests(kube: api.Kube, body: api.Json, message: str) -> None:
    """A session that ends takes its undecided remediation requests with it."""
    meta = body["metadata"]
    pending = [
        r
        for r in await resources.list_requests(kube, meta["namespace"])
        if r["spec"]["sessionRef"]["name"] == meta["name"]
        and (r.get("status") or {}).get("phase", "Pending") in OPEN_REQUESTS
    ]
    for item in pending:
        # Conditional on the request's resourceVersion, with truthful conditions (request_status).
        await request_status.cancel(kube, item, message)


async def end_children(kube: api.Kube, parent: api.Json) -> None:
    meta = parent["metadata"]
    siblings = await resources.list_sessions(kube, namespace=meta["namespace"])
    children = [
        s
        for s in siblings
        if s["spec"].get("parentSession") == meta["name"]
        and session_fields.status_of(s).get("phase") not in TERMINAL
    ]
    await asyncio.gather(
        *[
            revoke(
                kube,
                child,
                session.SessionPhase.REVOKED,
                "ParentEnded",
                f"parent session {meta['name']!r} ended",
            )
            for child in children
        ]
    )


async def sweep_orphans(kube: api.Kube, logger: Any) -> int:
    """At start-up: delete every session credential whose session is gone or has ended.

    Runs before the operator starts watching, so no handler is creating credentials meanwhile.
    Returns how many objects were deleted.
    """
    live = {
        s["metadata"]["uid"]
        for s in await resources.list_sessions(kube)
        if session_fields.status_of(s).get("phase") not in TERMINAL
    }
    leftovers = await credentials.leftovers(kube)
    doomed = [obj for uid, objects in leftovers.items() if uid not in live for obj in objects]
    if doomed:
        await credentials.delete_leftovers(kube, doomed)
        logger.warning("removed %d credential object(s) of ended or deleted sessions", len(doomed))
    return len(doomed)
