"""Walking a session's lineage: the whole chain, or a refusal that says which link is missing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client import exceptions

from agent_authority.kube import api, lineage


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Custom:
    """``get_namespaced_custom_object`` over a dict of sessions (404 for the others)."""

    def __init__(self, sessions: dict[str, dict[str, Any]]) -> None:
        self.sessions = sessions
        self.reads: list[str] = []

    def get_namespaced_custom_object(self, *args: Any, **_: Any) -> _Response:
        name = args[-1]
        self.reads.append(name)
        if name not in self.sessions:
            raise exceptions.ApiException(status=404, reason="Not Found")
        return _Response(self.sessions[name])


class _Kube:
    def __init__(self, sessions: dict[str, dict[str, Any]]) -> None:
        self.custom = _Custom(sessions)


def session(name: str, parent: str | None, requester: str, account: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"requester": {"username": requester}}
    if parent:
        spec["parentSession"] = parent
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {"serviceAccountName": account} if account else {},
    }


ROOT = session("root", None, "alice", "aa-root")
CHILD = session("child", "root", "system:serviceaccount:ns:aa-root", "aa-child")
GRANDCHILD = session("grandchild", "child", "system:serviceaccount:ns:aa-child", "aa-gc")


def walk(start: dict[str, Any], known: list[dict[str, Any]], depth: int) -> list[str]:
    kube: Any = _Kube({s["metadata"]["name"]: s for s in known})
    chain = asyncio.run(lineage.chain(kube, "ns", start, depth))
    return [s["metadata"]["name"] for s in chain]


@pytest.mark.parametrize(
    ("start", "known", "depth", "expected"),
    [
        pytest.param(ROOT, [], 2, ["root"], id="a-root-is-its-own-lineage"),
        pytest.param(CHILD, [ROOT], 2, ["child", "root"], id="child-and-parent"),
        pytest.param(
            GRANDCHILD, [CHILD, ROOT], 2, ["grandchild", "child", "root"], id="up-to-the-root"
        ),
    ],
)
def test_the_chain_goes_up_to_the_root(
    start: dict[str, Any], known: list[dict[str, Any]], depth: int, expected: list[str]
) -> None:
    assert walk(start, known, depth) == expected


@pytest.mark.parametrize(
    ("start", "known", "depth", "says"),
    [
        pytest.param(
            CHILD, [], 2, "ancestor session 'root' of 'child' no longer exists", id="gone"
        ),
        pytest.param(
            GRANDCHILD, [CHILD, ROOT], 1, "beyond the grant's session.maxSubAgentDepth", id="deep"
        ),
        pytest.param(
            session("a", "b", "x", None),
            [session("b", "a", "y", None)],
            5,
            "name each other as parents",
            id="a-cycle",
        ),
        pytest.param(
            session("a", "", "x", None) | {"spec": {"parentSession": 7}},
            [],
            2,
            "unreadable spec.parentSession",
            id="wrong-type",
        ),
    ],
)
def test_a_chain_that_cannot_be_established_fails_closed(
    start: dict[str, Any], known: list[dict[str, Any]], depth: int, says: str
) -> None:
    with pytest.raises(lineage.LineageError, match=says.replace(".", r"\.")):
        walk(start, known, depth)


def test_identities_are_each_sessions_requester_and_account() -> None:
    found = lineage.identities("ns", [CHILD, ROOT, session("new", None, "bob", None)])
    assert [(i.name, i.requester, i.service_account) for i in found] == [
        ("child", "system:serviceaccount:ns:aa-root", "system:serviceaccount:ns:aa-child"),
        ("root", "alice", "system:serviceaccount:ns:aa-root"),
        ("new", "bob", None),
    ]


def test_the_fake_is_the_client_interface() -> None:
    assert api.sync(_Custom({"s": ROOT}).get_namespaced_custom_object, "s") == ROOT
