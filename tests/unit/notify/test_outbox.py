"""Delivery: retried with backoff, then dropped; a dead or hanging receiver delays no one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from agent_authority import metrics
from agent_authority.notify import notices, outbox, receivers

NOTICE = notices.Notice(
    kind=notices.Kind.DECIDED,
    title="t",
    text="x",
    namespace="n",
    name="rr",
    object_kind="RemediationRequest",
    path="/requests/n/rr",
)


class Sink:
    """A loopback HTTP server: ``/ok`` 200, ``/dead`` 500, ``/hang`` never answers in time."""

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = {"/ok": [], "/dead": [], "/hang": []}
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, req: web.Request) -> web.Response:
        self.hits[req.path].append(time.monotonic())
        await req.read()
        if req.path == "/hang":
            await asyncio.sleep(1)
        return web.Response(status=500 if req.path == "/dead" else 200)

    async def __aenter__(self) -> Sink:
        app = web.Application()
        app.router.add_post("/{tail}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *_: Any) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _count(name: str, outcome: str) -> float:
    return metrics.NOTIFICATIONS.labels(name, outcome)._value.get()


def _config(sink: Sink, *names: str, queue: int = 10) -> receivers.Config:
    return receivers.Config(
        delivery=receivers.Delivery(
            attempts=3,
            initialBackoffSeconds=0.05,
            maxBackoffSeconds=0.1,
            timeoutSeconds=0.3,
            queueSize=queue,
        ),
        receivers=[
            receivers.Receiver(name=f"u-{n}", format="slack", url=sink.url(f"/{n}")) for n in names
        ],
    )


async def _until(check: Any, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_dead_receiver_is_retried_then_dropped_while_others_get_theirs() -> None:
    async def scenario() -> None:
        async with Sink() as sink:
            box = outbox.Outbox(_config(sink, "ok", "dead", "hang"))
            await box.start()
            dropped_before = _count("u-dead", "dropped")
            started = time.monotonic()
            box.publish(NOTICE)
            assert time.monotonic() - started < 0.01  # publishing never waits
            await _until(lambda: len(sink.hits["/ok"]) == 1, 2)
            assert time.monotonic() - started < 1  # not held up by the dead or hanging ones
            await _until(lambda: _count("u-dead", "dropped") == dropped_before + 1)
            tries = sink.hits["/dead"]
            assert len(tries) == 3
            assert tries[1] - tries[0] >= 0.05
            assert tries[2] - tries[1] >= 0.1  # doubled
            await _until(lambda: len(sink.hits["/hang"]) == 3)  # timeouts count as failures
            assert _count("u-ok", "delivered") >= 1
            await box.stop()

    asyncio.run(scenario())


def test_a_full_queue_drops_instead_of_waiting() -> None:
    async def scenario() -> None:
        async with Sink() as sink:
            box = outbox.Outbox(_config(sink, "hang", queue=1))
            await box.start()
            overflow_before = _count("u-hang", "overflow")
            started = time.monotonic()
            for _ in range(5):
                box.publish(NOTICE)
            assert time.monotonic() - started < 0.05
            assert _count("u-hang", "overflow") >= overflow_before + 3
            await box.stop()

    asyncio.run(scenario())


def test_receivers_get_only_the_kinds_they_asked_for() -> None:
    async def scenario() -> None:
        async with Sink() as sink:
            config = _config(sink, "ok")
            config.receivers[0].events = [notices.Kind.SESSION_REVOKED]
            box = outbox.Outbox(config)
            await box.start()
            box.publish(NOTICE)
            await asyncio.sleep(0.2)
            assert sink.hits["/ok"] == []
            await box.stop()

    asyncio.run(scenario())


def test_an_outbox_that_was_never_started_ignores_notices() -> None:
    outbox.Outbox().publish(NOTICE)  # the operator without --notify-config
