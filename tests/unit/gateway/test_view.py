"""The gateway's watched view of sessions: who may act now, and which streams a change cuts."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from agent_authority.gateway import server, view
from agent_authority.policy import gateway

LATER = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
EARLIER = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)).isoformat()
RULE = {"namespace": "shop", "apiGroups": [""], "resources": ["pods", "configmaps"],
        "verbs": ["get", "list", "watch"]}  # fmt: skip


def body(phase: str = "Active", ended: bool = False, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "u1", "namespace": "agents", "name": "triage"},
        "spec": {"grantRef": {"name": "sre"}, "ended": ended},
        "status": {
            "phase": phase,
            "serviceAccountName": "aa-triage-1",
            "expiresAt": LATER,
            "effectiveRules": [RULE],
            **status,
        },
    }


def watch_of(resource: str) -> gateway.RequestInfo:
    info = gateway.classify("GET", f"/api/v1/namespaces/shop/{resource}", {"watch": "true"})
    assert isinstance(info, gateway.RequestInfo)
    return info


class Closed:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_an_active_session_is_found_by_its_service_account() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    entry = v.lookup("agents", "aa-triage-1")
    assert entry is not None
    assert entry.refusal(datetime.datetime.now(datetime.UTC)) is None
    assert entry.username == "system:serviceaccount:agents:aa-triage-1"
    assert any(r.resources == ["remediationrequests"] for r in entry.rules), "own-namespace right"


def test_ended_expired_and_revoked_sessions_are_refused() -> None:
    now = datetime.datetime.now(datetime.UTC)
    for b, word in [
        (body(ended=True), "has ended"),
        (body(phase="Revoked"), "is Revoked"),
        (body(expiresAt=EARLIER), "expired"),
        (body(phase="Pending"), "is Pending"),
    ]:
        v = view.View(server.own_rules)
        v.observe(None, b)
        entry = v.lookup("agents", "aa-triage-1")
        assert entry is not None
        why = entry.refusal(now)
        assert why is not None
        assert word in why


def test_ending_a_session_cuts_all_its_streams() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    closed = Closed()
    for resource in ("pods", "configmaps"):
        v.add_stream(view.Stream("u1", watch_of(resource), closed))
    cut = view.cut_all(v.observe("MODIFIED", body(ended=True)))
    assert cut == 2
    assert closed.count == 2


def test_narrowing_cuts_only_the_streams_no_longer_allowed() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    pods, maps = Closed(), Closed()
    v.add_stream(view.Stream("u1", watch_of("pods"), pods))
    v.add_stream(view.Stream("u1", watch_of("configmaps"), maps))
    narrowed = {**RULE, "resources": ["pods"]}
    view.cut_all(v.observe("MODIFIED", body(effectiveRules=[narrowed])))
    assert (pods.count, maps.count) == (0, 1)


def test_deletion_forgets_the_session_and_cuts_its_streams() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    closed = Closed()
    v.add_stream(view.Stream("u1", watch_of("pods"), closed))
    view.cut_all(v.observe("DELETED", body()))
    assert v.lookup("agents", "aa-triage-1") is None
    assert closed.count == 1


def test_a_replica_can_stop_a_session_before_the_watch_says_so() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    closed = Closed()
    v.add_stream(view.Stream("u1", watch_of("pods"), closed))
    view.cut_all(v.stop("u1", "revoked (Deviation)"))
    assert v.stopped("u1") == "revoked (Deviation)"
    assert closed.count == 1
    v.observe("MODIFIED", body())  # a late event of the still-Active object does not undo it
    assert v.stopped("u1") == "revoked (Deviation)"


def test_a_stream_is_cut_once() -> None:
    closed = Closed()
    stream = view.Stream("u1", watch_of("pods"), closed)
    stream.cut("one")
    stream.cut("two")
    assert (closed.count, stream.cut_reason) == (1, "one")


@pytest.mark.parametrize(
    ("events", "stop", "expected"),
    [
        pytest.param([(None, body())], False, None, id="active: may answer"),
        pytest.param([(None, body(ended=True))], False, "has ended", id="ended meanwhile"),
        pytest.param([(None, body(expiresAt=EARLIER))], False, "expired", id="deadline passed"),
        pytest.param([(None, body(phase="Revoked"))], False, "is Revoked", id="revoked"),
        pytest.param([(None, body())], True, "deviation", id="stopped by this replica"),
        pytest.param([(None, body()), ("DELETED", body())], False, "is gone", id="deleted"),
        pytest.param([], False, "is gone", id="never seen"),
    ],
)
def test_the_answer_is_checked_again_against_the_view(
    events: list[tuple[str | None, dict[str, Any]]], stop: bool, expected: str | None
) -> None:
    v = view.View(server.own_rules)
    for kind, b in events:
        v.observe(kind, b)
    if stop:
        v.stop("u1", "a deviation")
    why = v.refusal("u1")
    assert (why is None) if expected is None else (why is not None and expected in why)


def test_a_passed_deadline_cuts_open_streams_by_the_gateways_own_clock() -> None:
    v = view.View(server.own_rules)
    v.observe(None, body())
    closed = Closed()
    stream = view.Stream("u1", watch_of("pods"), closed)
    v.add_stream(stream)
    now = datetime.datetime.now(datetime.UTC)
    assert v.expired(now) == [], "before expiresAt nothing is cut"
    later = now + datetime.timedelta(hours=2)
    cut = v.expired(later)
    assert [(s, why.split(" expired")[0]) for s, why in cut] == [(stream, "session agents/triage")]
    assert view.cut_all(cut) == 1
    assert closed.count == 1
    assert v.expired(later) == [], "a cut stream is not cut again"
