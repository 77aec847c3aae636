"""Alertmanager payloads: the API v2 alert list, and webhook notifications (hints only)."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.controllers import alerts
from agent_authority.kube import alertmanager


def test_api_v2_alerts_are_parsed() -> None:
    (alert,) = alertmanager.parse(
        [{"fingerprint": "abc", "labels": {"severity": "SEV2"}, "status": {"state": "suppressed"}}]
    )
    assert (alert.fingerprint, dict(alert.labels), alert.state) == (
        "abc",
        {"severity": "SEV2"},
        "suppressed",
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"alerts": []}, id="not-a-list"),
        pytest.param([{"labels": {}}], id="no-fingerprint"),
    ],
)
def test_an_answer_that_is_not_an_alert_list_is_an_error(payload: Any) -> None:
    with pytest.raises(alertmanager.AlertmanagerError):
        alertmanager.parse(payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {
                "alerts": [
                    {"status": "resolved", "fingerprint": "a"},
                    {"status": "firing", "fingerprint": "b"},
                ]
            },
            {"a"},
            id="only-resolved",
        ),
        pytest.param({"alerts": "nonsense"}, set(), id="malformed"),
        pytest.param(["x"], set(), id="not-an-object"),
    ],
)
def test_notifications_only_name_fingerprints_to_check(payload: Any, expected: set[str]) -> None:
    assert alerts.notified_fingerprints(payload) == expected


def test_a_ca_bundle_that_is_not_pem_is_an_error_naming_the_field() -> None:
    with pytest.raises(alertmanager.AlertmanagerError, match="caBundle"):
        alertmanager.tls_context("not a certificate")
    assert alertmanager.tls_context(None) is True  # the system's CAs
