"""``agent-authority mcp`` driven by the MCP SDK's own client, over stdio and streamable HTTP,
against the real apiserver and the real operator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes import client
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared import _httpx_utils

from agent_authority.localcluster import cluster
from agent_authority.models import GROUP
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e
AGENT = "mcp-agent"
APPROVER = "mcp-approver"
REVIEWER = "mcp-reviewer"
EXCERPT = "p99 latency of checkout rose from 120 ms to 2.4 s at 07:00; CPU throttled 80%"


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    ns: str
    shop: str
    grant: str


@pytest.fixture(scope="module")
def world(local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess) -> World:
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    ns, shop = agents.unique("mcp-agents"), agents.unique("mcp-shop")
    for name in (ns, shop):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.allow_scopes_in(local_cluster, shop)  # the scopes read there
    for sa in ("http-bot", "http-stranger"):
        core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
    grant = agents.unique("mcp")
    users = [
        AGENT,
        f"system:serviceaccount:{ns}:http-bot",
        f"system:serviceaccount:{ns}:http-stranger",
    ]
    agents.cluster_role(admin, f"open-{grant}", agents.open_sessions_rules(), users)
    agents.cluster_role(
        admin,
        f"review-{grant}",
        [
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"],
                "verbs": ["create"],
            }
        ],
        [REVIEWER],
    )
    agents.cluster_role(
        admin,
        f"approve-{grant}",
        [*agents.request_status_rules(), agents.approve_rule(grant)],
        [APPROVER],
    )
    agents.create_grant(
        admin,
        grant,
        {
            "subjects": [
                {"kind": "User", "name": AGENT},
                {"kind": "ServiceAccount", "namespace": ns, "name": "http-bot"},
            ],
            "incidents": {"severities": ["SEV1", "SEV2"]},
            "read": [
                {"name": "shop-core", "namespaces": [shop], "resources": ["pods", "events"]},
                {
                    "name": "shop-apps",
                    "namespaces": [shop],
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                },
                {
                    "name": "shop-logs",
                    "namespaces": [shop],
                    "resources": ["pods/log"],
                    "verbs": ["get"],
                },
            ],
            "remediations": [
                {
                    "action": "scale-workload",
                    "namespaces": [shop],
                    "autonomy": "auto",
                    "limits": {"maxReplicasDelta": 1},
                },
            ],
            "session": {"maxTtlSeconds": 900},
        },
    )
    apps.create_namespaced_deployment(
        shop,
        {
            "metadata": {"name": "checkout"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "checkout"}},
                "template": {
                    "metadata": {"labels": {"app": "checkout"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/c:1"}]},
                },
            },
        },
    )
    core.create_namespaced_event(
        shop,
        {
            "metadata": {"name": agents.unique("checkout-slow")},
            "involvedObject": {"kind": "Deployment", "name": "checkout", "namespace": shop},
            "reason": "LatencyHigh",
            "message": "p99 above 2 s",
            "type": "Warning",
        },
    )
    agents.wait_for(
        lambda: len(core.list_namespaced_pod(shop, label_selector="app=checkout").items) == 2,
        30,
        "2 checkout pods",
    )
    return World(local_cluster, admin, ns, shop, grant)


def _names(listing: Any) -> list[str]:
    return [t.name for t in listing.tools]


def _ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    data: dict[str, Any] = result.structured_content
    return data


def _refused(result: Any) -> str:
    assert result.is_error, result.structured_content
    text: str = result.content[0].text
    assert "Traceback" not in text
    return text


def _session_of(w: World, name: str) -> dict[str, Any]:
    return agents.get_session(w.admin, w.ns, name)


def _status_with_token(w: World, token: str) -> int:
    configuration = client.Configuration()
    configuration.host = w.local.url
    configuration.ssl_ca_cert = str(w.local.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    try:
        client.AppsV1Api(client.ApiClient(configuration)).read_namespaced_deployment(
            "checkout", w.shop
        )
    except client.ApiException as e:
        return int(e.status)
    return 200


def _approve(w: World, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            "approve",
            name,
            "--reason",
            "diff reviewed",
            "-n",
            w.ns,
            "--kubeconfig",
            str(w.local.user_kubeconfig(APPROVER)),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _stdio(w: World) -> Client:
    return Client(
        StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "agent_authority.cli.main",
                "mcp",
                "-n",
                w.ns,
                "--kubeconfig",
                str(w.local.user_kubeconfig(AGENT)),
            ],
            env=dict(os.environ),
        ),
        cache=None,
    )


async def _whole_incident(w: World) -> None:
    async with _stdio(w) as mcp:
        assert _names(await mcp.list_tools()) == ["open_session"]
        early = _refused(
            await mcp.call_tool(
                "get_resource", {"resource": "deployments", "name": "checkout", "namespace": w.shop}
            )
        )
        assert "open a session first" in early

        opened = _ok(
            await mcp.call_tool(
                "open_session",
                {
                    "grant": w.grant,
                    "incident_id": "INC-MCP-1",
                    "severity": "SEV2",
                    "incident_class": "latency",
                    "purpose": "checkout is slow",
                    "scopes": [{"name": "shop-core"}, {"name": "shop-apps"}],
                },
            )
        )
        session = opened["session"]
        assert opened["phase"] == "Active"
        tools = await mcp.list_tools()
        offered = _names(tools)
        assert {"list_resources", "get_resource", "events", "propose_remediation"} <= set(offered)
        assert "pod_logs" not in offered  # this session did not ask for the logs scope
        get_schema = next(t for t in tools.tools if t.name == "get_resource").input_schema
        assert get_schema["properties"]["namespace"]["enum"] == [w.shop]

        # Forced calls outside the rules are refused by the tool, before the apiserver.
        logs = _refused(await mcp.call_tool("pod_logs", {"pod": "x", "namespace": w.shop}))
        assert "not available" in logs
        secrets = _refused(
            await mcp.call_tool(
                "get_resource", {"resource": "secrets", "name": "db", "namespace": w.shop}
            )
        )
        assert "not sent to the cluster" in secrets
        other = _refused(
            await mcp.call_tool("list_resources", {"resource": "pods", "namespace": "kube-system"})
        )
        assert "not sent to the cluster" in other

        pods = _ok(await mcp.call_tool("list_resources", {"resource": "pods", "namespace": w.shop}))
        assert pods["count"] == 2
        deploy = _ok(
            await mcp.call_tool(
                "get_resource", {"resource": "deployments", "name": "checkout", "namespace": w.shop}
            )
        )
        assert deploy["spec"]["replicas"] == 2
        assert "managedFields" not in deploy["metadata"]
        events = _ok(
            await mcp.call_tool("events", {"namespace": w.shop, "involved_object": "checkout"})
        )
        assert any(e["reason"] == "LatencyHigh" for e in events["events"])
        can = _ok(
            await mcp.call_tool(
                "can_i", {"verb": "get", "resource": "secrets", "namespace": w.shop}
            )
        )
        assert can["allowed"] is False

        # Within the auto limit: applied without a human.
        target = {"kind": "Deployment", "namespace": w.shop, "name": "checkout"}
        evidence = [{"kind": "metric", "source": "prometheus", "excerpt": EXCERPT}]
        auto = _ok(
            await mcp.call_tool(
                "propose_remediation",
                {
                    "action": "scale-workload",
                    "target": target,
                    "params": {"replicas": 3},
                    "hypothesis": "two replicas cannot carry the load",
                    "evidence": evidence,
                },
            )
        )
        assert auto["diff"] == [{"path": "spec.replicas", "before": "2", "after": "3"}]
        assert auto["blastRadius"]["replicasDelta"] == 1
        done = _ok(
            await mcp.call_tool(
                "wait_for_remediation", {"name": auto["name"], "timeout_seconds": 60}
            )
        )
        assert done["phase"] == "Succeeded", done
        landed = client.CustomObjectsApi(w.admin).get_namespaced_custom_object(
            GROUP, "v1alpha1", w.ns, "remediationrequests", auto["name"]
        )
        (item,) = landed["spec"]["evidence"]
        assert item["sha256"] == hashlib.sha256(EXCERPT.encode()).hexdigest()
        assert item["excerpt"] == EXCERPT
        assert item["observedAt"]
        account = _session_of(w, session)["status"]["serviceAccountName"]
        assert landed["spec"]["requester"]["username"] == f"system:serviceaccount:{w.ns}:{account}"
        assert landed["spec"]["sessionRef"]["name"] == session

        # Beyond it: a human approves, then the operator applies.
        big = _ok(
            await mcp.call_tool(
                "propose_remediation",
                {
                    "action": "scale-workload",
                    "target": target,
                    "params": {"replicas": 5},
                    "hypothesis": "still saturated at three",
                    "evidence": evidence,
                },
            )
        )
        assert big["phase"] == "AwaitingApproval", big
        assert "approve" in big["next"]
        approved = await asyncio.to_thread(_approve, w, big["name"])
        assert approved.returncode == 0, approved.stderr
        finished = _ok(
            await mcp.call_tool(
                "wait_for_remediation", {"name": big["name"], "timeout_seconds": 60}
            )
        )
        assert finished["phase"] == "Succeeded", finished
        replicas = client.AppsV1Api(w.admin).read_namespaced_deployment("checkout", w.shop)
        assert replicas.spec.replicas == 5

        # The forced calls above never reached the apiserver: no denied request was recorded.
        await asyncio.sleep(3)  # longer than the audit webhook's 1 s batching
        status = _session_of(w, session)["status"]
        assert status["phase"] == "Active"
        assert status.get("deniedRequests", 0) == 0

        token = agents.token_of(agents.as_user(w.local, AGENT), w.ns, _session_of(w, session))
        ended = _ok(await mcp.call_tool("end_session", {}))
        assert ended["phase"] == "Ended"
        assert _status_with_token(w, token) in (401, 403)
        assert _names(await mcp.list_tools()) == ["open_session"]


def test_stdio_client_drives_a_whole_incident_through_the_tools(world: World) -> None:
    asyncio.run(_whole_incident(world))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("mcp-http") / "server.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent_authority.cli.main",
                "mcp",
                "--transport",
                "http",
                "--port",
                str(port),
                "-n",
                world.ns,
                "--kubeconfig",
                str(world.local.user_kubeconfig(REVIEWER)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the MCP HTTP server did not start:\n{log_path.read_text()}", pytrace=False
                )
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _token(w: World, account: str) -> str:
    created = client.CoreV1Api(w.admin).create_namespaced_service_account_token(
        account, w.ns, {"spec": {"expirationSeconds": 3600}}
    )
    return str(created.status.token)


def _post(url: str, authorization: str | None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_http_refuses_a_missing_or_invalid_bearer_token(http_server: str, world: World) -> None:
    assert _post(http_server, None) == 401
    assert _post(http_server, "Bearer not-a-kubernetes-token") == 401
    assert _post(http_server, "Basic Zm9vOmJhcg==") == 401


@contextlib.asynccontextmanager
async def _http(url: str, token: str) -> AsyncIterator[Client]:
    """The SDK client over streamable HTTP, sending ``token`` as the bearer on every request."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        _httpx_utils.create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), cache=None) as mcp,
    ):
        yield mcp


async def _as_verified_identities(url: str, w: World) -> None:
    async with _http(url, _token(w, "http-bot")) as bot:
        assert _names(await bot.list_tools()) == ["open_session"]
        opened = _ok(
            await bot.call_tool(
                "open_session",
                {
                    "grant": w.grant,
                    "incident_id": "INC-MCP-2",
                    "severity": "SEV1",
                    "incident_class": "latency",
                    "purpose": "remote agent",
                },
            )
        )
        session = opened["session"]
        spec = _session_of(w, session)["spec"]
        assert spec["requester"]["username"] == f"system:serviceaccount:{w.ns}:http-bot"
        assert "pod_logs" in _names(await bot.list_tools())  # this session has the logs scope
        deploy = _ok(
            await bot.call_tool(
                "get_resource", {"resource": "deployments", "name": "checkout", "namespace": w.shop}
            )
        )
        assert deploy["metadata"]["name"] == "checkout"
        pods = _ok(await bot.call_tool("list_resources", {"resource": "pods", "namespace": w.shop}))
        logs = _ok(
            await bot.call_tool(
                "pod_logs",
                {
                    "pod": pods["items"][0]["name"],
                    "namespace": w.shop,
                    "tail_lines": 5,
                    "max_bytes": 64,
                },
            )
        )
        assert logs["bytes"] <= 64  # the pod has no node, so no container wrote anything yet

        async with _http(url, _token(w, "http-stranger")) as stranger:
            refused = _refused(
                await stranger.call_tool(
                    "open_session",
                    {
                        "grant": w.grant,
                        "incident_id": "INC-MCP-3",
                        "severity": "SEV1",
                        "incident_class": "latency",
                        "purpose": "not mine",
                    },
                )
            )
            assert "NotASubject" in refused
            assert f"system:serviceaccount:{w.ns}:http-stranger" in refused
            theirs = _refused(await stranger.call_tool("end_session", {"session": session}))
            assert "not opened through this server by this identity" in theirs
        assert _session_of(w, session)["status"]["phase"] == "Active"

        # The remote agent proposes too: one replica more is inside the auto limit.
        now = int(deploy["spec"]["replicas"])
        proposed = _ok(
            await bot.call_tool(
                "propose_remediation",
                {
                    "action": "scale-workload",
                    "target": {"kind": "Deployment", "namespace": w.shop, "name": "checkout"},
                    "params": {"replicas": now + 1},
                    "hypothesis": "one more replica",
                    "evidence": [{"kind": "log", "source": "pod_logs", "excerpt": "timeout"}],
                },
            )
        )
        done = _ok(
            await bot.call_tool(
                "wait_for_remediation", {"name": proposed["name"], "timeout_seconds": 60}
            )
        )
        assert done["phase"] == "Succeeded", done
        landed = client.CustomObjectsApi(w.admin).get_namespaced_custom_object(
            GROUP, "v1alpha1", w.ns, "remediationrequests", proposed["name"]
        )
        assert landed["spec"]["requester"]["username"].startswith(
            f"system:serviceaccount:{w.ns}:aa-"
        )
        ended = _ok(await bot.call_tool("end_session", {"session": session}))
        assert ended["phase"] == "Ended"


def test_http_acts_as_the_verified_identity_only(http_server: str, world: World) -> None:
    asyncio.run(_as_verified_identities(http_server, world))
