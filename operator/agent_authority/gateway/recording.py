"""Every call through the gateway as a signed audit-trail record, written in batches.

Handlers :meth:`Recorder.submit` a record and go on; one task drains the queue and appends the
records to the hash chain off the event loop: a batch per thread hop, written to the log with one
write and one fsync (:meth:`trail.Trail.record_many`), so an fsync per record does not cap the
gateway's throughput. A batch collects for :data:`BATCH_SECONDS` after its first record: under
load that is one thread hop and one fsync for many requests instead of one or two each (every hop
is a GIL hand-over the event loop waits for). The queue is bounded: when the trail cannot keep
up, :meth:`submit` says so and the gateway refuses the request (503) rather than forward a call
nobody recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from agent_authority.audit import trail

MAX_PENDING = 20000
MAX_BATCH = 500
BATCH_SECONDS = 0.025
"""How long a batch waits for more records after its first one (a record is in the trail at most
this much later than without the wait)."""
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Call:
    """One session request and what became of it."""

    session: dict[str, Any]
    correlation_id: str
    actor: str
    reason: str
    message: str
    details: dict[str, Any]


class Recorder:
    def __init__(
        self, log: trail.Trail, max_pending: int = MAX_PENDING, batch_seconds: float = BATCH_SECONDS
    ) -> None:
        self._trail = log
        self._batch_seconds = batch_seconds
        self._queue: asyncio.Queue[Call] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    @property
    def enabled(self) -> bool:
        return self._trail.enabled

    @property
    def behind(self) -> bool:
        """True when the queue is full: the trail is not keeping up."""
        return self._queue.full()

    def submit(self, call: Call) -> bool:
        """Queue a record; False when the trail is too far behind to take it."""
        if not self._trail.enabled:
            return True
        try:
            self._queue.put_nowait(call)
        except asyncio.QueueFull:
            return False
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="gateway audit records")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=10)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._batch_seconds > 0 and self._queue.qsize() < MAX_BATCH:
                await asyncio.sleep(self._batch_seconds)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                logger.exception("gateway audit records could not be written")
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _write(self, batch: list[Call]) -> None:
        entries = [
            trail.entry(
                trail.Event.GATEWAY_REQUEST,
                call.session,
                correlation_id=call.correlation_id,
                actor=call.actor,
                reason=call.reason,
                message=call.message,
                details=call.details,
            )
            for call in batch
        ]
        self._trail.record_many(entries)  # one write and one fsync for the batch
        self.written += len(entries)
