"""A request the gateway refuses is counted against the grant, in as few round trips as it takes.

The apiserver is faked at the adapter functions (:mod:`agent_authority.kube.resources`): each
fake waits until its partner call has started too, so a test passes only when the calls that
need not wait for each other are in flight together (sequential calls time out).
"""

from __future__ import annotations

import asyncio
import copy
import types
import typing
from typing import Any

import pytest
from kubernetes import client

from agent_authority.audit import trail
from agent_authority.controllers import deviations, handling
from agent_authority.gateway import server
from agent_authority.kube import api, resources

SESSION = {
    "apiVersion": "agentauthority.io/v1alpha1",
    "kind": "IncidentSession",
    "metadata": {"uid": "u1", "namespace": "agents", "name": "triage", "resourceVersion": "7"},
    "spec": {"grantRef": {"name": "sre"}, "ended": False},
    "status": {"phase": "Active", "serviceAccountName": "aa-triage-1", "effectiveRules": []},
}
PARTNER_SECONDS = 2.0


class Calls:
    """The fake apiserver calls: what was called, and a meeting point for pairs of calls."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self._started: dict[str, asyncio.Event] = {}
        self.revoked: list[deviations.Denial] = []

    def _event(self, name: str) -> asyncio.Event:
        return self._started.setdefault(name, asyncio.Event())

    async def meet(self, name: str, partner: str) -> None:
        """Say ``name`` started; wait (bounded) until ``partner`` started as well."""
        self.made.append(name)
        self._event(name).set()
        await asyncio.wait_for(self._event(partner).wait(), PARTNER_SECONDS)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    made = Calls()
    denied_so_far = {"n": 0}

    async def get_session(kube: Any, namespace: str, name: str) -> dict[str, Any]:
        await made.meet("get session", "get grant")
        body = copy.deepcopy(SESSION)
        body["status"]["deniedRequests"] = denied_so_far["n"]
        return body

    async def get_grant(kube: Any, name: str) -> dict[str, Any]:
        await made.meet("get grant", "get session")
        return {"metadata": {"name": name}, "spec": {"session": {"maxDeniedRequests": 1}}}

    async def patch_status(kube: Any, namespace: str, name: str, status: Any) -> dict[str, Any]:
        await made.meet("patch status", "audit record")
        denied_so_far["n"] = status["deniedRequests"]
        return {}

    async def arecord(event: Any, body: Any, **kwargs: Any) -> None:
        await made.meet("audit record", "patch status")

    async def revoke(kube: Any, body: Any, denial: deviations.Denial) -> None:
        made.revoked.append(denial)

    monkeypatch.setattr(resources, "get_session", get_session)
    monkeypatch.setattr(resources, "get_grant", get_grant)
    monkeypatch.setattr(resources, "patch_session_status", patch_status)
    monkeypatch.setattr(trail.TRAIL, "arecord", arecord)
    monkeypatch.setattr(handling, "event", lambda *a, **k: None)
    monkeypatch.setattr(deviations, "revoke_for_deviation", revoke)
    return made


def _gateway() -> server.Gateway:
    # Never called (the calls are faked above); the gateway reads the host from it.
    configuration = client.Configuration(host="https://127.0.0.1:1")
    kube = typing.cast(api.Kube, types.SimpleNamespace(client=types.SimpleNamespace(
        configuration=configuration)))  # fmt: skip
    config = server.Config(addr="127.0.0.1", port=0, certfile="", keyfile="", audience="gw")
    gw = server.Gateway(kube, config, trail.Trail())
    gw.observe(None, copy.deepcopy(SESSION))
    return gw


def test_a_denial_reads_the_session_and_its_grant_in_one_round_trip(calls: Calls) -> None:
    async def main() -> tuple[bool, bool]:
        gw = _gateway()
        entry = gw.view.lookup("agents", "aa-triage-1")
        assert entry is not None
        first = await gw._deviation(entry, "list secrets in namespace shop", source="gateway")
        second = await gw._deviation(entry, "list secrets in namespace shop", source="gateway")
        await asyncio.sleep(0)  # the revocation is spawned
        return first, second

    first, second = asyncio.run(main())
    assert (first, second) == (False, True), "maxDeniedRequests 1: the second denial revokes"
    assert calls.made.count("get grant") == 2, "the allowance is read fresh for every denial"
    assert [d.denied for d in calls.revoked] == [2]


def test_the_denial_record_and_the_count_are_written_together(calls: Calls) -> None:
    async def main() -> deviations.Denial:
        body = copy.deepcopy(SESSION)
        return await deviations.count_denied(
            api.Kube.__new__(api.Kube), body, what="get secrets", actor="a", source="t", allowed=0
        )

    denial = asyncio.run(main())
    assert (denial.denied, denial.allowed, denial.exceeded) == (1, 0, True)
    assert "get grant" not in calls.made, "an allowance the caller read is not read again"


@pytest.mark.parametrize(
    ("grant_body", "allowed"),
    [
        (None, 0),
        ({"spec": {}}, 0),
        ({"spec": {"session": None}}, 0),
        ({"spec": {"session": {"maxTtlSeconds": 60}}}, 0),
        ({"spec": {"session": {"maxDeniedRequests": 3}}}, 3),
    ],
    ids=[
        "a grant that is gone allows no denial",
        "a grant without a session block allows none",
        "an empty session block allows none",
        "an unset maxDeniedRequests allows none",
        "maxDeniedRequests is the allowance",
    ],
)
def test_allowance(grant_body: dict[str, Any] | None, allowed: int) -> None:
    assert deviations.allowance(grant_body) == allowed
