"""The alert check's concurrency: a notification is acted on while a poll is stuck on a slow
Alertmanager (no cluster here: the listing, Alertmanager and revocation calls are stand-ins)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_authority.controllers import alerts, session_fields, session_revocation
from agent_authority.kube import alertmanager, resources
from agent_authority.policy import incidents

SLOW = "http://127.0.0.1:1"
FAST = "http://127.0.0.1:2"


def _grant(name: str, url: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "subjects": [{"kind": "User", "name": "agent"}],
            "incidents": {
                "severities": ["SEV1"],
                "alertmanager": {"url": url, "matchers": [{"name": "team", "value": "shop"}]},
            },
            "read": [{"name": "pods", "namespaces": ["shop"], "resources": ["pods"]}],
        },
    }


def _session(name: str, grant: str, fingerprint: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "agents", "uid": f"uid-{name}"},
        "spec": {"grantRef": {"name": grant}, "incident": {"id": fingerprint}},
        "status": {"phase": session_fields.ACTIVE},
    }


class World:
    """Two alert-bound grants: one Alertmanager that hangs, one that answers at once."""

    def __init__(self) -> None:
        self.grants = {"slow": _grant("slow", SLOW), "fast": _grant("fast", FAST)}
        self.sessions = [_session("s-slow", "slow", "aaa"), _session("s-fast", "fast", "bbb")]
        self.release = asyncio.Event()
        self.ended: dict[str, str] = {}

    async def list_grants(self, _kube: Any) -> list[dict[str, Any]]:
        return list(self.grants.values())

    async def get_grant(self, _kube: Any, name: str) -> dict[str, Any] | None:
        return self.grants.get(name)

    async def list_sessions(self, _kube: Any, **_: Any) -> list[dict[str, Any]]:
        return [s for s in self.sessions if s["metadata"]["name"] not in self.ended]

    async def get_session(self, _kube: Any, _ns: str, name: str) -> dict[str, Any] | None:
        found = next(s for s in self.sessions if s["metadata"]["name"] == name)
        return {**found, "status": {"phase": "Ended"}} if name in self.ended else found

    async def firing(self, url: str, **_: Any) -> list[incidents.Alert]:
        if url == SLOW:
            await self.release.wait()  # an Alertmanager that accepts and does not answer
            return [incidents.Alert("aaa", {"team": "shop"})]
        return []  # bbb resolved

    async def revoke(self, _kube: Any, body: Any, _phase: Any, _reason: str, msg: str) -> bool:
        self.ended[body["metadata"]["name"]] = msg
        return True


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setattr(resources, "list_grants", w.list_grants, raising=False)
    monkeypatch.setattr(resources, "get_grant", w.get_grant)
    monkeypatch.setattr(resources, "list_sessions", w.list_sessions)
    monkeypatch.setattr(resources, "get_session", w.get_session)
    monkeypatch.setattr(alertmanager, "firing", w.firing)
    monkeypatch.setattr(session_revocation, "revoke", w.revoke)
    return w


async def _notified_during_a_stuck_poll(w: World) -> None:
    resolver = alerts.Resolver(kube=None, poll_seconds=0)  # type: ignore[arg-type]
    poll = asyncio.create_task(resolver.check(None, "polled"))
    await asyncio.sleep(0.05)  # the poll is now waiting on the slow Alertmanager
    ended = await asyncio.wait_for(resolver.check({"bbb"}, "notified"), timeout=2)
    assert ended == 1
    assert "notified" in w.ended["s-fast"], w.ended
    assert not poll.done()
    w.release.set()
    assert await poll == 0  # s-fast already ended; aaa still fires
    assert set(w.ended) == {"s-fast"}


def test_a_notification_is_acted_on_while_a_poll_waits_for_a_slow_alertmanager(
    world: World,
) -> None:
    asyncio.run(_notified_during_a_stuck_poll(world))
