"""The operator's webhook configurations: one definition, for the Helm chart and the operator.

kopf builds each webhook from the handlers this package registers (its name, rules, failure
policy, and the path kopf's server routes by: the handler id). :func:`documents` adds what kopf's
own configuration manager does not write: the timeout, ``admissionReviewVersions: [v1]``, and the
``not-the-operator`` ``matchConditions`` of the webhooks whose handler lets the operator through
unexamined (:mod:`agent_authority.policy.exemption`).

Both installers use it, so they cannot drift:

- ``hack/sync-chart`` renders the chart's ``templates/webhooks.yaml`` from :func:`documents` with
  placeholders (the Service, the CA, the chart's timeout, the chart's ServiceAccount name);
- the operator, unless ``--no-manage-webhooks``, applies :func:`documents` with its own URL and
  CA (each time its webhook server (re)starts) and its own username from the SelfSubjectReview
  it makes at start (:func:`apply`). kopf's configuration manager is off
  (``settings.admission.managed = None``): it would write the webhooks without the conditions.

The configurations are named :data:`NAME` (the one name the operator's ceiling lets it patch) and
pre-created by the installer; :func:`apply` tries to create them anyway (409 when they exist) and
replaces their ``webhooks`` with one JSON merge patch each.

``build_webhooks`` is kopf's private function (the one its own manager calls, so names and paths
match what its server routes); kopf is pinned in the lock file, and the chart drift check and
the unit tests fail if its output changes shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import kopf
from kopf._cogs.structs import references
from kopf._core.engines import admission as kopf_admission
from kopf._core.intents.causes import WebhookType

from agent_authority.kube import api, errors, webhook_configurations
from agent_authority.models import GROUP, VERSION, admission, crdgen
from agent_authority.policy import exemption

logger = logging.getLogger(__name__)

NAME = admission.WEBHOOK_CONFIGURATION
TIMEOUT_SECONDS = 10
"""How long the apiserver waits for an answer (the chart's default ``webhooks.timeoutSeconds``;
a unit test keeps the two equal)."""
REVIEW_VERSIONS = ["v1"]
KINDS = {
    "ValidatingWebhookConfiguration": WebhookType.VALIDATING,
    "MutatingWebhookConfiguration": WebhookType.MUTATING,
}
RETRY_DELAYS = (0.5, 1.0, *([2.0] * 30))
"""Seconds between attempts to apply while the apiserver is unavailable (about a minute)."""


def resources() -> list[references.Resource]:
    """Our custom resources, as kopf matches handlers against them (from the models, as the CRDs
    are)."""
    return [
        references.Resource(
            group=GROUP,
            version=VERSION,
            plural=model.plural,
            kind=model.kind,
            namespaced=model.namespaced,
        )
        for model in crdgen.RESOURCES
    ]


def documents(
    client_config: kopf.WebhookClientConfig,
    *,
    operator_username: str | None,
    timeout_seconds: Any = TIMEOUT_SECONDS,
    metadata: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The Validating- and MutatingWebhookConfiguration, in that order.

    ``client_config``: where the apiserver sends reviews (kopf appends each handler's path);
    ``operator_username``: the identity the exempt webhooks skip (untrusted or ``None``: no
    exemption anywhere); ``timeout_seconds`` and ``metadata`` may be placeholders (the chart).
    """
    handlers = kopf.get_default_registry()._webhooks.get_all_handlers()
    conditions = exemption.match_conditions(operator_username)
    out = []
    for kind, reason in KINDS.items():
        webhooks = kopf_admission.build_webhooks(
            [h for h in handlers if h.reason == reason],
            resources=resources(),
            name_suffix=NAME,
            client_config=client_config,
        )
        for webhook in webhooks:
            webhook["timeoutSeconds"] = timeout_seconds
            webhook["admissionReviewVersions"] = list(REVIEW_VERSIONS)
            if webhook["objectSelector"] is None:
                del webhook["objectSelector"]
            if conditions and handler_id(webhook["name"]) in exemption.OPERATOR_EXEMPT:
                webhook["matchConditions"] = [dict(c) for c in conditions]
        out.append(
            {
                "apiVersion": admission.API_VERSION,
                "kind": kind,
                "metadata": dict(metadata or {"name": NAME}),
                "webhooks": webhooks,
            }
        )
    return out


def handler_id(webhook_name: str) -> str:
    """``guard-session`` of ``guard-session.agentauthority.io``."""
    return webhook_name.split(".", 1)[0]


async def apply(
    kube: api.Kube, client_config: kopf.WebhookClientConfig, *, operator_username: str | None
) -> None:
    """Install :func:`documents` for this webhook server, retrying while the apiserver is
    unavailable; anything else (the ceiling refuses, a policy refuses) is raised."""
    if exemption.trusted_username(operator_username) is None:
        logger.warning(
            "the operator's own username is unknown (%r): its webhooks get no not-the-operator "
            "exemption and examine its own writes too",
            operator_username,
        )
    for document in documents(client_config, operator_username=operator_username):
        await _apply_one(kube, document)
    logger.info("webhook configurations %s applied", NAME)


async def _apply_one(kube: api.Kube, document: dict[str, Any]) -> None:
    delays: Sequence[float] = RETRY_DELAYS
    for attempt in range(len(delays) + 1):
        try:
            await webhook_configurations.apply(kube, document)
            return
        except errors.Unavailable as e:
            if attempt == len(delays):
                raise
            logger.info("applying %s %s: %s; retrying", document["kind"], NAME, e)
            await asyncio.sleep(delays[attempt])
