"""The gateway's own view of sessions, fed by the operator's watch, and its open streams.

Every replica keeps this view from the IncidentSession watch (kopf ``on.event``), so a session
that ends, expires, is revoked or narrowed is known to every replica within one watch event,
whichever replica revoked it. Lookups are by the session's ServiceAccount (what a TokenReview
names). Only fields the operator writes are trusted: ``status.serviceAccountName``,
``status.phase``, ``status.expiresAt``, ``status.effectiveRules`` (status is the operator's
alone, enforced by admission policy), plus ``spec.ended`` which can only be set to true.

Streams (watches, chunked lists, followed logs) register here; :meth:`View.observe` returns the
ones to cut when their session loses access, or when a narrowed session no longer covers them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable
from typing import Any

from agent_authority.models import grant, session
from agent_authority.policy import gateway

ACTIVE = session.SessionPhase.ACTIVE.value


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the gateway knows about one session."""

    uid: str
    namespace: str
    name: str
    grant_name: str
    service_account: str
    phase: str | None
    ended: bool
    expires_at: datetime.datetime | None
    rules: tuple[grant.PolicyRule, ...]
    body: dict[str, Any]
    """The session object as last watched (for audit records and deviation counting)."""

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def refusal(self, now: datetime.datetime) -> str | None:
        """Why this session may not make requests now, or None when it may."""
        if self.ended:
            return f"session {self.namespace}/{self.name} has ended"
        if self.phase != ACTIVE:
            return f"session {self.namespace}/{self.name} is {self.phase or 'Pending'}"
        if self.expires_at is not None and now >= self.expires_at:
            return f"session {self.namespace}/{self.name} expired at {self.expires_at.isoformat()}"
        return None


def _parse_time(value: object) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def entry_of(body: dict[str, Any], own_rules: Callable[[str], list[grant.PolicyRule]]) -> Entry:
    """The entry of a watched session; ``own_rules(namespace)`` are the rights every session has
    in its own namespace (creating remediation requests)."""
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    rules = [grant.PolicyRule.model_validate(r) for r in status.get("effectiveRules") or []]
    return Entry(
        uid=str(meta["uid"]),
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        grant_name=str((spec.get("grantRef") or {}).get("name", "")),
        service_account=str(status.get("serviceAccountName") or ""),
        phase=status.get("phase"),
        ended=bool(spec.get("ended")),
        expires_at=_parse_time(status.get("expiresAt")),
        rules=(*rules, *own_rules(str(meta["namespace"]))),
        body=body,
    )


class Stream:
    """One open streamed response; :meth:`cut` ends it from outside its handler."""

    def __init__(self, uid: str, info: gateway.RequestInfo, close: Callable[[], None]) -> None:
        self.uid = uid
        self.info = info
        self._close = close
        self.cut_reason: str | None = None

    def cut(self, reason: str) -> None:
        if self.cut_reason is None:
            self.cut_reason = reason
            self._close()


class View:
    """Sessions by ServiceAccount and uid, and the streams each one has open."""

    def __init__(self, own_rules: Callable[[str], list[grant.PolicyRule]]) -> None:
        self._own_rules = own_rules
        self._by_account: dict[tuple[str, str], Entry] = {}
        self._by_uid: dict[str, Entry] = {}
        self._cut: dict[str, str] = {}
        """Sessions this replica stopped itself (a deviation) before the watch says so."""
        self._streams: dict[str, set[Stream]] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def lookup(self, namespace: str, service_account: str) -> Entry | None:
        return self._by_account.get((namespace, service_account))

    def stopped(self, uid: str) -> str | None:
        """Why this replica stopped the session ahead of the watch, if it did."""
        return self._cut.get(uid)

    def refusal(self, uid: str) -> str | None:
        """Why the session ``uid`` may not make requests now (stopped here, ended, expired,
        revoked, or gone from the watch), or None: checked again before an answer goes out."""
        entry = self._by_uid.get(uid)
        if entry is None:
            return f"session {uid} is gone"
        return self._cut.get(uid) or entry.refusal(datetime.datetime.now(datetime.UTC))

    def observe(self, event_type: str | None, body: dict[str, Any]) -> list[tuple[Stream, str]]:
        """Apply one watch event; the streams to cut, with why."""
        uid = str(body["metadata"]["uid"])
        old = self._by_uid.pop(uid, None)
        if old is not None:
            self._by_account.pop((old.namespace, old.service_account), None)
        if event_type == "DELETED":
            self._cut.pop(uid, None)
            return self._all_streams(uid, f"session {body['metadata']['name']} was deleted")
        entry = entry_of(body, self._own_rules)
        self._by_uid[uid] = entry
        if entry.service_account:
            self._by_account[(entry.namespace, entry.service_account)] = entry
        now = datetime.datetime.now(datetime.UTC)
        why = entry.refusal(now)
        if why is not None:
            return self._all_streams(uid, why)
        if old is not None and old.rules != entry.rules:
            return [
                (
                    s,
                    f"session {entry.name} was narrowed: {gateway.describe(s.info)} is no longer "
                    "allowed",
                )
                for s in self._streams.get(uid, set())
                if not isinstance(gateway.decide(s.info, entry.rules), gateway.Allowed)
            ]
        return []

    def expired(self, now: datetime.datetime) -> list[tuple[Stream, str]]:
        """The open streams (not cut yet) of sessions that may not act at ``now``: a deadline
        passes with no watch event, so the gateway's own clock cuts them, not the controller's
        later status transition."""
        out: list[tuple[Stream, str]] = []
        for uid, streams in self._streams.items():
            entry = self._by_uid.get(uid)
            why = f"session {uid} is gone" if entry is None else entry.refusal(now)
            if why is not None:
                out.extend((s, why) for s in streams if s.cut_reason is None)
        return out

    def stop(self, uid: str, reason: str) -> list[tuple[Stream, str]]:
        """Refuse the session at once in this replica (its revocation is under way)."""
        self._cut[uid] = reason
        return self._all_streams(uid, reason)

    def _all_streams(self, uid: str, reason: str) -> list[tuple[Stream, str]]:
        return [(s, reason) for s in self._streams.get(uid, set())]

    def add_stream(self, stream: Stream) -> None:
        self._streams.setdefault(stream.uid, set()).add(stream)

    def remove_stream(self, stream: Stream) -> None:
        streams = self._streams.get(stream.uid)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.uid]

    def open_streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def entries(self) -> Iterable[Entry]:
        return self._by_uid.values()


def cut_all(streams: Iterable[tuple[Stream, str]]) -> int:
    """Cut every stream given; how many."""
    count = 0
    for stream, reason in streams:
        stream.cut(reason)
        count += 1
    return count
