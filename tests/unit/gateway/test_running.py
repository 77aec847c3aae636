"""The gateway on its own loop and thread: started, fed, handed back to the controllers, stopped."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from agent_authority.gateway import running, server, watching


class FakeGateway:
    """What the runner needs of a :class:`server.Gateway`: start, stop, and ``hand_over``."""

    def __init__(self) -> None:
        self.hand_over: Any = None
        self.started_on: int | None = None
        self.stopped_on: int | None = None

    async def start(self) -> None:
        self.started_on = threading.get_ident()

    async def stop(self) -> None:
        self.stopped_on = threading.get_ident()


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The session watch, faked: lists nothing, records the thread it runs on, then waits."""
    threads: list[int] = []

    async def run(gw: server.Gateway, synced: asyncio.Event | None = None) -> None:
        threads.append(threading.get_ident())
        assert synced is not None
        synced.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(watching, "run", run)
    return threads


def test_the_gateway_and_its_watch_run_on_a_thread_of_their_own(watched: list[int]) -> None:
    fake = FakeGateway()

    async def main() -> int:
        runner = running.Runner(fake)  # type: ignore[arg-type]
        await runner.start(sync_seconds=5)
        assert fake.started_on is not None
        assert watched == [fake.started_on]
        await runner.stop()
        return threading.get_ident()

    controllers = asyncio.run(main())
    assert fake.started_on != controllers
    assert fake.stopped_on == fake.started_on


def test_a_controllers_loop_that_is_busy_does_not_hold_up_the_gateways(
    watched: list[int],
) -> None:
    """The point of the thread: a callback that blocks the controllers' loop for 300 ms leaves
    the gateway's loop answering (it only waits for the interpreter lock, never for the
    callback to end)."""
    fake = FakeGateway()
    seen: list[float] = []

    async def ticks() -> None:
        for _ in range(30):
            seen.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> tuple[float, float]:
        runner = running.Runner(fake)  # type: ignore[arg-type]
        await runner.start(sync_seconds=5)
        ticking = asyncio.run_coroutine_threadsafe(ticks(), runner._loop)
        await asyncio.sleep(0.02)
        blocked_from = time.monotonic()
        time.sleep(0.3)  # noqa: ASYNC251 - the point: a long callback on the controllers' loop
        blocked_to = time.monotonic()
        await asyncio.wrap_future(ticking)
        await runner.stop()
        return blocked_from, blocked_to

    blocked_from, blocked_to = asyncio.run(main())
    during = [t for t in seen if blocked_from < t < blocked_to]
    assert len(during) >= 5, f"the gateway's loop stood still too: {len(during)} ticks in 300 ms"


def test_work_handed_over_runs_on_the_controllers_loop(watched: list[int]) -> None:
    fake = FakeGateway()

    async def main() -> tuple[int, int]:
        runner = running.Runner(fake)  # type: ignore[arg-type]
        await runner.start(sync_seconds=5)
        ran_on: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def revocation() -> None:
            ran_on.set_result(threading.get_ident())

        async def from_the_gateway() -> None:
            assert fake.hand_over is not None
            fake.hand_over(revocation())

        handing = asyncio.run_coroutine_threadsafe(from_the_gateway(), runner._loop)
        await asyncio.wrap_future(handing)
        got = await asyncio.wait_for(ran_on, 5)
        await runner.stop()
        return got, threading.get_ident()

    ran_on, controllers = asyncio.run(main())
    assert ran_on == controllers


def test_the_start_fails_when_the_first_listing_never_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never(gw: server.Gateway, synced: asyncio.Event | None = None) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(watching, "run", never)
    fake = FakeGateway()

    async def main() -> bool:
        runner = running.Runner(fake)  # type: ignore[arg-type]
        with pytest.raises(TimeoutError):
            await runner.start(sync_seconds=0.2)
        return runner._thread.is_alive()

    alive = asyncio.run(main())
    assert fake.stopped_on is not None, "a failed start stops what it started (the port)"
    assert not alive


def test_the_gateways_loop_is_alive_while_it_runs(watched: list[int]) -> None:
    """``/healthz`` asks the gateway's loop too: it beats while it runs, not after."""
    fake = FakeGateway()

    async def main() -> tuple[bool, bool]:
        runner = running.Runner(fake)  # type: ignore[arg-type]
        await runner.start(sync_seconds=5)
        running_now = runner.alive(stale_seconds=5)
        await runner.stop()
        await asyncio.sleep(0.2)
        return running_now, runner.alive(stale_seconds=0.1)

    assert asyncio.run(main()) == (True, False)
