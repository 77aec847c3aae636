"""The Active session's daemon: what it holds while idle, and what it hands to an action."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aioenums
from kopf._core.intents import stoppers

from agent_authority.controllers import handling, session_lifetime, session_revocation
from agent_authority.kube import api


def _iso(delta: float) -> str:
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta)
    return now.isoformat()


def _body(ended: bool = False) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "agentauthority.io/v1alpha1",
            "kind": "IncidentSession",
            "metadata": {"name": "s", "namespace": "ns", "uid": "uid-lifetime-test"},
            "spec": {"grantRef": {"name": "lifetime-test"}, "ended": ended},
            "status": {
                "phase": "Active",
                "expiresAt": _iso(3600),
                "tokenRotatedAt": _iso(0),
                "tokenExpiresAt": _iso(3600),
                "managedFields": [{"manager": "kopf", "fieldsV1": {"f:status": {}}}],
            },
        }
    )


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    real = handling.plain

    def counting(body: Any) -> dict[str, Any]:
        made.append(real(body))
        return made[-1]

    monkeypatch.setattr(handling, "plain", counting)
    monkeypatch.setattr(session_lifetime, "ENDED_POLL_SECONDS", 0.02)
    api.set_default(api.Kube.__new__(api.Kube))  # never called: nothing is due
    yield made
    api.set_default(None)


def test_an_idle_active_session_is_watched_without_copying_its_body(
    copies: list[dict[str, Any]],
) -> None:
    async def main() -> None:
        stopper = stoppers.DaemonStopper()
        task = asyncio.create_task(
            session_lifetime.lifetime(
                body=_body(), stopped=aioenums.AsyncFlagWaiter(stopper), logger=None
            )
        )
        await asyncio.sleep(0.3)  # about 15 rounds of the loop
        stopper.set(stoppers.DaemonStoppingReason.DAEMON_SIGNALLED)
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert copies == []


def test_an_ended_session_is_revoked_with_a_plain_copy_of_its_body(
    copies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked: list[tuple[dict[str, Any], str]] = []

    async def revoke(kube: Any, body: dict[str, Any], phase: Any, reason: str, msg: str) -> bool:
        revoked.append((body, reason))
        return True

    monkeypatch.setattr(session_revocation, "revoke", revoke)

    async def main() -> None:
        stopper = stoppers.DaemonStopper()
        body = _body(ended=True)
        await asyncio.wait_for(
            session_lifetime.lifetime(
                body=body, stopped=aioenums.AsyncFlagWaiter(stopper), logger=None
            ),
            5,
        )

    asyncio.run(main())
    assert [reason for _, reason in revoked] == ["Ended"]
    assert revoked[0][0] is copies[0]
    assert isinstance(revoked[0][0], dict)
    assert revoked[0][0]["spec"]["ended"] is True
