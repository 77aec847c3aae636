"""A real Alertmanager for e2e tests: fixtures, and posting and resolving alerts with API v2."""

from __future__ import annotations

import datetime
import json
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from agent_authority.localcluster import alertmanager, assets, cluster
from tests.e2e.operator_process import OperatorProcess


def receiver_url(operator: OperatorProcess) -> str:
    return f"https://127.0.0.1:{operator.env.options.alert_port}/alertmanager"


def start(webhook_url: str, ca_file: str | None) -> alertmanager.Alertmanager:
    am = alertmanager.Alertmanager(webhook_url, ca_file=ca_file)
    try:
        am.start()
    except assets.AssetError as e:
        am.remove()
        pytest.fail(
            f"a real Alertmanager could not be built or started; fix this, do not skip it:\n{e}",
            pytrace=False,
        )
    return am


@pytest.fixture(scope="session")
def alertmanager_server(
    local_cluster: cluster.LocalCluster, operator: OperatorProcess
) -> Iterator[alertmanager.Alertmanager]:
    """Alertmanager notifying the operator's ``/alertmanager`` receiver (TLS, our CA)."""
    am = start(receiver_url(operator), str(local_cluster.ca_file))
    try:
        yield am
    finally:
        print(f"\n[e2e] alertmanager log tail:\n{am.log_tail(10)}")
        am.remove()


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def post(am: alertmanager.Alertmanager, labels: dict[str, str], *, resolved: bool = False) -> None:
    now = datetime.datetime.now(datetime.UTC)
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": "e2e"},
        "startsAt": _iso(now - datetime.timedelta(minutes=1)),
        "endsAt": _iso(now - datetime.timedelta(seconds=1))
        if resolved
        else _iso(now + datetime.timedelta(hours=1)),
    }
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        f"{am.url}/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10, context=_tls(am)) as response:  # noqa: S310
        assert response.status == 200


def _tls(am: alertmanager.Alertmanager) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=am.ca_file) if am.serving and am.ca_file else None


def firing(am: alertmanager.Alertmanager) -> list[dict[str, Any]]:
    with urllib.request.urlopen(  # noqa: S310 - 127.0.0.1
        f"{am.url}/api/v2/alerts", timeout=10, context=_tls(am)
    ) as response:
        alerts: list[dict[str, Any]] = json.loads(response.read())
    return alerts


def fire(am: alertmanager.Alertmanager, labels: dict[str, str], timeout: float = 15) -> str:
    """Post a firing alert; its fingerprint once Alertmanager lists it."""
    post(am, labels)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for alert in firing(am):
            if alert["labels"] == labels:
                return str(alert["fingerprint"])
        time.sleep(0.1)
    raise AssertionError(f"Alertmanager did not list the alert {labels} within {timeout} s")


def resolve(am: alertmanager.Alertmanager, labels: dict[str, str]) -> None:
    post(am, labels, resolved=True)
