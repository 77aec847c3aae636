"""The operator's webhook configurations: the chart's definition, exempting only the operator,
and only where its handlers let it through unexamined."""

from __future__ import annotations

import asyncio
import pathlib
import types
from typing import Any

import kopf
import pytest
import yaml

from agent_authority import runtime
from agent_authority.policy import exemption
from agent_authority.webhooks import configuration, server

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPERATOR = "agent-authority-operator"
CLIENT: kopf.WebhookClientConfig = {"url": "https://127.0.0.1:9443", "caBundle": "Q0E="}
assert runtime.REGISTERED  # importing runtime registers every handler


def _webhooks(username: str | None) -> dict[str, dict[str, Any]]:
    docs = configuration.documents(CLIENT, operator_username=username)
    assert [d["kind"] for d in docs] == [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ]
    assert {d["metadata"]["name"] for d in docs} == {"agentauthority.io"}
    return {w["name"]: w for d in docs for w in d["webhooks"]}


def test_the_exempt_webhooks_skip_exactly_the_operators_name() -> None:
    webhooks = _webhooks(OPERATOR)
    skipping = {configuration.handler_id(n) for n, w in webhooks.items() if "matchConditions" in w}
    assert skipping == {
        "guard-session",
        "guard-session-status",
        "guard-approvals",
        "stamp-approver",
    }
    for name in skipping:
        assert webhooks[f"{name}.agentauthority.io"]["matchConditions"] == [
            {"name": "not-the-operator", "expression": f'request.userInfo.username != "{OPERATOR}"'}
        ]


@pytest.mark.parametrize("username", ["", None, "system:anonymous"])
def test_without_a_trusted_name_no_webhook_skips_anyone(username: str | None) -> None:
    assert not [w for w in _webhooks(username).values() if "matchConditions" in w]


def test_every_webhook_fails_closed_with_the_charts_timeout_and_review_version() -> None:
    values = yaml.safe_load((ROOT / "charts" / "agent-authority" / "values.yaml").read_text())
    assert values["webhooks"]["timeoutSeconds"] == configuration.TIMEOUT_SECONDS
    webhooks = _webhooks(OPERATOR)
    assert len(webhooks) == 9
    for name, webhook in webhooks.items():
        assert webhook["failurePolicy"] == "Fail", name
        assert webhook["timeoutSeconds"] == configuration.TIMEOUT_SECONDS, name
        assert webhook["admissionReviewVersions"] == ["v1"], name
        assert webhook["clientConfig"] == {
            "url": f"https://127.0.0.1:9443/{configuration.handler_id(name)}",
            "caBundle": "Q0E=",
        }
        assert all(r["apiGroups"] == ["agentauthority.io"] for r in webhook["rules"]), name


def _handler(handler_id: str) -> Any:
    handlers = kopf.get_default_registry()._webhooks.get_all_handlers()
    (handler,) = [h for h in handlers if h.id == handler_id]
    return handler.fn


HOSTILE = {
    "metadata": {"name": "s", "namespace": "agents", "finalizers": [], "annotations": {"x": "y"}},
    "spec": {"ended": False, "purpose": "rewritten", "grantRef": {"name": "other"}},
    "status": {"phase": "Active", "approvals": [{"decision": "approve"}]},
}


@pytest.mark.parametrize("handler_id", sorted(exemption.OPERATOR_EXEMPT))
def test_each_exempt_handler_lets_the_operator_through_unexamined(handler_id: str) -> None:
    """So skipping the call for the operator answers as the handler would: allowed, unchanged
    (even for a write that would be refused from anyone else; no cluster is asked)."""
    memo = types.SimpleNamespace(operator=types.SimpleNamespace(username=OPERATOR))
    patch = kopf.Patch()
    result = _handler(handler_id)(
        userinfo={"username": OPERATOR, "groups": ["system:authenticated"]},
        memo=memo,
        old={"metadata": HOSTILE["metadata"], "spec": {"ended": True}, "status": {}},
        new=HOSTILE,
        patch=patch,
        namespace="agents",
        spec=HOSTILE["spec"],
        meta=HOSTILE["metadata"],
    )
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    assert result is None
    assert not patch


def test_the_server_applies_the_configuration_for_each_address_it_serves_at() -> None:
    seen: list[kopf.WebhookClientConfig] = []

    async def record(client_config: kopf.WebhookClientConfig) -> None:
        seen.append(client_config)

    async def first() -> kopf.WebhookClientConfig:
        hooked = server.WebhookServer(
            addr="127.0.0.1", host="127.0.0.1", insecure=True, configure=record
        )

        async def never(*_: Any, **__: Any) -> Any:
            raise AssertionError("no review is sent")

        async with hooked:
            async for client_config in hooked(never):
                return client_config
        raise AssertionError("the server yielded nothing")

    yielded = asyncio.run(first())
    assert seen == [yielded]
    assert yielded["url"].startswith("http://127.0.0.1:")
