"""Sessions bound to real Alertmanager alerts: severity from the alert, refused disagreement,
ended when the alert resolves (notification and polling), refused when Alertmanager is down."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from agent_authority.localcluster import alertmanager, cluster
from tests.e2e import agents, alerting
from tests.e2e.alerting import alertmanager_server
from tests.e2e.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e
USED = (alertmanager_server,)
AGENT = "alert-agent"
DECLARED = {"severity": "SEV3", "class": "latency"}
"""A complete declaration, so without the alert binding the session would be admitted."""


def _grant(admin: Any, am_url: str, namespace: str) -> str:
    name = agents.unique("alerts")
    agents.create_grant(
        admin,
        name,
        {
            "subjects": [{"kind": "User", "name": AGENT}],
            "incidents": {
                "severities": ["SEV1", "SEV2", "SEV3"],
                "alertmanager": {"url": am_url, "matchers": [{"name": "team", "value": "shop"}]},
            },
            "read": [{"name": "pods", "namespaces": [namespace], "resources": ["pods"]}],
        },
    )
    return name


def _labels() -> dict[str, str]:
    return {
        "alertname": f"CheckoutLatency{uuid.uuid4().hex[:6]}",
        "severity": "SEV3",
        "class": "latency",
        "team": "shop",
    }


def _agent(local: cluster.LocalCluster, admin: Any, namespace: str) -> Any:
    agents.cluster_role(
        admin,
        agents.unique("alert-agent"),
        [
            {
                "apiGroups": ["agentauthority.io"],
                "resources": ["incidentsessions"],
                "verbs": ["create", "get", "list", "patch"],
            }
        ],
        [AGENT],
    )
    agents.wait_allowed(admin, AGENT, "create", "agentauthority.io", "incidentsessions", namespace)
    return agents.as_user(local, AGENT)


def _session(grant: str, fingerprint: str, **incident: str) -> dict[str, Any]:
    body = agents.session_body(agents.unique("alert"), grant)
    body["spec"]["incident"] = {"id": fingerprint, **incident}
    body["spec"]["ttlSeconds"] = 60
    return body


def _refused(api: Any, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(client.ApiException) as refused:
        agents.open_session(api, namespace, body)
    assert refused.value.status == 403, refused.value.body
    return agents.refusal(refused.value)


def test_the_session_takes_severity_and_class_from_the_firing_alert(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    grant = _grant(admin, alertmanager_server.url, namespace)
    agent = _agent(local_cluster, admin, namespace)
    fingerprint = alerting.fire(alertmanager_server, _labels())
    body = _session(grant, fingerprint)  # no severity, no class: the alert decides
    agents.open_session(agent, namespace, body)
    opened = agents.wait_phase(admin, namespace, body["metadata"]["name"], {"Active"})
    assert opened["spec"]["incident"] == {"id": fingerprint, "severity": "SEV3", "class": "latency"}


def test_a_declared_sev1_against_a_sev3_alert_is_refused_naming_both(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    grant = _grant(admin, alertmanager_server.url, namespace)
    agent = _agent(local_cluster, admin, namespace)
    fingerprint = alerting.fire(alertmanager_server, _labels())
    message = _refused(
        agent, namespace, _session(grant, fingerprint, **{**DECLARED, "severity": "SEV1"})
    )
    assert "IncidentDisagreesWithAlert" in message
    assert "declared SEV1" in message
    assert "severity SEV3" in message


def test_an_alert_that_is_not_firing_or_not_matched_opens_nothing(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    grant = _grant(admin, alertmanager_server.url, namespace)
    agent = _agent(local_cluster, admin, namespace)
    message = _refused(agent, namespace, _session(grant, "0123456789abcdef", **DECLARED))
    assert "IncidentNotFiring" in message
    other_team = alerting.fire(alertmanager_server, {**_labels(), "team": "payments"})
    message = _refused(agent, namespace, _session(grant, other_team, **DECLARED))
    assert "AlertNotMatched" in message
    assert 'team="shop"' in message


def _wait_ended(admin: Any, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    ended = agents.wait_phase(admin, namespace, name, {"Ended", "Revoked"}, timeout=timeout)
    print(f"\n[e2e] alert resolved -> session ended in {time.monotonic() - started:.1f} s")
    return ended


def _forbidden_now(local: cluster.LocalCluster, token: str, namespace: str) -> int:
    configuration = client.Configuration()
    configuration.host = local.url
    configuration.ssl_ca_cert = str(local.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    try:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_pod(namespace)
    except client.ApiException as e:
        return int(e.status)
    return 200


def test_resolving_the_alert_ends_the_session_and_its_credentials_stop_working(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    grant = _grant(admin, alertmanager_server.url, namespace)
    agent = _agent(local_cluster, admin, namespace)
    # Alertmanager notifies at its next group flush (group_interval 1 s); a poll (every 20 s)
    # that happens to run in that second sees the resolution first and ends the session as
    # "polled". Only that race is retried, with a fresh alert: a session ended by a notification
    # is still required, so with notifications broken this test never passes.
    seen = []
    for _attempt in range(3):
        labels = _labels()
        fingerprint = alerting.fire(alertmanager_server, labels)
        body = _session(grant, fingerprint)
        agents.open_session(agent, namespace, body)
        name = body["metadata"]["name"]
        active = agents.wait_phase(admin, namespace, name, {"Active"})
        token = agents.token_of(agent, namespace, active)
        assert _forbidden_now(local_cluster, token, namespace) == 200
        alerting.resolve(alertmanager_server, labels)
        ended = _wait_ended(admin, namespace, name, timeout=15)  # polling is every 20 s
        revocation = ended["status"]["revocation"]
        assert ended["status"]["phase"] == "Ended"
        assert revocation["reason"] == "IncidentResolved"
        assert _forbidden_now(local_cluster, token, namespace) in (401, 403)
        seen.append(revocation["message"])
        if "notified" in revocation["message"]:
            break
        assert "polled" in revocation["message"], revocation
        print(f"\n[e2e] a poll saw the resolution before the notification; again: {seen[-1]}")
    assert "notified" in seen[-1], seen


def test_polling_ends_the_session_when_the_notification_is_lost(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    namespace: str,
) -> None:
    # This Alertmanager notifies a port nobody listens on: only polling can see the resolution.
    lost = alerting.start("https://127.0.0.1:9/alertmanager", str(local_cluster.ca_file))
    try:
        grant = _grant(admin, lost.url, namespace)
        agent = _agent(local_cluster, admin, namespace)
        labels = _labels()
        fingerprint = alerting.fire(lost, labels)
        body = _session(grant, fingerprint)
        agents.open_session(agent, namespace, body)
        name = body["metadata"]["name"]
        agents.wait_phase(admin, namespace, name, {"Active"})
        alerting.resolve(lost, labels)
        ended = _wait_ended(admin, namespace, name, timeout=60)
        assert ended["status"]["revocation"]["reason"] == "IncidentResolved"
        assert "polled" in ended["status"]["revocation"]["message"]
    finally:
        lost.remove()


def test_alertmanager_down_refuses_the_session(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    namespace: str,
) -> None:
    am = alerting.start("https://127.0.0.1:9/alertmanager", None)
    try:
        fingerprint = alerting.fire(am, _labels())
        grant = _grant(admin, am.url, namespace)
        agent = _agent(local_cluster, admin, namespace)
        am.stop()  # the alert fired, and now nobody can confirm it
        message = _refused(agent, namespace, _session(grant, fingerprint, **DECLARED))
    finally:
        am.remove()
    assert "AlertmanagerUnreachable" in message
    assert "fail closed" in message
    assert am.url in message


async def _alert_incident_through_mcp(
    local: cluster.LocalCluster, am: alertmanager.Alertmanager, namespace: str, grant: str
) -> None:
    labels = _labels()
    fingerprint = alerting.fire(am, labels)
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "agent_authority.cli.main",
            "mcp",
            "-n",
            namespace,
            "--kubeconfig",
            str(local.user_kubeconfig(AGENT)),
        ],
        env=dict(os.environ),
    )
    async with Client(params, cache=None) as mcp:
        declared = await mcp.call_tool(
            "open_session",
            {
                "grant": grant,
                "incident_id": fingerprint,
                "severity": "SEV1",
                "purpose": "triage",
            },
        )
        assert declared.is_error
        assert "declared SEV1" in declared.content[0].text
        opened = await mcp.call_tool(
            "open_session",
            {
                "grant": grant,
                "incident_id": fingerprint,
                "purpose": "triage",
            },
        )
        assert not opened.is_error, opened.content[0].text
        assert opened.structured_content["incident"]["severity"] == "SEV3"
        listed = await mcp.call_tool("list_resources", {"resource": "pods", "namespace": namespace})
        assert not listed.is_error, listed.content[0].text
        alerting.resolve(am, labels)
        session = opened.structured_content["session"]
        await asyncio.to_thread(
            agents.wait_phase,
            agents.as_user(local, "admin", ["system:masters"]),
            namespace,
            session,
            {"Ended"},
            20,
        )
        after = await mcp.call_tool("list_resources", {"resource": "pods", "namespace": namespace})
        assert after.is_error
        assert "IncidentResolved" in after.content[0].text


def test_an_alert_driven_incident_through_the_mcp_server(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    grant = _grant(admin, alertmanager_server.url, namespace)
    _agent(local_cluster, admin, namespace)
    asyncio.run(_alert_incident_through_mcp(local_cluster, alertmanager_server, namespace, grant))


def test_a_forged_resolved_notification_ends_nothing(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    alertmanager_server: alertmanager.Alertmanager,
    namespace: str,
) -> None:
    """Anyone who can reach /alertmanager may claim an alert resolved: the operator asks
    Alertmanager itself, so a still-firing alert keeps its session."""
    grant = _grant(admin, alertmanager_server.url, namespace)
    agent = _agent(local_cluster, admin, namespace)
    fingerprint = alerting.fire(alertmanager_server, _labels())
    body = _session(grant, fingerprint)
    agents.open_session(agent, namespace, body)
    name = body["metadata"]["name"]
    agents.wait_phase(admin, namespace, name, {"Active"})
    forged = json.dumps(
        {
            "version": "4",
            "status": "resolved",
            "alerts": [{"status": "resolved", "fingerprint": fingerprint, "labels": {}}],
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        alerting.receiver_url(operator),
        data=forged,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(local_cluster.ca_file))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
        assert response.status == 200
    time.sleep(3)  # the check a notification triggers takes well under a second
    assert agents.get_session(admin, namespace, name)["status"]["phase"] == "Active"


def test_an_https_alertmanager_is_trusted_only_through_the_grants_ca_bundle(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    namespace: str,
) -> None:
    serving = local_cluster.operator_serving()  # a certificate for 127.0.0.1 from the cluster CA
    am = alertmanager.Alertmanager(
        alerting.receiver_url(operator),
        ca_file=str(local_cluster.ca_file),
        serving=(str(serving.cert), str(serving.key)),
    )
    try:
        am.start()
        assert am.url.startswith("https://")
        fingerprint = alerting.fire(am, _labels())
        agent = _agent(local_cluster, admin, namespace)
        untrusted = _grant(admin, am.url, namespace)  # no caBundle: the system CAs do not know it
        message = _refused(agent, namespace, _session(untrusted, fingerprint, **DECLARED))
        assert "AlertmanagerUnreachable" in message
        assert "CERTIFICATE_VERIFY_FAILED" in message or "certificate" in message.lower()
        trusted = agents.unique("alerts-tls")
        agents.create_grant(
            admin,
            trusted,
            {
                "subjects": [{"kind": "User", "name": AGENT}],
                "incidents": {
                    "severities": ["SEV3"],
                    "alertmanager": {
                        "url": am.url,
                        "caBundle": local_cluster.ca_file.read_text(),
                        "matchers": [{"name": "team", "value": "shop"}],
                    },
                },
                "read": [{"name": "pods", "namespaces": [namespace], "resources": ["pods"]}],
            },
        )
        body = _session(trusted, fingerprint)
        agents.open_session(agent, namespace, body)
        agents.wait_phase(admin, namespace, body["metadata"]["name"], {"Active"})
    finally:
        am.remove()
