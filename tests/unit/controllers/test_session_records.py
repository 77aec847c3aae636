"""An Active session's two records (TokenMinted, SessionOpened) go to the trail as one batch,
and writing them again on resume appends nothing (unit test: an in-memory sink)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, signing, sinks, trail
from agent_authority.controllers import session_records, session_state
from agent_authority.models import audit as audit_models

SIGNER = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


class Batches(sinks.Memory):
    """A memory sink that takes batches, and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def write_many(self, records: list[audit_models.AuditRecord]) -> None:
        self.batches.append(len(records))
        for record in records:
            self.write(record)


def active_session() -> dict[str, Any]:
    return {
        "apiVersion": "agentauthority.io/v1alpha1",
        "kind": "IncidentSession",
        "metadata": {"name": "s1", "namespace": "agents", "uid": "u1", "resourceVersion": "7"},
        "spec": {
            "grantRef": {"name": "g"},
            "requester": {"username": "alice"},
            "incident": {"id": "INC-1", "severity": "high"},
        },
        "status": {
            "phase": "Active",
            "conditions": [{"type": "Ready", "status": "True", "message": "1 rule(s)"}],
            "tokenExpiresAt": "2030-01-01T00:00:00Z",
            "effectiveRules": [],
        },
    }


def test_opened_records_are_one_batch_and_not_written_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = Batches()
    clock = iter(datetime.datetime(2030, 1, 1, second=s, tzinfo=datetime.UTC) for s in range(60))
    monkeypatch.setattr(
        trail, "TRAIL", trail.Trail(chain.Chain(SIGNER, sink, clock=lambda: next(clock)))
    )
    digests: list[str | None] = []

    async def note_digest(kube: Any, body: Any, digest: str | None) -> None:
        digests.append(digest)

    monkeypatch.setattr(session_state, "note_digest", note_digest)
    body = active_session()
    asyncio.run(session_records.record_opened(None, body))  # type: ignore[arg-type]
    asyncio.run(session_records.record_opened(None, body))  # type: ignore[arg-type]  # resumed: held
    assert sink.batches == [2]
    assert [r.event for r in sink.records] == [
        audit_models.AuditEvent.TOKEN_MINTED,
        audit_models.AuditEvent.SESSION_OPENED,
    ]
    assert digests == [sink.records[-1].hash, sink.records[-1].hash]
