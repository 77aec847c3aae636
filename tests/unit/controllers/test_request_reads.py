"""A drive's fresh reads: the request, its session and its grant at once, checked against what
they were guessed from; and the one status write that commits an approval with the apply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client import exceptions

from agent_authority.controllers import request_facts, request_status, requests
from agent_authority.models import request

P = request.RequestPhase


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Custom:
    """Requests, sessions and grants in dicts; every read logged; status patches merged."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []

    def _get(self, plural: str, name: str) -> _Response:
        self.reads.append((plural, name))
        if (plural, name) not in self.objects:
            raise exceptions.ApiException(status=404, reason="Not Found")
        return _Response(self.objects[(plural, name)])

    def get_namespaced_custom_object(self, *args: Any, **_: Any) -> _Response:
        return self._get(args[-2], args[-1])

    def get_cluster_custom_object(self, *args: Any, **_: Any) -> _Response:
        return self._get(args[-2], args[-1])

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> _Response:
        group, plural, name, patch = args[0], args[-3], args[-2], args[-1]
        self.patches.append({"group": group, **patch})
        body = self.objects[(plural, name)]
        body["status"] = {**body.get("status", {}), **patch["status"]}
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        return _Response(body)


class _Kube:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.custom = _Custom(objects)


def _request(name: str, session: str, group: str = "agentauthority.io") -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "RemediationRequest",
        "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "1"},
        "spec": {
            "sessionRef": {"name": session},
            "action": {"type": "scale-workload", "target": {"kind": "Deployment", "name": "w"}},
        },
        "status": {"phase": "AwaitingApproval", "approvals": [{"decision": "approve"}]},
    }


def _session(name: str, grant: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"grantRef": {"name": grant}}}


def _grant(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {}}


def _world(grant: str = "g1") -> Any:
    return _Kube(
        {
            ("remediationrequests", "r1"): _request("r1", "s1"),
            ("incidentsessions", "s1"): _session("s1", grant),
            ("agentgrants", "g1"): _grant("g1"),
            ("agentgrants", "g2"): _grant("g2"),
        }
    )


@pytest.fixture(autouse=True)
def _no_guesses() -> None:
    request_facts._grant_names.clear()


def _read(kube: Any, session: str | None) -> tuple[Any, Any]:
    return asyncio.run(request_facts.read(kube, "ns", "r1", session))


def test_the_first_read_of_a_session_reads_its_grant_after_it() -> None:
    kube = _world()
    body, known = _read(kube, "s1")
    assert body["metadata"]["name"] == "r1"
    assert known[1]["metadata"]["name"] == "g1"
    assert known[2] is None
    assert kube.custom.reads == [
        ("remediationrequests", "r1"),
        ("incidentsessions", "s1"),
        ("agentgrants", "g1"),
    ]


def test_later_reads_read_the_grant_the_session_named_beside_the_request() -> None:
    kube = _world()
    _read(kube, "s1")
    kube.custom.reads.clear()
    _body, known = _read(kube, "s1")
    assert known[1]["metadata"]["name"] == "g1"
    assert sorted(kube.custom.reads) == [
        ("agentgrants", "g1"),
        ("incidentsessions", "s1"),
        ("remediationrequests", "r1"),
    ]


def test_a_wrong_guess_is_never_used_the_grant_the_fresh_session_names_is_read() -> None:
    kube = _world()
    _read(kube, "s1")
    kube.custom.objects[("incidentsessions", "s1")] = _session("s1", "g2")  # recreated
    kube.custom.reads.clear()
    _body, known = _read(kube, "s1")
    assert known[1]["metadata"]["name"] == "g2"
    assert kube.custom.reads[-1] == ("agentgrants", "g2")


def test_a_missing_grant_says_so() -> None:
    kube = _world(grant="gone")
    _body, known = _read(kube, "s1")
    assert known[:2] == (_session("s1", "gone"), None)
    assert known[2] == "grant 'gone' of the session no longer exists"


def test_a_request_naming_another_session_than_guessed_gets_no_context() -> None:
    kube = _world()
    body, known = _read(kube, "s2")
    assert body is not None
    assert known is None


def test_a_missing_session_is_reported_by_context() -> None:
    kube = _world()
    del kube.custom.objects[("incidentsessions", "s1")]
    body, known = _read(kube, "s1")
    context = asyncio.run(request_facts.context(kube, body, known))
    assert context == (None, None, "spec.sessionRef: session 's1' not found")


def test_one_write_commits_the_approval_and_starts_the_apply_in_the_requests_group() -> None:
    kube = _Kube({("remediationrequests", "r1"): _request("r1", "s1", group="floor.example")})
    body = json.loads(json.dumps(kube.custom.objects[("remediationrequests", "r1")]))
    later: request_status.Later = []

    async def run() -> None:
        await request_status.transition(
            kube,  # type: ignore[arg-type]
            body,
            P.APPLYING,
            "Applying",
            "applying the approved change",
            passing=request_status.Passing(P.APPROVED, "Approved", "approved by a (1 of 1)"),
            later=later,
        )

    asyncio.run(run())
    [patch] = kube.custom.patches
    assert patch["group"] == "floor.example"
    assert patch["metadata"] == {"resourceVersion": "1"}
    status = patch["status"]
    assert status["phase"] == "Applying"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Approved"]["status"], conditions["Approved"]["reason"]) == (
        "True",
        "Approved",
    )
    assert conditions["Approved"]["message"] == "approved by a (1 of 1)"
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "Applying")
    assert len(later) == 2  # the Events of both, held until the last write


def test_an_approval_is_never_passed_on_the_way_to_success() -> None:
    kube = _Kube({("remediationrequests", "r1"): _request("r1", "s1")})
    body = kube.custom.objects[("remediationrequests", "r1")]
    with pytest.raises(ValueError, match="is not one status write"):
        asyncio.run(
            request_status.transition(
                kube,  # type: ignore[arg-type]
                body,
                P.SUCCEEDED,
                "Applied",
                "done",
                passing=request_status.Passing(P.APPROVED, "Approved", "x"),
            )
        )
    assert kube.custom.patches == []


@pytest.mark.parametrize(
    ("status", "driven"),
    [
        pytest.param({"phase": "AwaitingApproval"}, False, id="the-write-that-made-it-wait"),
        pytest.param({"phase": "AwaitingApproval", "approvals": []}, False, id="none-given"),
        pytest.param(
            {"phase": "AwaitingApproval", "approvals": [{"decision": "approve"}]},
            True,
            id="an-approval-to-count",
        ),
        pytest.param(
            {"phase": "AwaitingApproval", "approvals": [{"decision": "deny"}]},
            True,
            id="a-denial-to-count",
        ),
        pytest.param(
            {"phase": "Applying", "approvals": [{"decision": "approve"}]},
            False,
            id="no-longer-waiting",
        ),
    ],
)
def test_a_waiting_request_is_driven_on_the_events_that_carry_a_decision(
    status: dict[str, Any], driven: bool
) -> None:
    assert requests._approvals_given(status) is driven  # type: ignore[arg-type]
