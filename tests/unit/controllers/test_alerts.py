"""The alert check's reads: no alert-bound grant, no session listing (unit test; the check
itself runs against a real Alertmanager in tests/e2e/test_alerts.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_authority.controllers import alerts
from agent_authority.kube import resources

PLAIN_GRANT = {"metadata": {"name": "plain"}, "spec": {"subjects": [], "read": []}}


def test_no_alert_bound_grant_lists_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []

    async def list_grants(kube: Any) -> list[dict[str, Any]]:
        listed.append("grants")
        return [PLAIN_GRANT]

    async def list_sessions(kube: Any, **_: Any) -> list[dict[str, Any]]:
        listed.append("sessions")
        return []

    monkeypatch.setattr(resources, "list_grants", list_grants)
    monkeypatch.setattr(resources, "list_sessions", list_sessions)
    resolver = alerts.Resolver(kube=None, poll_seconds=0)  # type: ignore[arg-type]
    assert asyncio.run(resolver.check()) == 0
    assert listed == ["grants"]
