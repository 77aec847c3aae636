"""A session's fields as the session controller reads and writes them: phases, times, conditions.

No I/O: what a phase set is, how times are written (RFC 3339, UTC, ``Z``), the ``Ready``-style
condition lists of a status, and the :class:`session_refs.SessionRef` naming a session's objects.
"""

from __future__ import annotations

import datetime
from typing import Any

from agent_authority.kube import api, context, session_refs
from agent_authority.models import session
from agent_authority.policy import conditions

PLURAL = "incidentsessions"
ACTIVE = session.SessionPhase.ACTIVE.value
TERMINAL = context.TERMINAL
NOT_TERMINAL: frozenset[str | None] = frozenset({None, session.SessionPhase.PENDING.value, ACTIVE})
NOT_STARTED: frozenset[str | None] = frozenset({None, session.SessionPhase.PENDING.value})


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def parse(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def ref_of(body: api.Json) -> session_refs.SessionRef:
    meta = body["metadata"]
    return session_refs.SessionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def status_of(body: api.Json) -> dict[str, Any]:
    return dict(body.get("status") or {})


def is_ended(body: api.Json) -> bool:
    return (body.get("spec") or {}).get("ended") is True


def condition(
    body: api.Json, type_: str, ok: bool, reason: str, message: str
) -> list[dict[str, Any]]:
    """The session's conditions with ``type_`` set (its transition time kept if unchanged)."""
    return conditions.set_condition(
        status_of(body).get("conditions", []),
        type_=type_,
        status=ok,
        reason=reason,
        message=message,
        now=now(),
        generation=body["metadata"].get("generation"),
    )
