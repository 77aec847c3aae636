"""The session gateway on the real control plane, with the real operator (and a second replica).

Gateway-mode sessions get a token for the gateway's audience and a kubeconfig that points at the
operator's gateway. These tests use real ``kubectl`` with that kubeconfig where the claim is about
kubectl, and raw HTTPS where they time or inspect the wire.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import http.client
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.kube import session_refs
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess

AGENT = "agent-gina"
AGENT_GROUP = "gateway-agents"
KUBECTL = shutil.which("kubectl")


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    agent_kubeconfig: pathlib.Path
    ns: str
    shop: str
    other: str
    lenient: str  # maxDeniedRequests 1000
    strict: str  # maxDeniedRequests 0 (the default)
    tmp: pathlib.Path


def grant_spec(shop: str, **session: Any) -> dict[str, Any]:
    return {
        "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency"]},
        "read": [
            {
                "name": "workloads",
                "namespaces": [shop],
                "apiGroups": ["", "apps"],
                "resources": ["pods", "pods/log", "deployments", "configmaps"],
                "verbs": ["get", "list", "watch"],
            }
        ],
        "session": {
            "maxTtlSeconds": 900,
            "maxConcurrentSessions": 50,
            "accessMode": "gateway",
            **session,
        },
    }


@pytest.fixture(scope="module")
def world(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[World]:
    ns, shop, other = agents.unique("gw"), agents.unique("gshop"), agents.unique("gother")
    core = client.CoreV1Api(admin)
    for name in (ns, shop, other):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.allow_scopes_in(local_cluster, shop)  # the scopes read there
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "open-sessions"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "list", "watch", "patch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "open-sessions"},
            "roleRef": {"apiGroup": agents.RBAC, "kind": "Role", "name": "open-sessions"},
            "subjects": [{"kind": "Group", "name": AGENT_GROUP, "apiGroup": agents.RBAC}],
        },
    )
    for i in range(3):
        core.create_namespaced_config_map(
            shop, {"metadata": {"name": f"settings-{i}"}, "data": {"k": "v"}}
        )
    core.create_namespaced_secret(shop, {"metadata": {"name": "db"}, "stringData": {"pw": "x"}})
    lenient, strict = agents.unique("gwlenient"), agents.unique("gwstrict")
    agents.create_grant(admin, lenient, grant_spec(shop, maxDeniedRequests=1000))
    agents.create_grant(admin, strict, grant_spec(shop))
    with tempfile.TemporaryDirectory(prefix="gateway-e2e-") as tmp:
        yield World(
            local_cluster,
            admin,
            agents.as_user(local_cluster, AGENT, [AGENT_GROUP]),
            local_cluster.user_kubeconfig(AGENT, [AGENT_GROUP]),
            ns,
            shop,
            other,
            lenient,
            strict,
            pathlib.Path(tmp),
        )
    for name in (lenient, strict):
        client.CustomObjectsApi(admin).delete_cluster_custom_object(
            GROUP, VERSION, "agentgrants", name
        )


# -- helpers ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    name: str
    uid: str
    token: str
    server: str
    ca: bytes
    kubeconfig: pathlib.Path


def open_session(w: World, grant: str, **spec: Any) -> Session:
    name = agents.unique("gs")
    agents.open_session(w.agent, w.ns, agents.session_body(name, grant, **spec))
    body = agents.wait_phase(w.admin, w.ns, name, {"Active", "Denied"})
    assert body["status"]["phase"] == "Active", body["status"]
    assert body["status"]["accessMode"] == "gateway"
    kubeconfig = w.tmp / f"{name}.kubeconfig"
    cli("session", "kubeconfig", name, "-n", w.ns, "--kubeconfig", str(w.agent_kubeconfig),
        "--write-kubeconfig", str(kubeconfig))  # fmt: skip
    config = yaml.safe_load(kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    token = config["users"][0]["user"]["token"]
    return Session(name, body["metadata"]["uid"], token, server, ca, kubeconfig)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def kubectl(w: World, s: Session, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL, "kubectl is not on PATH: these tests need the real kubectl"
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(s.kubeconfig), "--cache-dir", str(w.tmp / "kcache"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(w.tmp)},
    )


def _context(s: Session) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=s.ca.decode())


def call(
    s: Session,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    server: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body or {}, headers) of one request to the gateway with the session token."""
    req = urllib.request.Request(  # noqa: S310 - our own https URL
        (server or s.server) + path,
        method=method,
        data=body,
        headers={"Authorization": f"Bearer {s.token}", **(headers or {})},
    )
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10, context=_context(s)) as resp:  # noqa: S310
            text = resp.read()
            return resp.status, _json(text), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read()), dict(e.headers)


def _json(text: bytes) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def first_status(
    s: Session, path: str, want: int, timeout: float, server: str | None = None
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if call(s, path, server=server)[0] == want:
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"{path} did not answer {want} within {timeout} s")


class RawWatch:
    """A watch through the gateway read on a thread; records when the stream ends."""

    def __init__(self, s: Session, path: str) -> None:
        url = urllib.parse.urlsplit(s.server)
        self.conn = http.client.HTTPSConnection(
            url.hostname or "127.0.0.1", url.port, context=_context(s), timeout=60
        )
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {s.token}"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()
        self.events: list[dict[str, Any]] = []
        self.ended_at: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.strip():
                    self.events.append(json.loads(line))
        except (OSError, http.client.HTTPException, ValueError, AttributeError):
            pass
        self.ended_at = time.monotonic()

    def wait_ended(self, timeout: float) -> float:
        self._thread.join(timeout)
        assert self.ended_at is not None, f"the watch was still open after {timeout} s"
        self.close()
        return self.ended_at

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def pods(w: World) -> str:
    return f"/api/v1/namespaces/{w.shop}/pods"


# -- tests -----------------------------------------------------------------------------------


def test_kubectl_reads_through_the_gateway_and_a_forbidden_read_revokes(world: World) -> None:
    w = world
    s = open_session(w, w.strict)
    assert s.server.startswith("https://127.0.0.1:"), "the kubeconfig must point at the gateway"
    assert s.server != w.local.url
    listed = kubectl(w, s, "get", "configmaps", "-n", w.shop, "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "configmap/settings-0" in listed.stdout
    got = kubectl(w, s, "get", "configmap", "settings-1", "-n", w.shop, "-o", "json")
    assert json.loads(got.stdout)["data"] == {"k": "v"}

    can = kubectl(w, s, "auth", "can-i", "list", "pods", "-n", w.shop)
    assert (can.returncode, can.stdout.strip()) == (0, "yes")
    cannot = kubectl(w, s, "auth", "can-i", "list", "secrets", "-n", w.shop)
    assert cannot.stdout.strip() == "no"
    body = agents.get_session(w.admin, w.ns, s.name)
    assert body["status"]["phase"] == "Active", "kubectl auth can-i must not be a deviation"
    assert body["status"].get("deniedRequests", 0) == 0

    started = time.monotonic()
    refused = kubectl(w, s, "get", "secrets", "-n", w.shop)
    assert refused.returncode != 0
    assert "session gateway refused list secrets in namespace" in refused.stderr
    assert f"it would need {{namespace: {w.shop}, apiGroups: [''], resources: [secrets]" in (
        refused.stderr
    )
    revoked = agents.wait_phase(w.admin, w.ns, s.name, {"Revoked"}, timeout=10)
    took = time.monotonic() - started
    assert revoked["status"]["revocation"]["reason"] == "Deviation"
    assert revoked["status"]["deniedRequests"] == 1
    after = kubectl(w, s, "get", "configmaps", "-n", w.shop)
    assert after.returncode != 0
    assert "Unauthorized" in after.stderr or "must be logged in" in after.stderr, after.stderr
    print(f"\n[gateway] forbidden kubectl read -> session Revoked in {took:.2f} s")


def test_the_session_token_is_refused_by_the_apiserver_itself(world: World) -> None:
    w = world
    s = open_session(w, w.lenient)
    assert call(s, pods(w))[0] == 200
    assert probe.status(w.local, pods(w), s.token) == 401, "audience must keep it off the apiserver"


def test_revocation_gives_401_at_once_and_closes_open_streams(world: World) -> None:
    assert KUBECTL, "kubectl is not on PATH"
    w = world
    s = open_session(w, w.lenient)
    raw = RawWatch(s, f"/api/v1/namespaces/{w.shop}/configmaps?watch=true")
    watcher = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(s.kubeconfig), "--cache-dir", str(w.tmp / "kcache"),
         "get", "configmaps", "-n", w.shop, "-w", "-o", "name"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HOME": str(w.tmp)},
    )  # fmt: skip
    agents.wait_for(lambda: len(raw.events) >= 3, 10, "the raw watch's initial events")
    time.sleep(1.0)  # kubectl has listed and is watching
    assert watcher.poll() is None, watcher.communicate()

    ended = time.monotonic()
    agents.end_session(w.agent, w.ns, s.name)
    to_401 = first_status(s, pods(w), 401, timeout=5)
    raw_closed = raw.wait_ended(10) - ended
    _, kubectl_err = watcher.communicate(timeout=10)
    kubectl_closed = time.monotonic() - ended
    status, body, _ = call(s, pods(w))
    assert status == 401
    assert body["kind"] == "Status"
    assert "has ended" in body["message"]
    assert to_401 < 5, "the gateway must refuse at once, not after the apiserver's 10 s cache"
    print(
        f"\n[gateway] session end -> first 401 in {to_401 * 1000:.0f} ms; raw watch closed in "
        f"{raw_closed * 1000:.0f} ms; kubectl get -w exited in {kubectl_closed:.2f} s "
        f"({kubectl_err.strip()[:200] or 'no error output'})"
    )
    agents.wait_phase(w.admin, w.ns, s.name, {"Ended"})


def test_the_gateway_settles_http2_clients_on_http1_and_kubectl_works_over_it(
    world: World,
) -> None:
    """HTTP/2 is not served (docs/security.md): a client offering h2 first is told http/1.1 in
    the TLS handshake, and kubectl (client-go offers h2) runs a watch and reads beside it."""
    assert KUBECTL, "kubectl is not on PATH"
    w = world
    s = open_session(w, w.lenient)
    url = urllib.parse.urlsplit(s.server)
    context = _context(s)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        assert tls.selected_alpn_protocol() == "http/1.1"
    watcher = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(s.kubeconfig), "--cache-dir", str(w.tmp / "kcache"),
         "get", "configmaps", "-n", w.shop, "-w", "-o", "name"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HOME": str(w.tmp)},
    )  # fmt: skip
    try:
        for i in range(3):  # each read needs a connection of its own beside the open watch
            got = kubectl(w, s, "get", "configmap", f"settings-{i}", "-n", w.shop, "-o", "name")
            assert got.returncode == 0, got.stderr
        assert watcher.poll() is None, watcher.communicate()
    finally:
        watcher.kill()
        out, _ = watcher.communicate(timeout=10)
    assert "configmap/settings-0" in out


def test_a_watch_is_cut_when_the_session_expires(world: World) -> None:
    """No end signal comes from outside at a deadline: the gateway's own clock cuts the stream."""
    w = world
    s = open_session(w, w.lenient, ttlSeconds=30)  # room to open it on a loaded machine
    body = agents.get_session(w.admin, w.ns, s.name)
    expires = datetime.datetime.fromisoformat(body["status"]["expiresAt"].replace("Z", "+00:00"))
    raw = RawWatch(s, f"/api/v1/namespaces/{w.shop}/configmaps?watch=true")
    try:
        agents.wait_for(lambda: len(raw.events) >= 3, 10, "the raw watch's initial events")
        left = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
        expires_monotonic = time.monotonic() + left
        assert left > 0, "the watch must be open before the deadline"
        cut_after = raw.wait_ended(left + 10) - expires_monotonic
    finally:
        raw.close()
    status, answer, _ = call(s, pods(w))
    assert status == 401
    # The gateway's own view says "expired"; once the controller has deleted the session's
    # ServiceAccount, the TokenReview refuses the token first. Either way: a 401 Status.
    assert answer.get("kind") == "Status", answer
    assert cut_after > -1.0, f"cut {-cut_after:.2f} s before the deadline"
    print(f"\n[gateway] watch cut {cut_after * 1000:.0f} ms after expiresAt")


def test_refusals_are_kubernetes_statuses(world: World) -> None:
    w = world
    s = open_session(w, w.lenient)
    cases = {
        "exec": ("POST", f"/api/v1/namespaces/{w.shop}/pods/x/exec?command=sh", None, 403),
        "port-forward": ("POST", f"/api/v1/namespaces/{w.shop}/pods/x/portforward", None, 403),
        "proxy": ("GET", f"/api/v1/namespaces/{w.shop}/services/x/proxy/", None, 403),
        "another server's path": ("GET", "/metrics", None, 403),
        "encoded dot-dot": (
            "GET",
            f"/api/v1/namespaces/{w.shop}/configmaps%2F..%2F..%2F{w.other}%2Fconfigmaps",
            None,
            403,
        ),
        "write verb": ("DELETE", f"/api/v1/namespaces/{w.shop}/configmaps/settings-0", None, 403),
        "oversized body": (
            "POST",
            f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/remediationrequests",
            b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}",
            413,
        ),
    }
    for what, (method, path, data, code) in cases.items():
        status, body, _ = call(s, path, method=method, body=data)
        assert status == code, (what, status, body)
        assert body.get("kind") == "Status", what
        assert body.get("code") == code, what
    status, body, _ = call(
        s,
        f"/api/v1/namespaces/{w.shop}/pods",
        headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"},
    )
    assert status == 403
    assert "upgrade" in body["message"]
    assert agents.get_session(w.admin, w.ns, s.name)["status"]["phase"] == "Active"
    assert agents.get_session(w.admin, w.ns, s.name)["status"]["deniedRequests"] >= 7
    assert call(s, f"/api/v1/namespaces/{w.shop}/configmaps")[0] == 200


def test_every_call_is_an_audit_record_with_its_correlation_id(
    world: World, operator: OperatorProcess
) -> None:
    w = world
    s = open_session(w, w.lenient)
    status, _, headers = call(s, f"/api/v1/namespaces/{w.shop}/configmaps/settings-2")
    assert status == 200
    audit_id = headers.get("Audit-Id", "")
    assert audit_id.startswith(f"{s.uid}/"), "the apiserver records the gateway's correlation id"
    trail = pathlib.Path(operator.env.options.audit_trail or "")

    def record() -> dict[str, Any] | None:
        for line in trail.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("correlationId") == audit_id:
                return rec
        return None

    rec = agents.wait_for(record, 10, "the gateway's audit record", every=0.2)
    assert rec["event"] == "GatewayRequest"
    assert rec["object"]["uid"] == s.uid
    assert rec["details"]["verb"] == "get"
    assert rec["details"]["resource"] == "configmaps"
    assert rec["details"]["namespace"] == w.shop
    assert rec["details"]["name"] == "settings-2"
    assert rec["details"]["code"] == 200
    assert rec["details"]["bytes"] > 0
    assert rec["details"]["durationMicros"] > 0
    shown = cli("audit", "show", str(trail), "--session", s.name, "--event", "GatewayRequest",
                "-o", "json")  # fmt: skip
    ids = [json.loads(line)["correlationId"] for line in shown.stdout.splitlines()]
    assert audit_id in ids
    assert all(i.startswith(f"{s.uid}/") for i in ids)
    assert call(s, f"/api/v1/namespaces/{w.other}/pods")[0] == 403  # lenient: counted, not revoked
    metrics = (
        urllib.request.urlopen(
            f"http://127.0.0.1:{operator.env.options.metrics_port}/metrics", timeout=5
        )
        .read()
        .decode()
    )
    assert (
        f'agent_authority_gateway_requests_total{{code="200",grant="{w.lenient}",verb="get"}}'
        in (metrics)
    )
    refusals = [line for line in metrics.splitlines() if "gateway_refusals_total{" in line]
    assert any('reason="OutsideRules"' in line for line in refusals), refusals


def test_two_replicas_see_revocations_and_survive_each_other(
    world: World, operator: OperatorProcess
) -> None:
    """Replica B (no audit webhook receiver) beside A: both refuse an ended session; with A
    killed, B keeps serving and still detects deviations with no audit webhook at all."""
    w = world
    b_options = dataclasses.replace(
        operator.env.options,
        metrics_port=_free_port(),
        webhook_port=_free_port(),
        gateway_port=_free_port(),
        alert_port=_free_port(),
        audit_port=0,
        audit_trail=str(w.tmp / "replica-b-trail.jsonl"),
    )
    replica = OperatorProcess(
        w.local, dev.OperatorEnv(operator.env.kubeconfig, b_options), w.tmp / "replica-b.log"
    )
    # The sessions are opened before B starts: two standalone replicas (no --peering) would both
    # activate a new session, and the one whose conditional transition loses takes back the
    # credentials it (re)created, which are the winner's too. Multiple replicas that run the
    # controllers need --peering (docs/operations.md); the gateway runs in every replica.
    first, second, third = (open_session(w, g) for g in (w.lenient, w.lenient, w.strict))
    replica.start()
    b_server = f"https://127.0.0.1:{b_options.gateway_port}"
    a_killed = False
    try:
        for s in (first, second, third):
            assert call(s, pods(w))[0] == 200, "replica A"
            assert call(s, pods(w), server=b_server)[0] == 200, "replica B"
        agents.end_session(w.agent, w.ns, first.name)
        a_took = first_status(first, pods(w), 401, timeout=5)
        b_took = first_status(first, pods(w), 401, timeout=5, server=b_server)
        print(
            f"\n[gateway] end seen by replica A after {a_took * 1000:.0f} ms, "
            f"B {b_took * 1000:.0f} ms"
        )

        operator.kill()  # A (and its audit webhook receiver) is gone
        a_killed = True
        assert call(second, pods(w), server=b_server)[0] == 200, "B keeps serving without A"
        status, body, _ = call(third, f"/api/v1/namespaces/{w.shop}/secrets", server=b_server)
        assert status == 403
        assert "revoked" in body["message"]
        revoked = agents.wait_phase(w.admin, w.ns, third.name, {"Revoked"}, timeout=15)
        assert revoked["status"]["revocation"]["reason"] == "Deviation"
        assert call(third, pods(w), server=b_server)[0] == 401
    finally:
        replica.kill()
        if a_killed:
            operator.start()
        else:
            operator.restart()  # B took over the webhook configurations: take them back


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_narrowed_grant_narrows_the_gateway_and_cuts_what_it_no_longer_allows(
    world: World,
) -> None:
    w = world
    name = agents.unique("gwnarrow")
    agents.create_grant(w.admin, name, grant_spec(w.shop, maxDeniedRequests=1000))
    try:
        s = open_session(w, name)
        pods_watch = RawWatch(s, f"/api/v1/namespaces/{w.shop}/pods?watch=true")
        maps_watch = RawWatch(s, f"/api/v1/namespaces/{w.shop}/configmaps?watch=true")
        agents.wait_for(lambda: len(maps_watch.events) >= 3, 10, "the configmap watch's events")
        narrowed = grant_spec(w.shop, maxDeniedRequests=1000)
        narrowed["read"][0]["resources"] = ["pods", "pods/log", "deployments"]
        started = time.monotonic()
        client.CustomObjectsApi(w.admin).patch_cluster_custom_object(
            GROUP, VERSION, "agentgrants", name, {"spec": {"read": narrowed["read"]}}
        )
        cut = maps_watch.wait_ended(15) - started
        assert pods_watch.ended_at is None, "a stream the narrowed rules still allow stays open"
        status, body, _ = call(s, f"/api/v1/namespaces/{w.shop}/configmaps")
        assert status == 403
        assert "would need" in body["message"]
        assert call(s, pods(w))[0] == 200
        pods_watch.close()
        print(f"\n[gateway] grant narrowed -> configmap watch closed in {cut * 1000:.0f} ms")
    finally:
        client.CustomObjectsApi(w.admin).delete_cluster_custom_object(
            GROUP, VERSION, "agentgrants", name
        )


def test_a_remediation_request_goes_through_the_gateway_as_the_session(world: World) -> None:
    """The one write a session has: create a RemediationRequest in its own namespace. Through the
    gateway it is made as the session's ServiceAccount (impersonated), so the admission webhook
    stamps that identity as the requester, exactly as in direct mode."""
    w = world
    s = open_session(w, w.lenient)
    request = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RemediationRequest",
        "metadata": {"name": agents.unique("gwrr")},
        "spec": {
            "sessionRef": {"name": s.name},
            "action": {
                "type": "restart-workload",
                "target": {"kind": "Deployment", "namespace": w.shop, "name": "web"},
            },
            "hypothesis": "through the gateway",
            "evidence": [
                {
                    "kind": "other",
                    "source": "e2e",
                    "excerpt": "x",
                    "sha256": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
                    "observedAt": "2026-11-21T07:00:00Z",
                }
            ],
        },
    }
    status, body, _ = call(
        s,
        f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/remediationrequests",
        method="POST",
        body=json.dumps(request).encode(),
    )
    assert status == 201, body
    account = agents.get_session(w.admin, w.ns, s.name)["status"]["serviceAccountName"]
    assert body["spec"]["requester"]["username"] == f"system:serviceaccount:{w.ns}:{account}"


def test_smuggled_identity_headers_do_not_change_who_the_apiserver_sees(world: World) -> None:
    """The agent adds impersonation, front-proxy and audit headers of its own to a request the
    gateway forwards: the apiserver still sees the session's ServiceAccount (the gateway strips
    them and sets its own), and the correlation id is the gateway's."""
    w = world
    s = open_session(w, w.lenient)
    account = agents.get_session(w.admin, w.ns, s.name)["status"]["serviceAccountName"]
    review = json.dumps(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    ).encode()
    smuggled = {
        "Impersonate-User": "system:admin",
        "Impersonate-Group": "system:masters",
        "Impersonate-Uid": "0",
        "Impersonate-Extra-Scopes": "everything",
        "X-Remote-User": "system:admin",
        "X-Remote-Group": "system:masters",
        "Audit-ID": "forged-audit-id",
    }
    code, body, headers = call(
        s, "/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST", review, headers=smuggled
    )
    assert code == 201, body
    info = body["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{w.ns}:{account}"
    assert "system:masters" not in info.get("groups", [])
    assert "scopes" not in (info.get("extra") or {})
    assert headers.get("Audit-Id", "").startswith(f"{s.uid}/")


def _credentials_of(w: World, uid: str) -> list[str]:
    """What RBAC and identity objects of the session still exist (kind/name)."""
    selector = f"{session_refs.SESSION_UID}={uid}"
    rbac, core = client.RbacAuthorizationV1Api(w.admin), client.CoreV1Api(w.admin)
    found = [
        f"RoleBinding/{b.metadata.name}"
        for b in rbac.list_role_binding_for_all_namespaces(label_selector=selector).items
    ]
    found += [
        f"ServiceAccount/{a.metadata.name}"
        for a in core.list_namespaced_service_account(w.ns, label_selector=selector).items
    ]
    return found


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in body["status"].get("conditions", []) if c["type"] == type_]
    assert found, f"no {type_} condition in {body['status'].get('conditions')}"
    return dict(found[0])


def test_a_crash_after_the_revoked_status_still_deletes_the_credentials(
    world: World, operator: OperatorProcess
) -> None:
    """Gateway mode writes ``Revoked`` before it deletes the RBAC objects: killed right after
    that status write, the session is refused at once, its condition ``CredentialsRevoked`` says
    the RoleBindings and ServiceAccount are not gone yet (and they are not), and the restarted
    operator deletes them and sets the condition True."""
    w = world
    s = open_session(w, w.strict)
    assert _credentials_of(w, s.uid), "an active session has its RoleBindings and ServiceAccount"
    operator.stop()
    operator.start(failpoints="after-status:SessionRevoked")
    restarted = False
    try:
        try:
            status = call(s, f"/api/v1/namespaces/{w.shop}/secrets")[0]
            assert status == 403, status
        except (OSError, http.client.HTTPException):
            pass  # the operator may die before its answer is out: the status is what counts
        assert operator.wait_exit(30) != 0, "the operator did not stop after the Revoked write"
        body = agents.get_session(w.admin, w.ns, s.name)
        assert body["status"]["phase"] == "Revoked", body["status"]
        assert body["status"]["revocation"]["reason"] == "Deviation"
        pending = _condition(body, "CredentialsRevoked")
        assert (pending["status"], pending["reason"]) == ("False", "Deleting"), pending
        left = _credentials_of(w, s.uid)
        assert any(k.startswith("RoleBinding/") for k in left), (
            f"the status must be written before the RBAC objects are deleted; left: {left}"
        )
        operator.start()
        restarted = True
        assert call(s, pods(w))[0] == 401, "a Revoked session is refused by the gateway"

        def removed() -> dict[str, Any] | None:
            now = agents.get_session(w.admin, w.ns, s.name)
            done = _condition(now, "CredentialsRevoked")["status"] == "True"
            return now if done and not _credentials_of(w, s.uid) else None

        after = agents.wait_for(removed, 30, "the credentials deleted after the restart")
        assert _condition(after, "CredentialsRevoked")["reason"] == "Deleted"
        assert after["status"]["phase"] == "Revoked"
    finally:
        if not restarted:
            operator.stop()
            operator.start()
