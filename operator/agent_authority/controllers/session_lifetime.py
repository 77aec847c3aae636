"""An Active session's lifetime: end it, expire it at its TTL, rotate its token when due.

Session TTL is enforced here, by the operator, not by token expiry: tokens are minted for the
session's remaining life (at least the TokenRequest minimum of 600 s) and rotated before they
expire while the session lives, so with the operator down a token outlives its session by at
most 600 s.

One :class:`Schedule` per operator holds, for every Active session it watches, the next moment
the session needs attention (a heap of deadlines), instead of one kopf daemon (an asyncio task
and kopf's bookkeeping) per session. It is fed by :func:`lifetime_deadlines`, a kopf index
handler that sees every session event, the initial listing included, so after a restart the
deadlines are rebuilt from the watched objects. What is due, and when, is
:func:`policy.lifetimes.upkeep`:

- the TTL: a session is expired within about :data:`RETRY_SECONDS` of ``status.expiresAt``;
- the token: rotated once the fraction (or number of seconds) ``--rotate-after`` of its life has
  passed;
- ``spec.ended``: the event handler ``sessions.ended`` ends a session at once; the schedule
  tries again every :data:`RETRY_SECONDS` while a session still shows Active with
  ``spec.ended`` (the retry the daemon used to be);
- a terminal gateway-mode session whose credentials' deletion failed after its status write
  (``CredentialsRevoked`` not True): deleted again every :data:`FINISH_SECONDS` until they are
  gone (a kopf timer before). With no daemon or timer on sessions, kopf keeps no copy of each
  session's object either.

A due action that fails is tried again :data:`RETRY_SECONDS` later. The loop is supervised: an
error in it is logged and the loop restarts with its deadlines kept, and ``/healthz`` fails if it
stops beating, so the pod is restarted and the deadlines are rebuilt from the cluster (fail
closed: a session past its expiry never stays usable because the loop died). It acts only while
this replica leads (kopf's peering rule, :func:`policy.lifetimes.leads`), as kopf's own handlers
do; stopping gives in-flight actions :data:`STOP_SECONDS` to finish before they are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from agent_authority.controllers import (
    session_fields,
    session_revocation,
    session_rotation,
    session_settings,
    session_state,
)
from agent_authority.kube import api, peering, resources
from agent_authority.models import GROUP, VERSION, session
from agent_authority.policy import lifetimes

ACTIVE = session_fields.ACTIVE
RETRY_SECONDS = 1.0
"""How soon a due action is tried again if it has not succeeded; also the longest the loop
sleeps (its heartbeat)."""
FINISH_SECONDS = 3.0
"""A terminal session's credentials whose deletion failed are deleted again this often."""
STOP_SECONDS = 5.0
"""How long in-flight actions may take to finish when the operator stops (then cancelled)."""
STALE_SECONDS = 30.0
"""The loop counts as dead (``/healthz`` fails) when it has not beaten for this long."""
LEADERSHIP_CACHE_SECONDS = 1.0
logger = logging.getLogger(__name__)

Act = Callable[[api.Json, lifetimes.Due], Awaitable[None]]
"""Carry out what is due for a session, given its namespace, name and uid (a plain body)."""
Leading = Callable[[], Awaitable[bool]]
"""Whether this replica may act now (peering)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """What the schedule keeps of one Active session: who it is, and the times that matter."""

    namespace: str
    name: str
    uid: str
    grant: str
    ended: bool
    expires_at: float | None
    rotate_at: float | None
    at: float
    """When to look at it next."""
    unrevoked_since: float | None = None
    """Terminal, its credentials not yet deleted: since when this process has seen it so."""

    def body(self) -> api.Json:
        """The plain body an action starts from (the actions read the session fresh)."""
        return {
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
            "spec": {"grantRef": {"name": self.grant}},
            "status": {},
        }


def _epoch(value: Any) -> float | None:
    parsed = session_fields.parse(value) if isinstance(value, str) else None
    return parsed.timestamp() if parsed is not None else None


def ttl_left(body: api.Json) -> float | None:
    """Seconds until the session's TTL passes (negative once it has); None when unknown."""
    expires = _epoch(session_fields.status_of(body).get("expiresAt"))
    return None if expires is None else expires - time.time()


def rotation_due_in(body: api.Json) -> float | None:
    """Seconds until its token is due for rotation (negative once due); None when unknown."""
    status = session_fields.status_of(body)
    at = lifetimes.rotation_at(
        _epoch(status.get("tokenRotatedAt")),
        _epoch(status.get("tokenExpiresAt")),
        session_settings.SETTINGS.rotate_after,
    )
    return None if at is None else at - time.time()


def _upkeep(entry: Entry, now: float) -> lifetimes.Upkeep:
    return lifetimes.upkeep(
        active=entry.unrevoked_since is None,
        ended=entry.ended,
        expires_at=entry.expires_at,
        rotate_at=entry.rotate_at,
        now=now,
        retry=RETRY_SECONDS,
        unrevoked_since=entry.unrevoked_since,
        finish_every=FINISH_SECONDS,
    )


class Schedule:
    """The deadlines of every watched Active session, and the one loop that acts on them."""

    def __init__(
        self,
        act: Act,
        leading: Leading,
        *,
        clock: Callable[[], float] = time.time,
        rotate_after: Callable[[], float] = lambda: session_settings.SETTINGS.rotate_after,
    ) -> None:
        self.entries: dict[str, Entry] = {}
        self._act = act
        self._leading = leading
        self._clock = clock
        self._rotate_after = rotate_after
        self._heap: list[tuple[float, int, Entry]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self.beat = time.monotonic()
        self.restarts = 0

    # -- fed from the watch ----------------------------------------------------------------

    def see(self, body: api.Json) -> None:
        """What the latest event says of a session: schedule it, or forget it (not Active)."""
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        uid = meta.get("uid")
        if not isinstance(uid, str):
            return
        rotate_at = lifetimes.rotation_at(
            _epoch(status.get("tokenRotatedAt")),
            _epoch(status.get("tokenExpiresAt")),
            self._rotate_after(),
        )
        ended = session_fields.is_ended(body)
        expires_at = _epoch(status.get("expiresAt"))
        now = self._clock()
        current = self.entries.get(uid)
        unrevoked_since: float | None = None
        if session_revocation.credentials_pending(status):
            unrevoked_since = (current.unrevoked_since if current else None) or now
        decided = lifetimes.upkeep(
            active=status.get("phase") == ACTIVE,
            ended=ended,
            expires_at=expires_at,
            rotate_at=rotate_at,
            now=now,
            retry=RETRY_SECONDS,
            unrevoked_since=unrevoked_since,
            finish_every=FINISH_SECONDS,
        )
        if decided.at is None:
            self.forget(uid)
            return
        # Expiry or rotation due: now. An end: after the event handler's own try (a retry).
        at = now if decided.due in (lifetimes.Due.EXPIRE, lifetimes.Due.ROTATE) else decided.at
        entry = Entry(
            namespace=str(meta.get("namespace")),
            name=str(meta.get("name")),
            uid=uid,
            grant=str(((body.get("spec") or {}).get("grantRef") or {}).get("name")),
            ended=ended,
            expires_at=expires_at,
            rotate_at=rotate_at,
            at=float(at if at is not None else now),
            unrevoked_since=unrevoked_since,
        )
        if current is not None and dataclasses.replace(current, at=entry.at) == entry:
            return  # nothing new: its deadline (or a pending retry) stands
        self._push(entry)

    def forget(self, uid: str) -> None:
        """The session needs no more attention here (ended, deleted, or not Active)."""
        self.entries.pop(uid, None)  # its heap items are skipped when they come up

    def _push(self, entry: Entry) -> None:
        self.entries[entry.uid] = entry
        if len(self._heap) > 2 * len(self.entries) + 64:  # drop the items of stale entries
            self._heap = [
                (e.at, next(self._seq), e) for e in self.entries.values() if e is not entry
            ]
            heapq.heapify(self._heap)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (entry.at, next(self._seq), entry))
        if earliest is None or entry.at < earliest:
            self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._supervise(), name="session lifetimes")

    def alive(self) -> bool:
        """The loop runs and has beaten recently (``/healthz``)."""
        running = self._loop is not None and not self._loop.done()
        return running and time.monotonic() - self.beat < STALE_SECONDS

    async def stop(self) -> None:
        """Stop the loop; in-flight actions get :data:`STOP_SECONDS` to finish, then cancelled."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=STOP_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts += 1
                logger.exception("the session lifetime loop failed; restarting it")
                await asyncio.sleep(RETRY_SECONDS)

    async def _run(self) -> None:
        while True:
            self.beat = time.monotonic()
            self._wake.clear()  # before looking: a push from now on wakes the wait below
            due = self._pop_due(self._clock())
            if due:
                await self._fire(due)
            wait = RETRY_SECONDS
            if self._heap:
                wait = min(wait, max(0.0, self._heap[0][0] - self._clock()))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # no task per wait, unlike wait_for
                        await self._wake.wait()

    def _pop_due(self, now: float) -> list[tuple[Entry, lifetimes.Due]]:
        found: list[tuple[Entry, lifetimes.Due]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, entry = heapq.heappop(self._heap)
            if self.entries.get(entry.uid) is not entry:
                continue  # replaced or forgotten since
            decided = _upkeep(entry, now)
            if decided.at is None:
                self.forget(entry.uid)
                continue
            retry = dataclasses.replace(entry, at=decided.at)
            self._push(retry)  # looked at again if the action does not succeed
            if decided.due is not None and entry.uid not in self._running:
                found.append((retry, decided.due))
        return found

    async def _fire(self, due: list[tuple[Entry, lifetimes.Due]]) -> None:
        try:
            leads = await self._leading()
        except (
            Exception
        ) as e:  # cannot tell: act (every action is conditional, and it fails closed)
            logger.warning("could not read the peering record, acting anyway: %s", e)
            leads = True
        if not leads:
            return  # paused: the retry entries pushed above come up again in a second
        for entry, what in due:
            task = asyncio.create_task(self._carry_out(entry, what), name=f"session {entry.uid}")
            self._running[entry.uid] = task

    async def _carry_out(self, entry: Entry, what: lifetimes.Due) -> None:
        body = entry.body()
        try:
            await self._act(body, what)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the retry entry stays: tried again in a second
            logger.warning(
                "session %s/%s: %s failed, retrying in %.0f s: %s",
                entry.namespace,
                entry.name,
                what.value,
                RETRY_SECONDS,
                e,
            )
            return
        finally:
            self._running.pop(entry.uid, None)
        if self.entries.get(entry.uid) is entry:  # no newer event meanwhile: decide on the result
            self.see(body)


async def act(body: api.Json, due: lifetimes.Due) -> None:
    """What is due, carried out as the handlers do it (each reads the session fresh, under its
    lock, and does nothing once it is no longer Active)."""
    kube = api.default()
    if due is lifetimes.Due.END:
        await session_revocation.revoke(
            kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended"
        )
    elif due is lifetimes.Due.EXPIRE:
        await session_revocation.revoke(
            kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed"
        )
    elif due is lifetimes.Due.ROTATE:
        await session_rotation.rotate(kube, body)
    else:
        await _finish_revocation(kube, body)


async def _finish_revocation(kube: api.Kube, body: api.Json) -> None:
    """A terminal session whose credentials may remain (``CredentialsRevoked`` not True): delete
    them until they are gone, on a fresh read under the session's lock."""
    meta = body["metadata"]
    async with session_state.STATE.session_locks[meta["uid"]]:
        fresh = await resources.get_session(kube, meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"]["uid"] != meta["uid"]:
            return  # gone: deleting it revoked its credentials (the delete handler)
        await session_revocation.remove_credentials(kube, fresh)
        body.update(fresh)


class Leadership:
    """Whether this replica leads, by kopf's peering rule, read at most once a second."""

    def __init__(self, kube: api.Kube, name: str | None, priority: int) -> None:
        self._kube, self._name, self._priority = kube, name, priority
        self._checked = -LEADERSHIP_CACHE_SECONDS
        self._leads = True

    async def __call__(self) -> bool:
        if self._name is None:  # standalone: kopf never pauses
            return True
        if time.monotonic() - self._checked >= LEADERSHIP_CACHE_SECONDS:
            peers = await peering.peers(self._kube, self._name)
            self._leads = lifetimes.leads(
                peers, self._priority, datetime.datetime.now(datetime.UTC)
            )
            self._checked = time.monotonic()
        return self._leads


def _shallow(body: kopf.Body) -> api.Json:
    """The top level of a kopf body as a plain dict; nested values are kopf's own (read only)."""
    return {key: body[key] for key in ("metadata", "spec", "status") if key in body}


@kopf.index(GROUP, VERSION, session_fields.PLURAL)
async def lifetime_deadlines(body: kopf.Body, memo: Any, **_: Any) -> None:
    """Every session event but its deletion (the initial listing too) updates the schedule.

    An index handler, not an event handler: the schedule is the operator's index of sessions by
    their next deadline. kopf runs index handlers on every event, before any other handler, with
    none of a handler's bookkeeping (an event handler cost a cause, a handler run and a
    ``succeeded`` log line per event, three or four events per session: issue 8). Nothing is
    kept in kopf's own index (it returns None); a deletion, which kopf does not pass to index
    handlers, is :func:`deleted_from_schedule`'s."""
    schedule: Schedule | None = getattr(memo, "lifetimes", None)
    if schedule is None:
        return
    view = _shallow(body)
    schedule.see(view)
    if (view.get("status") or {}).get("phase") == ACTIVE:
        session_state.count_in(view["spec"]["grantRef"]["name"], view["metadata"]["uid"])


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(GROUP, VERSION, session_fields.PLURAL, when=_deleted)
async def deleted_from_schedule(body: kopf.Body, memo: Any, **_: Any) -> None:
    """A deleted session needs no more attention."""
    schedule: Schedule | None = getattr(memo, "lifetimes", None)
    if schedule is not None:
        schedule.forget(str(body["metadata"]["uid"]))
