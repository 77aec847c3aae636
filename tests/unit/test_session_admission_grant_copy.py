"""The session webhooks read the grant from the operator's watched copy, and refuse only on a
fresh read (the copy may lag a grant change by a watch round trip).

The apiserver is replaced by a function returning the "fresh" grant (unit tests only); the real
webhooks against the real apiserver are in tests/e2e/test_sessions.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from agent_authority import indexes
from agent_authority.kube import api, resources
from agent_authority.webhooks import sessions as webhooks

SPEC: dict[str, Any] = {
    "grantRef": {"name": "sre-bot"},
    "incident": {"id": "INC-1", "severity": "SEV2", "class": "latency"},
    "purpose": "p99",
}
USER = {"username": "alice", "groups": ["ai-agents"]}


def grant_body(severities: list[str], max_ttl: int = 3600) -> dict[str, Any]:
    return {
        "metadata": {"name": "sre-bot", "resourceVersion": "1"},
        "spec": {
            "subjects": [{"kind": "User", "name": "alice"}],
            "incidents": {"severities": severities, "classes": ["latency"]},
            "read": [{"name": "pods", "namespaces": ["shop"], "resources": ["pods"]}],
            "session": {"maxTtlSeconds": max_ttl, "maxConcurrentSessions": 5},
        },
    }


class Apiserver:
    """What a fresh GET of the grant returns (set by each test), and how many GETs were made."""

    def __init__(self) -> None:
        self.grant: dict[str, Any] | None = None
        self.gets = 0

    async def get_grant(self, _kube: Any, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.grant


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Apiserver:
    server = Apiserver()
    monkeypatch.setattr(api, "_default", object())
    monkeypatch.setattr(resources, "get_grant", server.get_grant)
    return server


def admit(watched: dict[str, Any] | None) -> None:
    index = {"sre-bot": [watched]} if watched is not None else {}
    asyncio.run(
        webhooks.admit(
            spec=dict(SPEC),
            namespace="agents",
            userinfo=USER,
            grants_by_name=index,
            sessions_by_grant={},
        )
    )


def test_admits_on_the_watched_copy_without_a_get(fresh: Apiserver) -> None:
    fresh.grant = grant_body(["SEV2"])
    admit(grant_body(["SEV2"]))
    assert fresh.gets == 0


def test_a_refusal_on_a_stale_copy_is_retried_on_a_fresh_read(fresh: Apiserver) -> None:
    fresh.grant = grant_body(["SEV1", "SEV2"])  # widened a moment ago
    admit(grant_body(["SEV1"]))  # the copy has not seen it yet: admitted all the same
    assert fresh.gets == 1


def test_refuses_when_the_fresh_read_refuses_too(fresh: Apiserver) -> None:
    fresh.grant = grant_body(["SEV1"])
    with pytest.raises(kopf.AdmissionError, match="SEV2"):
        admit(grant_body(["SEV1"]))
    assert fresh.gets == 1


def test_without_a_watched_copy_the_grant_is_read(fresh: Apiserver) -> None:
    fresh.grant = grant_body(["SEV2"])
    admit(None)
    assert fresh.gets == 1


def test_the_ttl_default_comes_from_the_watched_copy(fresh: Apiserver) -> None:
    patch = kopf.Patch()
    asyncio.run(
        webhooks.stamp(
            spec=dict(SPEC),
            meta={},
            userinfo=USER,
            patch=patch,
            grants_by_name={"sre-bot": [grant_body(["SEV2"], max_ttl=900)]},
        )
    )
    assert patch["spec"]["ttlSeconds"] == 900
    assert fresh.gets == 0


def test_the_index_hands_out_copies() -> None:
    body = grant_body(["SEV2"])
    got = indexes.grant({"sre-bot": [body]}, "sre-bot")
    assert got == body
    assert got is not None
    got["spec"]["incidents"]["severities"].append("SEV1")
    assert body["spec"]["incidents"]["severities"] == ["SEV2"]
    assert indexes.grant({}, "sre-bot") is None
    assert indexes.grant(None, "sre-bot") is None
