"""Deliver notices: one bounded queue and one background task per receiver.

:meth:`Outbox.publish` never waits and never raises: it puts the notice on each interested
receiver's queue, and when a queue is full (its receiver is down and the backlog reached
``queueSize``) the notice is dropped and counted. Each receiver's task POSTs with a timeout and
retries failures (connection errors, timeouts, non-2xx answers) with doubling, capped backoff up
to ``attempts`` times, then drops the notice. A dead receiver therefore delays nobody: not the
operator's handlers, not the approval it announces, not the other receivers.

The operator uses the process-wide :data:`OUTBOX` (empty until :meth:`Outbox.start`), as the
audit trail uses ``trail.TRAIL``: the request and session handlers publish into it without
every call site carrying it along.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from agent_authority import metrics
from agent_authority.notify import formats, notices, receivers

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, config: receivers.Config | None = None) -> None:
        self.config = config or receivers.Config()
        self._queues: dict[str, asyncio.Queue[notices.Notice]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self, config: receivers.Config | None = None) -> None:
        """Start one delivery task per receiver (in the running event loop)."""
        if config is not None:
            self.config = config
        if self.running or not self.config.receivers:
            return
        self._http = aiohttp.ClientSession()
        for receiver in self.config.receivers:
            queue: asyncio.Queue[notices.Notice] = asyncio.Queue(self.config.delivery.queue_size)
            self._queues[receiver.name] = queue
            self._tasks.append(
                asyncio.create_task(self._deliver(receiver, queue), name=f"notify-{receiver.name}")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def publish(self, notice: notices.Notice | None) -> None:
        """Queue ``notice`` for every receiver that wants its kind; never blocks."""
        if notice is None or not self.running:
            return
        for receiver in self.config.receivers:
            if notice.kind not in receiver.events:
                continue
            queue = self._queues[receiver.name]
            try:
                queue.put_nowait(notice)
            except asyncio.QueueFull:
                metrics.NOTIFICATIONS.labels(receiver.name, "overflow").inc()
                logger.warning("notification queue of %s full: dropped %s", receiver.name, notice)
                continue
            metrics.NOTIFICATION_QUEUE.labels(receiver.name).set(queue.qsize())

    async def _deliver(
        self, receiver: receivers.Receiver, queue: asyncio.Queue[notices.Notice]
    ) -> None:
        delivery = self.config.delivery
        while True:
            notice = await queue.get()
            metrics.NOTIFICATION_QUEUE.labels(receiver.name).set(queue.qsize())
            payload = formats.body(receiver.format, notice, self.config.page_url)
            for attempt in range(1, delivery.attempts + 1):
                problem = await self._post(receiver, payload)
                if problem is None:
                    metrics.NOTIFICATIONS.labels(receiver.name, "delivered").inc()
                    break
                metrics.NOTIFICATION_FAILURES.labels(receiver.name).inc()
                logger.warning(
                    "notification to %s failed (attempt %d of %d): %s",
                    receiver.name,
                    attempt,
                    delivery.attempts,
                    problem,
                )
                if attempt < delivery.attempts:
                    await asyncio.sleep(delivery.backoff(attempt))
            else:
                metrics.NOTIFICATIONS.labels(receiver.name, "dropped").inc()
                logger.error(
                    "notification to %s dropped after %d attempts: %s",
                    receiver.name,
                    delivery.attempts,
                    notice.title,
                )

    async def _post(self, receiver: receivers.Receiver, payload: bytes) -> str | None:
        """One attempt; the problem, or None when the receiver answered 2xx."""
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if receiver.format is formats.Format.JSON:
            headers.update(formats.signed_headers(receiver.secret, int(time.time()), payload))
        timeout = aiohttp.ClientTimeout(total=self.config.delivery.timeout_seconds)
        try:
            async with self._http.post(
                str(receiver.url), data=payload, headers=headers, timeout=timeout
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as e:
            return f"{type(e).__name__}: {e}"


OUTBOX = Outbox()
"""The operator's outbox (no receivers until the runtime starts it with a config)."""
