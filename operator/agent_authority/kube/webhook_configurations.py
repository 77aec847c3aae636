"""Install the operator's admission webhook configurations (the apiserver side of
:mod:`agent_authority.webhooks.configuration`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from agent_authority.kube import api, errors

MERGE_PATCH = "application/merge-patch+json"
"""The ``webhooks`` list replaced whole (a strategic merge would keep stale entries and their
stale ``matchConditions``, merged by name)."""


def _calls(kube: api.Kube, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The create and patch methods of ``kind``."""
    if kind == "ValidatingWebhookConfiguration":
        return (
            kube.admission.create_validating_webhook_configuration,
            kube.admission.patch_validating_webhook_configuration,
        )
    if kind == "MutatingWebhookConfiguration":
        return (
            kube.admission.create_mutating_webhook_configuration,
            kube.admission.patch_mutating_webhook_configuration,
        )
    raise ValueError(f"not a webhook configuration: {kind}")


async def apply(kube: api.Kube, document: dict[str, Any]) -> None:
    """Create the configuration if it is missing (the installer usually pre-created it: 409),
    then make its ``webhooks`` exactly ``document["webhooks"]``."""
    kind = document["kind"]
    name = document["metadata"]["name"]
    create, patch = _calls(kube, kind)
    empty = {"apiVersion": document["apiVersion"], "kind": kind, "metadata": {"name": name}}
    # RBAC cannot grant create by name: an installer that pre-created it may withhold create.
    with contextlib.suppress(errors.Forbidden):
        await api.create_or_get(create, empty)
    await api.call(patch, name, {"webhooks": document["webhooks"]}, _content_type=MERGE_PATCH)
