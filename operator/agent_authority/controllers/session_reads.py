"""What a session token may read of its own: its IncidentSession and the requests naming it.

Session tokens never list or watch RemediationRequests; they ``get`` their own by name. When a
request appears (or, at start-up, is listed) this handler adds its name to the
``resourceNames`` of the session's own-reads Role (:func:`session_access.ensure_own_reads`),
from the index of requests by session, under the session's lock and only while the session is
Active, so it never gives anything back to an ended session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from agent_authority import indexes
from agent_authority.controllers import session_fields, session_state
from agent_authority.kube import api, errors, resources, session_access
from agent_authority.models import GROUP, VERSION

SESSION_UID_LABEL = "agentauthority.io/session-uid"
"""Stamped on each request by the create webhook: the uid of the session it names."""


@kopf.on.event(GROUP, VERSION, "remediationrequests")
async def request_seen(
    body: kopf.Body, type: str | None, logger: Any, requests_by_session: Any = None, **_: Any
) -> None:
    """A request naming a session: let that session ``get`` it (by name), and only it."""
    if type == "DELETED":
        return
    ref = (body.get("spec") or {}).get("sessionRef")
    name = ref.get("name") if isinstance(ref, dict) else None
    namespace = body.get("metadata", {}).get("namespace")
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return
    this = str(body["metadata"]["name"])

    def listed(uid: str) -> bool:
        return this in session_state.STATE.own_reads.get(uid, frozenset())

    # Every later event of a request (its approvals, its phases) finds it listed already: no
    # session read then. The uid is the one the create webhook stamped (agents cannot patch
    # requests); a wrong one could only make this handler skip a write, never make one.
    stamped = ((body.get("metadata") or {}).get("labels") or {}).get(SESSION_UID_LABEL)
    if isinstance(stamped, str) and listed(stamped):
        return
    kube = api.default()
    for attempt in range(5):
        try:
            owner = await resources.get_session(kube, namespace, name)
            if owner is None or (owner.get("status") or {}).get("phase") != session_fields.ACTIVE:
                return
            if listed(owner["metadata"]["uid"]):
                return  # its Role lists this request already
            async with session_state.fresh(kube, owner) as fresh:
                if (
                    fresh is None
                    or (fresh.get("status") or {}).get("phase") != session_fields.ACTIVE
                ):
                    return
                if listed(fresh["metadata"]["uid"]):
                    return  # written while this event waited for the lock
                # Read under the lock, so a writer never replaces the Role with an older list;
                # one write lists every request of the session seen so far.
                own = indexes.requests_of(requests_by_session, namespace, name) or []
                own = sorted({*own, this})
                await session_access.ensure_own_reads(kube, session_fields.ref_of(fresh), own)
                session_state.STATE.own_reads[fresh["metadata"]["uid"]] = frozenset(own)
            return
        except errors.KubeError as e:
            logger.warning(
                "could not let session %s read its request (try %d): %s", name, attempt, e
            )
            await asyncio.sleep(0.5 * (attempt + 1))
