"""The session gateway on an event loop of its own, in a thread of its own.

The operator's event loop is kopf's: every watch event, handler, timer, daemon and admission
review of the controllers runs on it, and a request that arrives while one of them runs waits
for it to finish (the gateway's tail at 200 requests/s was made of such waits, see
docs/benchmarks.md). On its own loop the gateway waits at most one interpreter switch interval
(:data:`server.SWITCH_INTERVAL_SECONDS`) for the controllers, whatever they do.

What crosses between the two loops, and how:

- the gateway's server, its session watch (:mod:`watching`), its view, its audit-record queue
  and its TokenReview cache live on the gateway's loop and are only touched from there;
- a revocation for deviation (:func:`controllers.deviations.revoke_for_deviation`) runs on the
  controllers' loop (the session locks of the controllers and kopf's Event posting belong to
  it): :meth:`Runner.on_controllers` hands it over with ``run_coroutine_threadsafe``;
- Kubernetes calls (:mod:`agent_authority.kube.api`) keep one connection pool per loop, the
  audit trail is locked for threads, the metrics are thread-safe.

Start and stop are called from the controllers' loop and wait for the gateway's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any

from agent_authority.gateway import server, watching

logger = logging.getLogger(__name__)

STOP_SECONDS = 15.0
BEAT_SECONDS = 1.0


class Runner:
    """Runs one :class:`server.Gateway` (server and session watch) on its own loop and thread."""

    def __init__(self, gateway: server.Gateway) -> None:
        self.gateway = gateway
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="session-gateway", daemon=True)
        self._controllers: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None
        self._beat = time.monotonic()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def start(self, sync_seconds: float) -> None:
        """Start the loop, the server and the watch; return once the view holds the first
        listing (fail closed until then: an empty view refuses everyone)."""
        self._controllers = asyncio.get_running_loop()
        self.gateway.hand_over = self.on_controllers
        self._thread.start()
        try:
            await self._there(self._start(sync_seconds))
        except BaseException:
            await self.stop()  # a start retried later must find the port free again
            raise

    def alive(self, stale_seconds: float) -> bool:
        """Whether the gateway's loop ran in the last ``stale_seconds`` (``/healthz``)."""
        return time.monotonic() - self._beat < stale_seconds

    async def _beats(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(BEAT_SECONDS)

    async def _start(self, sync_seconds: float) -> None:
        self._beating = asyncio.create_task(self._beats(), name="gateway heartbeat")
        await self.gateway.start()
        synced = asyncio.Event()
        self._watch = asyncio.create_task(watching.run(self.gateway, synced), name="gateway watch")
        await asyncio.wait_for(synced.wait(), sync_seconds)

    async def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._there(self._stop()), STOP_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, STOP_SECONDS)

    async def _stop(self) -> None:
        for task in (self._watch, self._beating):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.gateway.stop()

    async def _there(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the gateway's loop and wait for it here."""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    def on_controllers(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` on the controllers' loop (called from the gateway's); errors are logged."""
        assert self._controllers is not None
        future = asyncio.run_coroutine_threadsafe(work, self._controllers)
        future.add_done_callback(_log_failure)


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("gateway work on the controllers' loop failed", exc_info=future.exception())
