"""The MCP tools without a cluster: what is offered, how schemas narrow, what is refused."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from agent_authority.mcp import agent, schemas, tools
from agent_authority.models import grant

PODS = grant.PolicyRule(
    namespace="shop", api_groups=[""], resources=["pods"], verbs=["get", "list"]
)
DEPLOYS = grant.PolicyRule(
    namespace="shop", api_groups=["apps"], resources=["deployments"], verbs=["get"]
)


def _names(rules: list[grant.PolicyRule] | None) -> list[str]:
    return [t["name"] for t in schemas.definitions(rules)]


def test_before_a_session_only_open_session_is_offered() -> None:
    assert _names(None) == ["open_session"]


def test_schemas_list_only_the_sessions_namespaces_and_resources() -> None:
    defs = {t["name"]: t for t in schemas.definitions([PODS, DEPLOYS])}
    props = defs["get_resource"]["input_schema"]["properties"]
    assert props["namespace"]["enum"] == ["shop"]
    assert props["resource"]["enum"] == ["deployments", "pods"]
    assert "pod_logs" not in defs
    for definition in defs.values():
        assert definition["description"]
        assert definition["input_schema"]["type"] == "object"


def test_evidence_is_stamped_with_the_digest_of_the_full_text_and_capped() -> None:
    text = "x" * 5000
    (item,) = tools.evidence_items(
        [{"kind": "log", "source": "pod_logs", "excerpt": text}], "2026-12-01T00:00:00Z"
    )
    assert item["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert len(item["excerpt"]) == tools.MAX_EXCERPT
    assert item["observedAt"] == "2026-12-01T00:00:00Z"


def test_request_body_is_a_valid_remediation_request() -> None:
    body = tools.request_body(
        "inc-1",
        {
            "action": "rollback-deployment",
            "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
            "params": {"to_revision": 3},
            "hypothesis": "bad release",
            "name": "inc-1-rollback",
        },
    )
    assert body["spec"]["action"]["params"] == {"toRevision": 3}
    assert body["spec"]["sessionRef"] == {"name": "inc-1"}
    assert body["metadata"]["name"] == "inc-1-rollback"


def test_an_invalid_request_is_refused_naming_the_problem() -> None:
    with pytest.raises(agent.ToolError, match="not valid"):
        tools.request_body(
            "inc-1",
            {
                "action": "explode-cluster",
                "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
                "hypothesis": "x",
            },
        )


class _Unused:
    """A base client that must never be used: refusals happen before any request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the apiserver was called ({name})")


@pytest.mark.parametrize(
    ("tool", "args", "fragment"),
    [
        pytest.param(
            "get_resource",
            {"resource": "pods", "name": "x", "namespace": "shop"},
            "open a session first",
            id="read-without-session",
        ),
        pytest.param("delete_everything", {}, "unknown tool", id="unknown-tool"),
        pytest.param("end_session", {}, "not available", id="end-without-session"),
    ],
)
def test_calls_without_a_session_are_refused_without_a_request(
    tool: str, args: dict[str, Any], fragment: str
) -> None:
    who = agent.Agent(_Unused(), "agents")  # type: ignore[arg-type]
    with pytest.raises(agent.ToolError, match=fragment):
        asyncio.run(tools.call(who, tool, args))


def _with_session(rules: list[grant.PolicyRule]) -> agent.Agent:
    who = agent.Agent(_Unused(), "agents")  # type: ignore[arg-type]
    body = {
        "metadata": {"name": "s", "resourceVersion": "1"},
        "spec": {"grantRef": {"name": "g"}, "incident": {"id": "i"}},
        "status": {"phase": "Active", "effectiveRules": [r.to_api() for r in rules]},
    }
    import time

    who.sessions["s"] = agent.Handle("s", "agents", body, _Unused(), time.monotonic())  # type: ignore[arg-type]
    who.current = "s"
    return who


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        pytest.param(
            "get_resource", {"resource": "secrets", "name": "db", "namespace": "shop"}, id="secret"
        ),
        pytest.param(
            "list_resources", {"resource": "pods", "namespace": "kube-system"}, id="other-namespace"
        ),
        pytest.param(
            "list_resources",
            {"resource": "deployments", "namespace": "shop"},
            id="verb-not-granted",
        ),
        pytest.param(
            "get_resource",
            {
                "resource": "pods",
                "name": "x",
                "namespace": "shop",
                "session": "s",
                "api_group": "apps",
            },
            id="wrong-group",
        ),
    ],
)
def test_calls_outside_the_rules_are_refused_before_the_apiserver(
    tool: str, args: dict[str, Any]
) -> None:
    who = _with_session([PODS, DEPLOYS])
    with pytest.raises(agent.ToolError, match="not sent to the cluster"):
        asyncio.run(tools.call(who, tool, args))


def test_a_tool_the_rules_do_not_offer_is_refused_by_name() -> None:
    who = _with_session([DEPLOYS])
    with pytest.raises(agent.ToolError, match="tool 'pod_logs' is not available"):
        asyncio.run(tools.call(who, "pod_logs", {"pod": "x", "namespace": "shop"}))
