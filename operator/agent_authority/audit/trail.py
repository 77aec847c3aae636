"""The operator's audit trail: one signed, hash-chained record per decision.

A process-wide :class:`Trail` wraps a :class:`chain.Chain` writing JSON lines. It is disabled
(records nothing) until :func:`open` is called by the runtime with a log path and a signing key;
the public key is written beside the private one (``<key>.pub``) for ``agent-authority audit
verify``. Kubernetes Events mirror the same decisions; they are posted by the controllers.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from typing import Any

from agent_authority.audit import chain, signing
from agent_authority.models import audit as models

logger = logging.getLogger(__name__)
Event = models.AuditEvent


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
    ) -> models.AuditRecord | None:
        """Append one record about ``body`` (a Kubernetes object); None when disabled."""
        if self._chain is None:
            return None
        meta = body.get("metadata") or {}
        entry = models.AuditEntry(
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
            details={k: v for k, v in (details or {}).items() if v is not None},
        )
        return self._chain.append(entry)

    async def arecord(
        self, event: models.AuditEvent, body: dict[str, Any], **kwargs: Any
    ) -> models.AuditRecord | None:
        """:meth:`record` off the event loop (appends are fsync'ed)."""
        if self._chain is None:
            return None
        return await asyncio.to_thread(lambda: self.record(event, body, **kwargs))

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()


TRAIL = Trail()


def open_trail(log_path: pathlib.Path, key_path: pathlib.Path) -> Trail:
    """Open (or continue) the trail at ``log_path`` signed with the key at ``key_path``."""
    key = signing.load_or_create_private_key(key_path)
    public = key_path.with_name(key_path.name + ".pub")
    if not public.exists():
        signing.write_public_key(key.public_key(), public)
    log = chain.Chain.resume(log_path, signing.Signer(key), clock=chain.system_clock)
    TRAIL._chain = log
    logger.info("audit trail %s (verify with the public key %s)", log_path, public)
    return TRAIL
