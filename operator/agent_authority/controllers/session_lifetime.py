"""An Active session's lifetime: end it, expire it at its TTL, rotate its token when due.

Session TTL is enforced here, by the operator, not by token expiry: tokens are minted for the
session's remaining life (at least the TokenRequest minimum of 600 s) and rotated before they
expire while the session lives, so with the operator down a token outlives its session by at
most 600 s. The live object is checked at least every second (:data:`ENDED_POLL_SECONDS`), so an
end is never missed when the event handler that ends a session at once failed.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.controllers import (
    handling,
    session_fields,
    session_revocation,
    session_rotation,
    session_settings,
    session_state,
)
from agent_authority.kube import api
from agent_authority.models import GROUP, VERSION, session

ACTIVE = session_fields.ACTIVE
ENDED_POLL_SECONDS = 1.0
"""How often the daemon of an Active session re-checks ``spec.ended`` on the live object."""


def ttl_left(body: api.Json) -> float | None:
    expires = session_fields.parse(session_fields.status_of(body).get("expiresAt"))
    return None if expires is None else (expires - session_fields.now()).total_seconds()


def rotation_due_in(body: api.Json) -> float | None:
    status = session_fields.status_of(body)
    rotated, expires = (
        session_fields.parse(status.get("tokenRotatedAt")),
        session_fields.parse(status.get("tokenExpiresAt")),
    )
    if rotated is None or expires is None:
        return None
    lifetime = (expires - rotated).total_seconds()
    rotate_after = session_settings.SETTINGS.rotate_after
    after = rotate_after if rotate_after > 1 else lifetime * rotate_after
    return (rotated - session_fields.now()).total_seconds() + after


def _shallow(body: kopf.Body) -> api.Json:
    """The top level of a kopf body as a plain dict; nested values are kopf's own (read only)."""
    return {key: body[key] for key in ("metadata", "spec", "status") if key in body}


def _is_active(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == ACTIVE


@kopf.daemon(GROUP, VERSION, session_fields.PLURAL, when=_is_active, cancellation_timeout=5.0)
@handling.translating  # an outage at expiry retries in about a second, not kopf's 60 s
async def lifetime(body: kopf.Body, stopped: kopf.DaemonStopped, logger: Any, **_: Any) -> None:
    """While the session is Active: end it when ``spec.ended`` says so, expire it at its TTL,
    rotate its token when due; checked on the live object at least every second."""
    kube = api.default()
    while not stopped:
        # Decided on a shallow view of kopf's live body; the deep copy the actions need is made
        # only when one is due and never held across the wait (one per Active session, otherwise).
        view = _shallow(body)
        if session_fields.status_of(view).get("phase") != ACTIVE:
            return
        session_state.count_in(view["spec"]["grantRef"]["name"], view["metadata"]["uid"])
        left, due = ttl_left(view), rotation_due_in(view)
        ending = session_fields.is_ended(view)
        del view
        try:
            if ending:
                await session_revocation.revoke(
                    kube,
                    handling.plain(body),
                    session.SessionPhase.ENDED,
                    "Ended",
                    "ended by spec.ended",
                )
                return
            if left is not None and left <= 0:
                await session_revocation.revoke(
                    kube,
                    handling.plain(body),
                    session.SessionPhase.EXPIRED,
                    "Expired",
                    "TTL passed",
                )
                return
            if due is not None and due <= 0:
                await session_rotation.rotate(kube, handling.plain(body))
                continue
        except Exception as e:  # keep the daemon alive; the next loop retries
            logger.warning("session upkeep failed, retrying in 1 s: %s", e)
            await stopped.wait(1)
            continue
        waits = [w for w in (left, due) if w is not None]
        await stopped.wait(max(0.05, min([*waits, ENDED_POLL_SECONDS])))
