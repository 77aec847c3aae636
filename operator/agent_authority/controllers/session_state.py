"""What the session controller knows beyond the cluster, and how it changes a session's phase.

- :class:`State`: per-session and per-grant locks, the sessions this process admitted (activating
  or Active) and ended, and the Active ones it looks after (the ``active_sessions`` gauge, which
  therefore counts resumed sessions and never goes negative);
- :func:`fresh`: hold a session's lock and read it fresh, so two handlers never act on one
  session at once and each decides on what the cluster says now;
- :func:`transition`: a status patch conditional on the phase read and on its
  ``resourceVersion``, so a phase changes once and a terminal phase never changes;
- :func:`note_digest`: the audit digest of a transition, written after its record. Records are
  appended only once their transition is committed, so a transition that loses a race records
  nothing, and a record missing after a crash is written on resume (record ids make that
  idempotent).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from agent_authority import failpoints, indexes, metrics
from agent_authority.kube import api, errors, resources


@dataclasses.dataclass
class State:
    """What this process knows beyond the cluster: locks, and who holds a slot of a grant."""

    session_locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    grant_locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    admitted: collections.defaultdict[str, set[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(set)
    )
    """Grant → uids this process admitted (activating or Active), until they end."""
    released: set[str] = dataclasses.field(default_factory=set)
    """Uids this process moved to a terminal phase (the index may still say Active)."""
    active: collections.defaultdict[str, set[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(set)
    )
    """Grant → uids of the Active sessions this process looks after: the gauge."""
    own_reads: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    """Session uid → the request names its own-reads Role lists already."""


STATE = State()


def count_in(grant_name: str, uid: str) -> None:
    if uid in STATE.released:  # a stale view of a session this process already ended
        return
    STATE.active[grant_name].add(uid)
    metrics.ACTIVE_SESSIONS.labels(grant_name).set(len(STATE.active[grant_name]))


def count_out(grant_name: str, uid: str) -> None:
    STATE.own_reads.pop(uid, None)
    STATE.active[grant_name].discard(uid)
    STATE.admitted[grant_name].discard(uid)
    STATE.released.add(uid)
    metrics.ACTIVE_SESSIONS.labels(grant_name).set(len(STATE.active[grant_name]))


def occupied(active_index: Any, grant_name: str, uid: str) -> int:
    """Slots of the grant taken by other sessions: Active ones (index) and ones being
    activated here, minus those this process already ended."""
    taken = indexes.active_uids(active_index, grant_name) | STATE.admitted[grant_name]
    return len(taken - STATE.released - {uid})


@contextlib.asynccontextmanager
async def fresh(kube: api.Kube, body: api.Json) -> AsyncIterator[api.Json | None]:
    """Hold the session's lock and read it fresh; None when it is gone (or was recreated)."""
    meta = body["metadata"]
    async with STATE.session_locks[meta["uid"]]:
        fresh = await resources.get_session(kube, meta["namespace"], meta["name"])
        yield fresh if fresh is not None and fresh["metadata"]["uid"] == meta["uid"] else None


async def transition(
    kube: api.Kube,
    body: api.Json,
    status: dict[str, Any],
    allowed: frozenset[str | None],
    *,
    event: str = "",
) -> bool:
    """Patch ``status`` only while the phase is one of ``allowed``, conditional on the
    resourceVersion read; False (nothing written) when the phase moved on meanwhile.

    ``event`` names the audit event the caller records once this returns True (failpoints)."""
    meta = body["metadata"]
    current: api.Json | None = body
    await failpoints.pause(f"{failpoints.PAUSE_BEFORE_STATUS}:{event}")
    for _ in range(10):
        if current is None or (current.get("status") or {}).get("phase") not in allowed:
            return False
        status.setdefault("observedGeneration", current["metadata"].get("generation"))
        try:
            patched = await resources.patch_session_status_at(
                kube,
                meta["namespace"],
                meta["name"],
                status,
                current["metadata"]["resourceVersion"],
            )
        except errors.Conflict:
            current = await resources.get_session(kube, meta["namespace"], meta["name"])
            if current is not None and current["metadata"]["uid"] != meta["uid"]:
                return False
            continue
        body["status"] = patched.get("status", status)
        body["metadata"] = patched.get("metadata", meta)
        failpoints.hit(f"{failpoints.AFTER_STATUS}:{event}")
        return True
    raise errors.Unavailable(f"session {meta['namespace']}/{meta['name']} kept changing")


async def note_digest(kube: api.Kube, body: api.Json, digest: str | None) -> None:
    """Write ``status.auditDigest`` (the hash of the session's latest record) after the record of
    a committed transition; conditional on the resourceVersion, retried on a fresh read while
    the session stays in the phase that was committed (a later transition writes its own)."""
    meta = body["metadata"]
    if not digest or (body.get("status") or {}).get("auditDigest") == digest:
        return
    phase = (body.get("status") or {}).get("phase")
    current: api.Json | None = body
    for _ in range(10):
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return
        if (current.get("status") or {}).get("phase") != phase:
            return
        try:
            patched = await resources.patch_session_status_at(
                kube,
                meta["namespace"],
                meta["name"],
                {"auditDigest": digest},
                current["metadata"]["resourceVersion"],
            )
        except errors.Conflict:
            current = await resources.get_session(kube, meta["namespace"], meta["name"])
            continue
        body["status"] = patched.get("status", body.get("status"))
        body["metadata"] = patched.get("metadata", meta)
        return
    raise errors.Unavailable(f"session {meta['namespace']}/{meta['name']} kept changing")
