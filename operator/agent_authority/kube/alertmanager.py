"""The Alertmanager API v2 client: which alerts fire now (every call with a timeout).

Only ``GET <url>/api/v2/alerts`` is used: it lists the alerts that have not resolved (firing,
silenced or inhibited). A failure to ask (connection refused, timeout, an HTTP error, a body that
is not an alert list) is an :class:`AlertmanagerError`; :func:`lookup` turns it into a
:class:`policy.incidents.Lookup` with ``error`` set, which admission refuses (fail closed).
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from agent_authority.models import grant
from agent_authority.policy import incidents

TIMEOUT_SECONDS = 5.0


class AlertmanagerError(Exception):
    """Alertmanager could not be asked or gave an answer that is not an alert list."""


def alerts_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/api/v2/alerts"


def parse(payload: Any) -> list[incidents.Alert]:
    """Alerts of an API v2 ``GettableAlerts`` body (``AlertmanagerError`` when it is none)."""
    if not isinstance(payload, list):
        raise AlertmanagerError("the answer is not a list of alerts")
    alerts = []
    for item in payload:
        if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
            raise AlertmanagerError("an alert in the answer has no fingerprint")
        labels = item.get("labels") or {}
        state = (item.get("status") or {}).get("state", "active")
        alerts.append(
            incidents.Alert(
                fingerprint=item["fingerprint"],
                labels={str(k): str(v) for k, v in labels.items()},
                state=str(state),
            )
        )
    return alerts


def tls_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """How an https Alertmanager is verified: the grant's CA bundle, else the system's CAs."""
    if not ca_bundle:
        return True
    try:
        return ssl.create_default_context(cadata=ca_bundle)
    except (ssl.SSLError, ValueError) as e:
        raise AlertmanagerError(f"spec.incidents.alertmanager.caBundle is not PEM: {e}") from e


async def firing(
    url: str, seconds: float = TIMEOUT_SECONDS, ca_bundle: str | None = None
) -> list[incidents.Alert]:
    """Every alert Alertmanager at ``url`` lists as not resolved."""
    verify = tls_context(ca_bundle)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as client,
            client.get(
                alerts_url(url), headers={"Accept": "application/json"}, ssl=verify
            ) as response,
        ):
            if response.status != 200:
                raise AlertmanagerError(f"GET /api/v2/alerts answered HTTP {response.status}")
            payload = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as e:
        raise AlertmanagerError(f"{type(e).__name__}: {e}".rstrip(": ")) from e
    return parse(payload)


async def lookup(
    binding: grant.AlertBinding, fingerprint: str, seconds: float = TIMEOUT_SECONDS
) -> incidents.Lookup:
    """What Alertmanager says about one fingerprint: the alert, none, or why it could not say."""
    try:
        alerts = await firing(binding.url, seconds, binding.ca_bundle)
    except AlertmanagerError as e:
        return incidents.Lookup(binding.url, error=str(e))
    found = next((a for a in alerts if a.fingerprint == fingerprint), None)
    return incidents.Lookup(binding.url, alert=found)
