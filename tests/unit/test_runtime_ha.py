"""Leader election and webhook ownership settings the runtime hands to kopf."""

from __future__ import annotations

import time

import kopf
import pytest

from agent_authority import runtime
from agent_authority.webhooks import server


def _configured(**options: object) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    runtime.configure(
        settings,
        runtime.Options(webhook_cert="c.pem", webhook_key="k.pem", webhook_ca="ca.pem", **options),  # type: ignore[arg-type]
    )
    return settings


@pytest.mark.parametrize(
    ("options", "standalone", "managing"),
    [
        pytest.param({}, True, True, id="default-standalone-managing"),
        pytest.param({"peering": "aa"}, False, True, id="peering"),
        pytest.param({"peering": "aa", "webhooks_managed": False}, False, False, id="chart"),
    ],
)
def test_peering_and_webhook_management(
    options: dict[str, object], standalone: bool, managing: bool
) -> None:
    settings = _configured(**options)
    assert settings.peering.standalone is standalone
    # kopf's manager would write webhooks without timeouts or matchConditions: the operator's
    # webhook server applies the chart's definition itself (webhooks/configuration.py).
    assert settings.admission.managed is None
    assert isinstance(settings.admission.server, server.WebhookServer)
    assert (settings.admission.server.configure is not None) is managing
    if not standalone:
        assert settings.peering.mandatory is True
        assert settings.peering.clusterwide is True
        assert settings.peering.name == "aa"
        assert settings.peering.lifetime == 15


def test_an_older_replica_outranks_a_newer_one() -> None:
    older = _configured(peering="aa").peering.priority
    time.sleep(0.01)
    newer = _configured(peering="aa").peering.priority
    assert older > newer


def test_the_lifetime_bounds_how_long_a_dead_leader_is_trusted() -> None:
    assert _configured(peering="aa", peering_lifetime=7).peering.lifetime == 7
