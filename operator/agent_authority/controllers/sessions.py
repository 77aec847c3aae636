"""IncidentSession handlers: admit, mint, rotate, expire, end and revoke (the kopf wiring).

Level-triggered: every handler calls :func:`reconcile`, which reads the object and brings the
cluster to what its spec and phase say, idempotently. Phases: ``Pending`` (admitted, credentials
being created) → ``Active`` → ``Ended | Expired | Revoked``, or ``Denied`` at once.

Every phase transition happens once: under a per-session lock, on a fresh read, and as a status
patch conditional on the ``resourceVersion`` that was read (:mod:`session_state`); a terminal
phase never changes. So a late denial cannot turn Ended into Revoked, and the resume handler and
the TTL schedule cannot both expire a session after a restart. Nothing that writes credentials
(activation, rotation, narrowing, own-reads) runs once a session is terminal.

Nothing here relies on kopf's diff base or progress annotations to notice an end or an expiry:
an event handler (no diff base) ends a session at once, and the operator's one schedule of Active
sessions (:mod:`session_lifetime`), fed by every watch event, expires each at its TTL and tries
an end again every second while the session still shows Active.

The session controller's modules, each owning one part:

- :mod:`session_fields`: phases, times, conditions and the ``SessionRef`` of a session (no I/O);
- :mod:`session_settings`: operator-wide knobs and the token options they imply;
- :mod:`session_state`: locks, slots, fresh reads and conditional phase transitions;
- :mod:`session_records`: the session's audit records and its ``auditDigest``;
- :mod:`session_activation`: admission (or denial) and the credentials of a new session;
- :mod:`session_revocation`: the one way a session ends, and its credentials removed;
- :mod:`session_rotation`: token rotation and grant changes of an Active session;
- :mod:`session_lifetime`: TTL, ``spec.ended`` and rotation while a session is Active;
- :mod:`session_reads`: what a session may read of its own;
- this module: :func:`reconcile` and the kopf handlers that call it.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority import indexes, metrics
from agent_authority.controllers import (
    handling,
    session_activation,
    session_fields,
    session_lifetime,
    session_records,
    session_revocation,
    session_rotation,
    session_state,
)
from agent_authority.kube import api, credentials, resources
from agent_authority.models import GROUP, VERSION, session

PLURAL = session_fields.PLURAL
ACTIVE = session_fields.ACTIVE
TERMINAL = session_fields.TERMINAL
STATE = session_state.STATE


async def reconcile(
    kube: api.Kube,
    body: api.Json,
    logger: Any,
    by_grant: Any = None,
    active_index: Any = None,
    requests_index: Any = None,
    grants_index: Any = None,
) -> None:
    """Bring one session to what its spec and phase say (idempotent)."""
    phase = session_fields.status_of(body).get("phase")
    if phase in TERMINAL:
        # Leftovers of a crash mid-revocation, and a crash between the status and its record.
        await session_revocation.remove_credentials(kube, body)
        await session_records.record_terminal(kube, body)
        return
    if session_fields.is_ended(body):
        await session_revocation.revoke(
            kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended"
        )
        return
    if phase != ACTIVE:
        await session_activation.activate(kube, body, logger, by_grant, active_index, grants_index)
        return
    session_state.count_in(body["spec"]["grantRef"]["name"], body["metadata"]["uid"])
    await session_records.record_opened(kube, body)  # a crash between the status and its records
    left = session_lifetime.ttl_left(body)
    if left is not None and left <= 0:
        await session_revocation.revoke(
            kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed"
        )
        return
    grant_body = await resources.get_grant(kube, body["spec"]["grantRef"]["name"])
    await session_rotation.apply_grant_change(kube, body, grant_body)
    if session_fields.status_of(body).get("phase") == ACTIVE:
        meta = body["metadata"]
        own = indexes.requests_of(requests_index, meta["namespace"], meta["name"])
        await session_rotation.ensure_access(kube, body, own)
        due = session_lifetime.rotation_due_in(body)
        if due is None or due <= 0:
            await session_rotation.rotate(kube, body)


# -- kopf wiring ---------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def opened(
    body: kopf.Body,
    logger: Any,
    sessions_by_grant: Any = None,
    active_sessions_by_grant: Any = None,
    requests_by_session: Any = None,
    grants_by_name: Any = None,
    **_: Any,
) -> None:
    await reconcile(
        api.default(),
        handling.plain(body),
        logger,
        sessions_by_grant,
        active_sessions_by_grant,
        requests_by_session,
        grants_by_name,
    )


def _ending(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return spec.get("ended") is True and status.get("phase") not in TERMINAL


@kopf.on.event(GROUP, VERSION, PLURAL, when=_ending)
async def ended(body: kopf.Body, logger: Any, **_: Any) -> None:
    """End a session as soon as any event shows ``spec.ended: true`` (no diff base involved).

    A failure here is retried by the lifetime schedule within a second.
    """
    plain = handling.plain(body)
    if session_fields.status_of(plain).get("phase") not in {
        ACTIVE,
        session.SessionPhase.PENDING.value,
    }:
        return  # not yet picked up: the create handler ends it
    try:
        await session_revocation.revoke(
            api.default(), plain, session.SessionPhase.ENDED, "Ended", "ended by spec.ended"
        )
    except Exception as e:  # the lifetime schedule retries
        logger.warning("ending the session failed, retried in a second: %s", e)


@kopf.on.delete(GROUP, VERSION, PLURAL)
@handling.translating
async def deleted(body: kopf.Body, **_: Any) -> None:
    plain = handling.plain(body)
    kube = api.default()
    uid, grant_name = plain["metadata"]["uid"], plain["spec"]["grantRef"]["name"]
    async with STATE.session_locks[uid]:
        await credentials.revoke(kube, session_fields.ref_of(plain))
        if (
            uid not in STATE.released
            and session_fields.status_of(plain).get("phase") not in TERMINAL
        ):
            metrics.REVOCATIONS.labels("Deleted").inc()
        session_state.count_out(grant_name, uid)
    await session_revocation.end_children(kube, plain)
    STATE.session_locks.pop(uid, None)
