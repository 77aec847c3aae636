"""The one schedule of Active sessions: expiry, rotation, end retries, pausing, supervision."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agent_authority.controllers import session_lifetime
from agent_authority.policy import lifetimes

Due = lifetimes.Due
WITHIN = 5.0  # a generous bound: each case is due within a fraction of a second


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_lifetime, "RETRY_SECONDS", 0.05)


def _iso(delta: float) -> str:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta)
    return at.isoformat().replace("+00:00", "Z")


def _session(
    uid: str = "u1",
    *,
    phase: str = "Active",
    expires_in: float = 3600,
    rotated_ago: float = 0,
    token_life: float = 3600,
    ended: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": f"s-{uid}", "uid": uid},
        "spec": {"grantRef": {"name": "g"}, "ended": ended},
        "status": {
            "phase": phase,
            "expiresAt": _iso(expires_in),
            "tokenRotatedAt": _iso(-rotated_ago),
            "tokenExpiresAt": _iso(token_life - rotated_ago),
        },
    }


class Recorder:
    """The actions asked for, in order; ``result`` is what each leaves in the body (as the real
    ones do: revoke and rotate update the body they are given)."""

    def __init__(self, result: Callable[[dict[str, Any], Due], dict[str, Any] | None]) -> None:
        self.calls: list[tuple[str, Due]] = []
        self.result = result
        self.event = asyncio.Event()
        self.fail_first = 0

    async def __call__(self, body: dict[str, Any], due: Due) -> None:
        self.calls.append((body["metadata"]["uid"], due))
        self.event.set()
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("apiserver unavailable")
        after = self.result(body, due)
        if after is not None:
            body.update(after)


def _ends(body: dict[str, Any], due: Due) -> dict[str, Any]:
    phase = {Due.END: "Ended", Due.EXPIRE: "Expired"}.get(due, "Active")
    if phase == "Active":  # rotated: a fresh token for another hour
        return _session(body["metadata"]["uid"])
    return {**_session(body["metadata"]["uid"]), "status": {"phase": phase}}


def _leads() -> Callable[[], Awaitable[bool]]:
    async def leading() -> bool:
        return True

    return leading


async def _until(check: Callable[[], bool], within: float = WITHIN) -> None:
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within} s")


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())


def test_a_session_is_expired_when_its_ttl_passes() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.start()
        schedule.see(_session(expires_in=0.2))
        await _until(lambda: bool(act.calls))
        await asyncio.sleep(0.2)
        await schedule.stop()
        assert act.calls == [("u1", Due.EXPIRE)]
        assert schedule.entries == {}  # Expired: nothing more to do

    _run(main)


def test_a_session_already_past_its_ttl_is_expired_at_once_after_a_restart() -> None:
    """A new schedule (an operator restart) is fed by the initial listing: deadlines rebuilt."""

    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.see(_session("late", expires_in=-30))
        schedule.see(_session("fine"))
        schedule.start()
        await _until(lambda: bool(act.calls))
        await asyncio.sleep(0.2)
        await schedule.stop()
        assert act.calls == [("late", Due.EXPIRE)]
        assert set(schedule.entries) == {"fine"}

    _run(main)


def test_a_token_is_rotated_when_due_and_the_next_rotation_is_scheduled() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads(), rotate_after=lambda: 0.8)
        schedule.see(_session(rotated_ago=2900, token_life=3600))  # due 0.8 x 3600 = 2880 s
        schedule.start()
        await _until(lambda: bool(act.calls))
        await asyncio.sleep(0.2)
        await schedule.stop()
        assert act.calls == [("u1", Due.ROTATE)]
        rotated = schedule.entries["u1"]
        assert rotated.rotate_at is not None
        assert rotated.at == pytest.approx(rotated.rotate_at)
        assert rotated.at > datetime.datetime.now(datetime.UTC).timestamp() + 2000

    _run(main)


def test_an_end_the_event_handler_did_not_finish_is_retried() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.start()
        schedule.see(_session(ended=True))
        await _until(lambda: bool(act.calls))
        await asyncio.sleep(0.2)
        await schedule.stop()
        assert act.calls == [("u1", Due.END)]

    _run(main)


def test_a_failed_expiry_is_tried_again_until_it_succeeds() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        act.fail_first = 2
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.start()
        schedule.see(_session(expires_in=-1))
        await _until(lambda: len(act.calls) >= 3)
        await asyncio.sleep(0.2)
        await schedule.stop()
        assert act.calls == [("u1", Due.EXPIRE)] * 3
        assert schedule.entries == {}

    _run(main)


def test_a_session_that_ended_or_was_deleted_is_forgotten() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.see(_session("a", expires_in=0.1))
        schedule.see(_session("b", expires_in=0.1))
        schedule.see({**_session("a"), "status": {"phase": "Revoked"}})
        schedule.forget("b")
        schedule.start()
        await asyncio.sleep(0.4)
        await schedule.stop()
        assert act.calls == []

    _run(main)


def test_nothing_is_done_while_another_replica_leads() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        leading = False

        async def leads() -> bool:
            return leading

        schedule = session_lifetime.Schedule(act, leads)
        schedule.start()
        schedule.see(_session(expires_in=-1))
        await asyncio.sleep(0.3)
        assert act.calls == []
        leading = True  # the leader went away: this replica takes over
        await _until(lambda: bool(act.calls))
        await schedule.stop()
        assert act.calls == [("u1", Due.EXPIRE)]

    _run(main)


def test_a_crashed_loop_is_restarted_with_its_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        real = schedule._pop_due
        crashes = [RuntimeError("bug")]

        def pop_due(now: float) -> Any:
            if crashes:
                raise crashes.pop()
            return real(now)

        monkeypatch.setattr(schedule, "_pop_due", pop_due)
        schedule.see(_session(expires_in=-1))
        schedule.start()
        await _until(lambda: bool(act.calls))
        assert schedule.alive()
        await schedule.stop()
        assert schedule.restarts == 1
        assert act.calls == [("u1", Due.EXPIRE)]
        assert not schedule.alive()

    _run(main)


def test_stopping_lets_an_action_in_flight_finish() -> None:
    async def main() -> None:
        finished: list[str] = []

        async def slow(body: dict[str, Any], due: Due) -> None:
            await asyncio.sleep(0.3)
            finished.append(body["metadata"]["uid"])

        schedule = session_lifetime.Schedule(slow, _leads())
        schedule.see(_session(expires_in=-1))
        schedule.start()
        await asyncio.sleep(0.1)  # the expiry has started
        await schedule.stop()
        assert finished == ["u1"]

    _run(main)


def test_a_thousand_idle_sessions_cost_no_task_each() -> None:
    async def main() -> None:
        act = Recorder(_ends)
        schedule = session_lifetime.Schedule(act, _leads())
        before = len(asyncio.all_tasks())
        schedule.start()
        for i in range(1000):
            schedule.see(_session(f"u{i}"))
            schedule.see(_session(f"u{i}"))  # a second event that changes no time
        await asyncio.sleep(0.1)
        assert len(asyncio.all_tasks()) == before + 1  # the one loop
        assert len(schedule.entries) == 1000
        await schedule.stop()
        assert act.calls == []

    _run(main)


def _revoked(done: bool) -> dict[str, Any]:
    condition = {"type": "CredentialsRevoked", "status": "True" if done else "False"}
    return {**_session("gw"), "status": {"phase": "Revoked", "conditions": [condition]}}


def test_credentials_left_after_a_revoked_status_are_deleted_until_they_are_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_lifetime, "FINISH_SECONDS", 0.1)

    async def main() -> None:
        act = Recorder(lambda body, due: {**_revoked(done=True), "metadata": body["metadata"]})
        act.fail_first = 1  # the first retry fails too
        schedule = session_lifetime.Schedule(act, _leads())
        schedule.start()
        schedule.see(_revoked(done=True))  # nothing left: nothing to do
        schedule.see({**_revoked(done=False), "metadata": {**_session("x")["metadata"]}})
        await _until(lambda: len(act.calls) >= 2)
        await asyncio.sleep(0.3)
        await schedule.stop()
        assert act.calls == [("x", Due.FINISH)] * 2
        assert schedule.entries == {}  # CredentialsRevoked is True now

    _run(main)


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Peering:
    """Answers reads of the ClusterKopfPeering with ``status``, counting them."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.reads = 0

    def get_cluster_custom_object(self, *args: Any, **_: Any) -> _Response:
        self.reads += 1
        return _Response({"metadata": {"name": args[-1]}, "status": self.status})


class _Kube:
    def __init__(self, status: dict[str, Any]) -> None:
        self.custom = _Peering(status)


def _seen(ago: float) -> str:
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)).isoformat()


def test_a_replica_outranked_by_a_live_peer_does_not_lead_and_asks_once_a_second() -> None:
    status = {
        "me": {"priority": -200, "lifetime": 15, "lastseen": _seen(1)},
        "older": {"priority": -100, "lifetime": 15, "lastseen": _seen(1)},
    }
    kube = _Kube(status)
    leadership = session_lifetime.Leadership(kube, "aa", -200)  # type: ignore[arg-type]
    assert asyncio.run(leadership()) is False
    assert asyncio.run(leadership()) is False
    assert kube.custom.reads == 1  # cached for a second
    status["older"]["lastseen"] = _seen(60)  # the leader died
    leadership._checked -= session_lifetime.LEADERSHIP_CACHE_SECONDS
    assert asyncio.run(leadership()) is True


def test_a_standalone_replica_always_leads_without_asking() -> None:
    kube = _Kube({})
    assert asyncio.run(session_lifetime.Leadership(kube, None, 0)()) is True  # type: ignore[arg-type]
    assert kube.custom.reads == 0


def test_the_index_handler_schedules_every_event_and_a_deletion_forgets() -> None:
    """kopf calls ``lifetime_deadlines`` for every event but a deletion (it passes deletions to
    no index handler), and ``deleted_from_schedule`` for deletions only."""

    async def main() -> None:
        schedule = session_lifetime.Schedule(Recorder(_ends), _leads())
        memo = type("Memo", (), {"lifetimes": schedule})()
        body = _session("a")
        assert await session_lifetime.lifetime_deadlines(body=body, memo=memo) is None
        assert set(schedule.entries) == {"a"}  # the schedule is the index: kopf's keeps nothing
        await session_lifetime.lifetime_deadlines(
            body={**body, "status": {"phase": "Ended"}}, memo=memo
        )
        assert schedule.entries == {}  # not Active any more
        await session_lifetime.lifetime_deadlines(body=_session("b"), memo=memo)
        assert session_lifetime._deleted(type="DELETED")
        assert not session_lifetime._deleted(type="MODIFIED")
        await session_lifetime.deleted_from_schedule(body=_session("b"), memo=memo)
        assert schedule.entries == {}
        # before the schedule exists (start-up), events change nothing and do not fail
        await session_lifetime.lifetime_deadlines(body=body, memo=object())

    _run(main)
