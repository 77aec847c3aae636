"""Installing the operator's webhook configurations: created when missing, webhooks replaced
whole, retried while the apiserver is unavailable, and a refusal is not swallowed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client import exceptions

from agent_authority.kube import errors, webhook_configurations
from agent_authority.webhooks import configuration


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class Admission:
    """The admissionregistration API: scripted statuses for create and patch, calls recorded."""

    def __init__(self, create: list[int], patch: list[int] | None = None) -> None:
        self.create_statuses = create
        self.patch_statuses = patch or []
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def _answer(self, statuses: list[int]) -> Response:
        status = statuses.pop(0) if statuses else 200
        if status >= 300:
            raise exceptions.ApiException(status=status, reason="scripted")
        return Response({})

    def create_validating_webhook_configuration(self, body: Any, **kw: Any) -> Response:
        self.calls.append(("create-validating", body, kw))
        return self._answer(self.create_statuses)

    def create_mutating_webhook_configuration(self, body: Any, **kw: Any) -> Response:
        self.calls.append(("create-mutating", body, kw))
        return self._answer(self.create_statuses)

    def patch_validating_webhook_configuration(self, name: str, body: Any, **kw: Any) -> Response:
        self.calls.append(("patch-validating", (name, body), kw))
        return self._answer(self.patch_statuses)

    def patch_mutating_webhook_configuration(self, name: str, body: Any, **kw: Any) -> Response:
        self.calls.append(("patch-mutating", (name, body), kw))
        return self._answer(self.patch_statuses)


class FakeKube:
    def __init__(self, admission: Admission) -> None:
        self.admission = admission


DOCUMENT = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration",
    "metadata": {"name": "agentauthority.io"},
    "webhooks": [{"name": "guard-session.agentauthority.io", "matchConditions": []}],
}


@pytest.mark.parametrize("create_status", [200, 409, 403], ids=["missing", "exists", "no-create"])
def test_the_webhooks_are_replaced_whole_whether_or_not_it_existed(create_status: int) -> None:
    admission = Admission(create=[create_status])
    asyncio.run(webhook_configurations.apply(FakeKube(admission), DOCUMENT))  # type: ignore[arg-type]
    (create, patch) = admission.calls
    assert create[0] == "create-validating"
    assert create[1]["metadata"] == {"name": "agentauthority.io"}
    assert "webhooks" not in create[1]  # created empty: only the patch decides its webhooks
    assert patch[0] == "patch-validating"
    assert patch[1] == ("agentauthority.io", {"webhooks": DOCUMENT["webhooks"]})
    assert patch[2]["_content_type"] == "application/merge-patch+json"


def test_a_refused_patch_is_raised() -> None:
    admission = Admission(create=[409], patch=[403])
    with pytest.raises(errors.Forbidden):
        asyncio.run(webhook_configurations.apply(FakeKube(admission), DOCUMENT))  # type: ignore[arg-type]


def test_apply_retries_while_the_apiserver_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configuration, "RETRY_DELAYS", (0.0, 0.0))
    admission = Admission(create=[503, 409, 409], patch=[])
    client_config = {"url": "https://127.0.0.1:9443", "caBundle": "Q0E="}
    asyncio.run(
        configuration.apply(
            FakeKube(admission),  # type: ignore[arg-type]
            client_config,  # type: ignore[arg-type]
            operator_username="agent-authority-operator",
        )
    )
    kinds = [c[0] for c in admission.calls]
    assert kinds == [
        "create-validating",
        "create-validating",
        "patch-validating",
        "create-mutating",
        "patch-mutating",
    ]


def test_apply_gives_up_after_the_last_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configuration, "RETRY_DELAYS", (0.0,))
    admission = Admission(create=[503, 503])
    with pytest.raises(errors.Unavailable):
        asyncio.run(
            configuration.apply(
                FakeKube(admission),  # type: ignore[arg-type]
                {"url": "https://127.0.0.1:9443"},
                operator_username=None,
            )
        )
