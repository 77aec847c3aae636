"""The operator's audit trail: one signed, hash-chained record per decision.

A process-wide :class:`Trail` wraps a :class:`chain.Chain` writing JSON lines. It records nothing
until :func:`open_trail` is called by the runtime; the runtime opens it by default (a default
path) and only an explicit ``--no-audit-trail`` leaves it off. Kubernetes Events mirror the same
decisions; they are posted by the controllers.

What :meth:`Trail.record` adds to what its callers pass (:mod:`~agent_authority.audit.attribution`):
who asked, who decided (the policy, or the people who approved or denied, with their reasons), and
a deterministic record id per transition, so a transition replayed after a crash is recorded once.

Files: the log, the signing key (``<log>.key`` unless given; created with the log, never beside an
existing log: a missing key next to records is refused, not silently replaced by a new chain), its
public key ``<key>.pub``, and ``<log>.root.pub``, the public key the log began with (what
``agent-authority audit verify`` needs; later keys are introduced by signed hand-over records).
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Sequence
from typing import Any

from agent_authority import failpoints
from agent_authority.audit import attribution, chain, errors, signing
from agent_authority.models import audit as models

logger = logging.getLogger(__name__)
Event = models.AuditEvent
Written = models.AuditRecord | models.Checkpoint
"""What an append returns: the new record, or the checkpoint of the record already holding it."""


class Trail:
    def __init__(self, log: chain.Chain | None = None) -> None:
        self._chain = log

    @property
    def enabled(self) -> bool:
        return self._chain is not None

    def record(
        self,
        event: models.AuditEvent,
        body: dict[str, Any],
        *,
        correlation_id: str,
        actor: str,
        reason: str,
        message: str = "",
        details: dict[str, Any] | None = None,
        key: str | None = None,
        decided_by: list[models.Decider] | None = None,
    ) -> Written | None:
        """Append one record about ``body`` (a Kubernetes object); None when disabled.

        ``key`` tells apart repeated transitions of one kind on one object when the default
        (:func:`attribution.discriminator`) cannot; ``decided_by`` overrides who decided.
        """
        if self._chain is None:
            return None
        written = self._chain.append(
            entry(
                event,
                body,
                correlation_id=correlation_id,
                actor=actor,
                reason=reason,
                message=message,
                details=details,
                key=key,
                decided_by=decided_by,
            )
        )
        if isinstance(written, models.AuditRecord):  # appended now, not a replay already held
            failpoints.hit(f"{failpoints.AFTER_AUDIT}:{event.value}")
        return written

    def record_many(self, entries: Sequence[models.AuditEntry]) -> list[Written]:
        """Append ``entries`` (built with :func:`entry`) as one batch: one write and one fsync
        for all of them (:meth:`chain.Chain.append_many`). Nothing when disabled."""
        if self._chain is None:
            return []
        written = self._chain.append_many(entries)
        for one, out in zip(entries, written, strict=True):
            if isinstance(out, models.AuditRecord):
                failpoints.hit(f"{failpoints.AFTER_AUDIT}:{one.event.value}")
        return written

    async def arecord(
        self, event: models.AuditEvent, body: dict[str, Any], **kwargs: Any
    ) -> Written | None:
        """:meth:`record` off the event loop (appends are fsync'ed)."""
        if self._chain is None:
            return None
        return await asyncio.to_thread(lambda: self.record(event, body, **kwargs))

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain = None


def entry(
    event: models.AuditEvent,
    body: dict[str, Any],
    *,
    correlation_id: str,
    actor: str,
    reason: str,
    message: str = "",
    details: dict[str, Any] | None = None,
    key: str | None = None,
    decided_by: list[models.Decider] | None = None,
) -> models.AuditEntry:
    """The entry :meth:`Trail.record` appends (its arguments are documented there)."""
    meta = body.get("metadata") or {}
    facts = {k: v for k, v in (details or {}).items() if v is not None}
    return models.AuditEntry(
        event=event,
        correlation_id=correlation_id or meta.get("uid") or "none",
        actor=actor or "unknown",
        object=models.ObjectRef(
            api_version=body.get("apiVersion"),
            kind=str(body.get("kind") or "Unknown"),
            namespace=meta.get("namespace"),
            name=str(meta.get("name") or "unknown"),
            uid=meta.get("uid"),
        ),
        reason=reason,
        message=message[:32768],
        details=facts,
        record_id=attribution.record_id(
            event, body, correlation_id=correlation_id, details=facts, key=key
        ),
        requested_by=attribution.requested_by(body),
        decided_by=(
            decided_by
            if decided_by is not None
            else attribution.decided_by(event, reason, message, body)
        ),
    )


TRAIL = Trail()


def root_key_path(log_path: pathlib.Path) -> pathlib.Path:
    """Where the public key the log began with is kept: ``<log>.root.pub``."""
    return log_path.with_name(log_path.name + ".root.pub")


def _has_records(log_path: pathlib.Path) -> bool:
    try:
        return log_path.stat().st_size > 0
    except FileNotFoundError:
        return False


def open_trail(
    log_path: pathlib.Path,
    key_path: pathlib.Path,
    *,
    previous_key_path: pathlib.Path | None = None,
) -> Trail:
    """Open (or continue) the trail at ``log_path`` signed with the key at ``key_path``.

    With ``previous_key_path`` (the key the log was signed with so far), a log that continues
    with that key is handed over to the key at ``key_path`` (created if missing) by a record the
    previous key signs. Refuses (``SigningKeyError``) to create a key beside a log that has
    records: that would start a second chain nobody could tell from a forged one.
    """
    existing = _has_records(log_path)
    if existing and not key_path.exists() and previous_key_path is None:
        raise errors.SigningKeyError(
            f"the audit signing key {key_path} is missing but the audit log {log_path} has "
            "records: refusing to start a new chain beside it. Restore the key, or rotate to a "
            "new one with the old key given as the previous key, or move the log aside as "
            "evidence and start a new one"
        )
    outgoing = (
        signing.Signer(signing.load_private_key(previous_key_path))
        if previous_key_path is not None
        else None
    )
    key = signing.load_or_create_private_key(key_path)
    public = key_path.with_name(key_path.name + ".pub")
    if not public.exists():
        signing.write_public_key(key.public_key(), public)
    root_path = root_key_path(log_path)
    if root_path.exists():
        root = signing.load_public_key(root_path)
    else:  # a new log, or one from before root keys were kept: it began with this key
        root = outgoing.public_key if outgoing is not None else key.public_key()
    log = chain.Chain.resume(
        log_path, signing.Signer(key), clock=chain.system_clock, root_key=root, outgoing=outgoing
    )
    if not root_path.exists():
        signing.write_public_key(root, root_path)
    TRAIL._chain = log
    logger.info(
        "audit trail %s, signing key %s (verify with the public key %s)",
        log_path,
        log.key_id,
        root_path,
    )
    return TRAIL
