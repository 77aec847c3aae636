"""The kopf index functions: what they index, and that kopf runs them on the event loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from agent_authority import indexes

INDEXERS = (
    indexes.sessions_by_grant,
    indexes.active_sessions_by_grant,
    indexes.requests_by_session,
    indexes.sessions_by_name,
)


@pytest.mark.parametrize("fn", INDEXERS, ids=lambda fn: fn.__name__)
def test_kopf_runs_the_index_on_the_loop_not_in_a_worker_thread(fn: Callable[..., Any]) -> None:
    assert inspect.iscoroutinefunction(fn)


def _kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    body = kopf.Body(raw)
    return {
        "name": raw["metadata"]["name"],
        "namespace": raw["metadata"]["namespace"],
        "spec": body.spec,
        "status": body.status,
        "meta": body.meta,
    }


SESSION = {
    "metadata": {"name": "s1", "namespace": "ns", "uid": "u1", "creationTimestamp": "t0"},
    "spec": {"grantRef": {"name": "g"}},
    "status": {"phase": "Active"},
}


@pytest.mark.parametrize(
    ("fn", "raw", "expected"),
    [
        (indexes.sessions_by_grant, SESSION, {"g": ("ns", "s1", "Active", "t0")}),
        (indexes.active_sessions_by_grant, SESSION, {"g": "u1"}),
        (
            indexes.active_sessions_by_grant,
            {**SESSION, "status": {"phase": "Ended"}},
            None,
        ),
        (
            indexes.requests_by_session,
            {**SESSION, "spec": {"sessionRef": {"name": "s1"}}},
            {"ns/s1": "s1"},
        ),
        (indexes.requests_by_session, {**SESSION, "spec": {"sessionRef": "x"}}, None),
        (
            indexes.sessions_by_name,
            {
                **SESSION,
                "metadata": {**SESSION["metadata"], "resourceVersion": "7"},
                "spec": {
                    "grantRef": {"name": "g"},
                    "requester": {"username": "bob"},
                    "purpose": "not kept",
                },
                "status": {"phase": "Active", "serviceAccountName": "aa-s1", "token": "x"},
            },
            {
                "ns/s1": {
                    "metadata": {
                        "name": "s1",
                        "namespace": "ns",
                        "uid": "u1",
                        "resourceVersion": "7",
                    },
                    "spec": {"grantRef": {"name": "g"}, "requester": {"username": "bob"}},
                    "status": {"phase": "Active", "serviceAccountName": "aa-s1"},
                }
            },
        ),
    ],
    ids=[
        "a-session-is-indexed-under-its-grant",
        "an-active-session-counts-for-its-grant",
        "an-ended-session-does-not-count",
        "a-request-is-indexed-under-its-session",
        "a-malformed-session-ref-is-not-indexed",
        "a-session-keeps-only-what-the-approval-guard-reads",
    ],
)
def test_what_is_indexed(fn: Callable[..., Any], raw: dict[str, Any], expected: object) -> None:
    assert asyncio.run(fn(**_kwargs(raw))) == expected


def test_a_watched_session_is_a_copy() -> None:
    index = {"ns/s1": [{"metadata": {"name": "s1"}, "spec": {"grantRef": {"name": "g"}}}]}
    found = indexes.session(index, "ns", "s1")
    assert found is not None
    found["spec"]["grantRef"]["name"] = "changed"
    assert index["ns/s1"][0]["spec"]["grantRef"]["name"] == "g"
    assert indexes.session(index, "ns", "other") is None
    assert indexes.session(None, "ns", "s1") is None
