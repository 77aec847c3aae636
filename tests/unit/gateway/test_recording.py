"""The gateway's recorder: calls submitted close together are written as one batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from agent_authority.audit import trail
from agent_authority.gateway import recording
from agent_authority.models import audit as models


class BatchesSeen(trail.Trail):
    """A trail that keeps the size of every batch instead of writing it."""

    def __init__(self) -> None:
        super().__init__(None)
        self.batches: list[int] = []

    @property
    def enabled(self) -> bool:
        return True

    def record_many(self, entries: Sequence[models.AuditEntry]) -> list[Any]:
        self.batches.append(len(entries))
        return []


def _call(i: int) -> recording.Call:
    session = {
        "apiVersion": "agentauthority.io/v1alpha1",
        "kind": "IncidentSession",
        "metadata": {"name": "s", "namespace": "ns", "uid": "u"},
        "spec": {"grantRef": {"name": "g"}},
    }
    return recording.Call(session, f"u/{i}", "system:serviceaccount:ns:aa-s", "Forwarded", "", {})


async def _submit_spread(batch_seconds: float) -> list[int]:
    log = BatchesSeen()
    recorder = recording.Recorder(log, batch_seconds=batch_seconds)
    recorder.start()
    for i in range(20):  # one every 2 ms, as at 500 requests/s
        assert recorder.submit(_call(i))
        await asyncio.sleep(0.002)
    await recorder.close()
    assert sum(log.batches) == 20, log.batches
    return log.batches


def test_calls_close_together_share_one_batch() -> None:
    batches = asyncio.run(_submit_spread(batch_seconds=1.0))
    assert batches == [20], "every call within the batch window is one write and one fsync"


def test_without_a_window_each_call_can_be_its_own_batch() -> None:
    batches = asyncio.run(_submit_spread(batch_seconds=0))
    assert len(batches) > 1, batches
