"""A session's audit records: what the trail says about it, and its ``auditDigest``.

Records are appended only after the transition they describe is committed to the status
(:mod:`session_state`); record ids make a record written again on resume a no-op, so a crash
between a status write and its record is repaired by writing the record then.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent_authority import metrics
from agent_authority.audit import trail
from agent_authority.controllers import session_fields, session_state
from agent_authority.kube import api
from agent_authority.models import audit as audit_models
from agent_authority.models import session


def _entry(
    body: api.Json, event: trail.Event, reason: str, message: str, **details: Any
) -> audit_models.AuditEntry:
    requester = (body.get("spec") or {}).get("requester") or {}
    return trail.entry(
        event,
        body,
        correlation_id=body["metadata"]["uid"],
        actor=str(requester.get("username") or "unknown"),
        reason=reason,
        message=message,
        details={"grant": (body.get("spec") or {}).get("grantRef", {}).get("name"), **details},
    )


@metrics.counts_failures(metrics.AUDIT_TRAIL_WRITE_FAILURES)
async def record(
    body: api.Json, event: trail.Event, reason: str, message: str, **details: Any
) -> str | None:
    """Append an audit record about the session; its hash (the session's audit digest)."""
    return await _append([_entry(body, event, reason, message, **details)])


@metrics.counts_failures(metrics.AUDIT_TRAIL_WRITE_FAILURES)
async def record_all(entries: list[audit_models.AuditEntry]) -> str | None:
    """Append ``entries`` in order as one batch (one write, one fsync, off the event loop); the
    hash of the last (the session's audit digest). None when the trail is disabled."""
    return await _append(entries)


async def _append(entries: list[audit_models.AuditEntry]) -> str | None:
    if not trail.TRAIL.enabled:
        return None
    written = await asyncio.to_thread(trail.TRAIL.record_many, entries)
    return written[-1].hash if written else None


async def recorded(
    kube: api.Kube, body: api.Json, event: trail.Event, reason: str, message: str
) -> None:
    """The record of a transition already committed to the status, then its digest."""
    await session_state.note_digest(kube, body, await record(body, event, reason, message))


async def record_opened(kube: api.Kube, body: api.Json) -> None:
    """``TokenMinted`` and ``SessionOpened`` of an Active session, from what its status says.

    Written right after the activation is committed; called again on resume, where the record
    ids make it a no-op unless a crash came between the status patch and the records."""
    status = session_fields.status_of(body)
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c.get("type") == "Ready"), {}
    )
    incident = (body.get("spec") or {}).get("incident") or {}
    minted = _entry(
        body,
        trail.Event.TOKEN_MINTED,
        "TokenMinted",
        f"valid until {status.get('tokenExpiresAt')}",
        serviceAccount=status.get("serviceAccountName"),
        accessMode=status.get("accessMode"),
    )
    opened = _entry(
        body,
        trail.Event.SESSION_OPENED,
        "Active",
        str(ready.get("message") or ""),
        incident=incident.get("id"),
        severity=incident.get("severity"),
        rules=[
            f"{r.get('namespace')}: {','.join(r.get('verbs', []))} "
            f"{','.join(r.get('resources', []))}"
            for r in status.get("effectiveRules", [])
        ],
    )
    digest = await record_all([minted, opened])  # one write and one fsync for both
    if not status.get("auditDigest"):
        await session_state.note_digest(kube, body, digest)


_TERMINAL_EVENTS = {
    session.SessionPhase.DENIED.value: trail.Event.SESSION_DENIED,
    session.SessionPhase.ENDED.value: trail.Event.SESSION_ENDED,
    session.SessionPhase.EXPIRED.value: trail.Event.SESSION_EXPIRED,
    session.SessionPhase.REVOKED.value: trail.Event.SESSION_REVOKED,
}


async def record_terminal(kube: api.Kube, body: api.Json) -> None:
    """On resume, the record of the terminal phase a session reached (a no-op when the trail
    holds it: one terminal record per session, whichever came first)."""
    status = session_fields.status_of(body)
    event = _TERMINAL_EVENTS.get(str(status.get("phase")))
    revocation = status.get("revocation") or {}
    if event is not None:
        reason = str(revocation.get("reason") or status.get("phase"))
        await recorded(kube, body, event, reason, str(revocation.get("message") or ""))
