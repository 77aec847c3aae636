"""The operator's life as pods on a real node: install, tour, leader loss, upgrade, uninstall.

The tests run in file order on one release (each step starts from where the previous left it):
``helm install`` until Ready and ``helm test``; a session, an approved remediation and a
revocation handled in-cluster; the leader lost, its process SIGKILLed and then its pod
force-deleted (admission refusals and revocation delay measured); ``helm upgrade`` with an active
session and a pending request; ``helm uninstall`` leaving no credential and no finalizer, CRDs
kept.

Sessions run in the chart's default mode, gateway: their kubeconfig points at the gateway on the
webhook Service, which the tests reach from the host as agents on a node would (the host has no
cluster DNS, so the Service's name is resolved to its ClusterIP, which kube-proxy's rules on the
host route; TLS is still verified for the name). One grant opts into direct mode.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes import client

from agent_authority import certs
from agent_authority.localcluster import cluster, node
from agent_authority.models import FINALIZER, GROUP, VERSION
from agent_authority.models.admission import WEBHOOK_CONFIGURATION
from tests.e2e import agents

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agent-authority"
RELEASE, NAMESPACE = "agent-authority", "agent-authority-system"
AGENT, AGENT_GROUP, APPROVER = "agent-rita", "remediation-agents", "oncall-1"
LEASE_SECONDS, WEBHOOK_TIMEOUT = 15, 10
IMAGE = "localhost/agent-authority/pause:1"  # no registry: every pod uses a local image
# The first test also waits for the image build and the node's start-up (minutes when cold).
pytestmark = pytest.mark.timeout(1500)


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    helm: list[str]
    ns: str
    shop: str
    grant: str
    tag: str


def _helm(w: World, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*w.helm, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _install_args(w: World) -> list[str]:
    return [
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        f"image.tag={w.tag}",
        "--set",
        f"sessionNamespaces={{{w.ns}}}",
        "--set",
        f"scopeNamespaces={{{w.shop}}}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        f"leaderElection.leaseSeconds={LEASE_SECONDS}",
        "--set",
        f"webhooks.timeoutSeconds={WEBHOOK_TIMEOUT}",
        "--set",
        "approvals.enabled=true",
        "--wait",
        "--timeout",
        "6m",
    ]


def _grant_spec(shop: str) -> dict[str, Any]:
    return agents.remediation_grant_spec(
        [{"kind": "Group", "name": AGENT_GROUP}],
        shop,
        [
            {
                "action": "scale-workload",
                "namespaces": [shop],
                "autonomy": "auto",
                "limits": {"maxReplicasDelta": 1},
            }
        ],
        approval_timeout=1800,
        max_ttl=1800,
    )


@pytest.fixture(scope="module")
def world(
    node_cluster: tuple[cluster.LocalCluster, node.LocalNode],
    node_admin: Any,
    operator_image: tuple[pathlib.Path, str],
    helm: pathlib.Path,
) -> World:
    local = node_cluster[0]
    core = client.CoreV1Api(node_admin)
    ns, shop = agents.unique("agents"), agents.unique("shop")
    for name in (ns, shop):
        core.create_namespace({"metadata": {"name": name}})
    grant = agents.unique("fixer")
    return World(
        local,
        node_admin,
        agents.as_user(local, AGENT, [AGENT_GROUP]),
        [str(helm), f"--kubeconfig={local.kubeconfig}"],
        ns,
        shop,
        grant,
        operator_image[1],
    )


def _operator_pods(w: World) -> list[Any]:
    pods = client.CoreV1Api(w.admin).list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/name=agent-authority"
    )
    return [p for p in pods.items if p.metadata.deletion_timestamp is None]


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return agents.deployment(name, replicas, IMAGE, imagePullPolicy="Never")


@dataclasses.dataclass
class Session:
    name: str
    token: str
    account: str
    server: str | None = None
    """The gateway's URL (gateway mode: the ``server`` key of the session Secret)."""
    ca: pathlib.Path | None = None
    """The gateway's CA (``ca.crt`` of the session Secret), written to a file."""


UNREACHABLE = -1


def _session(w: World, grant: str | None = None) -> Session:
    name = agents.unique("s")
    body = agents.session_body(name, grant or w.grant, ttlSeconds=1800)
    body = agents.active_session(w.agent, w.admin, w.ns, body, timeout=60)
    secret = client.CoreV1Api(w.agent).read_namespaced_secret(body["status"]["secretName"], w.ns)
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    ca: pathlib.Path | None = None
    if "ca.crt" in data:
        ca = w.local.pki_dir / f"{name}-gateway-ca.crt"
        ca.write_text(data["ca.crt"])
    account = body["status"]["serviceAccountName"]
    return Session(name, data["token"], account, data.get("server"), ca)


def _via_cluster_ip(w: World, url: str) -> tuple[str, str]:
    """``https://<service>.<namespace>.svc:<port>`` as (the ClusterIP URL, the TLS name)."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    service, namespace = host.split(".")[:2]
    ip = client.CoreV1Api(w.admin).read_namespaced_service(service, namespace).spec.cluster_ip
    return f"https://{ip}:{parsed.port or 443}", host


def _as_session(w: World, s: Session, *, direct: bool = False) -> Any:
    """A client with the session's token, through its gateway unless ``direct`` (or none)."""
    configuration = client.Configuration()
    if s.server and not direct:
        configuration.host, configuration.tls_server_name = _via_cluster_ip(w, s.server)
        configuration.ssl_ca_cert = str(s.ca)
    else:
        configuration.host = w.local.url
        configuration.ssl_ca_cert = str(w.local.ca_file)
    configuration.api_key = {"authorization": f"Bearer {s.token}"}
    configuration.retries = False
    return client.ApiClient(configuration)


def _token_status(w: World, s: Session, *, direct: bool = False) -> int:
    """200 if the session may list deployments in the shop, else the refusal's status
    (:data:`UNREACHABLE` when nothing answers, e.g. the gateway is uninstalled)."""
    try:
        api = _as_session(w, s, direct=direct)
    except client.ApiException as e:  # the gateway's Service is gone
        if e.status != 404:
            raise
        return UNREACHABLE
    try:
        client.AppsV1Api(api).list_namespaced_deployment(w.shop, _request_timeout=10)
    except client.ApiException as e:
        return int(e.status)
    except urllib3.exceptions.HTTPError:
        return UNREACHABLE
    return 200


def _ask(w: World, s: Session, deployment: str, replicas: int) -> str:
    name = agents.unique("rr")
    scale = {
        "type": "scale-workload",
        "target": {"kind": "Deployment", "namespace": w.shop, "name": deployment},
        "params": {"replicas": replicas},
    }
    agents.create_request(
        _as_session(w, s),
        w.ns,
        name,
        agents.request_spec(s.name, scale, "more replicas absorb the load"),
    )
    return name


def _request(w: World, name: str) -> dict[str, Any]:
    return agents.get_request(w.admin, w.ns, name)


def _request_phase(w: World, name: str, phases: set[str], timeout: float = 60) -> dict[str, Any]:
    return agents.wait_request_phase(w.admin, w.ns, name, phases, timeout, every=0.2)


def _approve(w: World, name: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            "approve",
            name,
            "--reason",
            "reviewed the diff",
            "-n",
            w.ns,
            "--kubeconfig",
            str(w.local.user_kubeconfig(APPROVER)),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )
    assert result.returncode == 0, result.stderr


def _replicas(w: World, name: str) -> int:
    return int(client.AppsV1Api(w.admin).read_namespaced_deployment(name, w.shop).spec.replicas)


def _credentials_gone(w: World, s: Session) -> bool:
    core, rbac = client.CoreV1Api(w.admin), client.RbacAuthorizationV1Api(w.admin)
    try:
        core.read_namespaced_service_account(s.account, w.ns)
        return False
    except client.ApiException as e:
        if e.status != 404:
            raise
    for namespace in (w.ns, w.shop):
        for binding in rbac.list_namespaced_role_binding(namespace).items:
            if any(sub.name == s.account for sub in binding.subjects or []):
                return False
    return True


# -- the node ----------------------------------------------------------------------------------


def test_the_kubelet_authorizes_every_caller(world: World) -> None:
    """A certificate from the cluster CA is not enough: the kubelet asks the apiserver (RBAC)."""
    pki = world.local.pki_dir
    ca = certs.Authority.load(certs.KeyPair(pki / "cluster-ca.crt", pki / "cluster-ca.key"))
    pair = ca.issue(
        pki, "kubelet-probe", common_name=AGENT, organizations=[AGENT_GROUP], client=True
    )
    context = ssl.create_default_context(cafile=None)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the kubelet's serving certificate is self-signed
    context.load_cert_chain(str(pair.cert), str(pair.key))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"https://{node.GATEWAY}:10250/pods", context=context, timeout=10)
    refused.value.close()
    assert refused.value.code == 403


# -- install ------------------------------------------------------------------------------------


def test_install_becomes_ready_and_passes_helm_test(world: World) -> None:
    w = world
    started = time.monotonic()
    result = _helm(w, "install", RELEASE, *_install_args(w), "--create-namespace")
    assert result.returncode == 0, result.stderr + result.stdout
    pods = _operator_pods(w)
    print(f"\n[node] helm install -> {len(pods)} pods Ready in {time.monotonic() - started:.1f} s")
    assert len(pods) == 2
    assert all(_ready(p) for p in pods)
    for pod in pods:
        context = pod.spec.containers[0].security_context
        assert context.read_only_root_filesystem
        assert context.run_as_non_root
        assert context.capabilities.drop == ["ALL"]
    tested = _helm(w, "test", RELEASE, "-n", NAMESPACE, timeout=300)
    assert tested.returncode == 0, tested.stderr + tested.stdout
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout


# -- the tour ------------------------------------------------------------------------------------


def test_session_remediation_approval_and_revocation_in_cluster(world: World) -> None:
    w = world
    agents.cluster_role(w.admin, f"open-{w.grant}", agents.open_sessions_rules(), [AGENT])
    agents.cluster_role(
        w.admin,
        f"approve-{w.grant}",
        [*agents.request_status_rules(), agents.approve_rule(w.grant)],
        [APPROVER],
    )
    agents.create_grant(w.admin, w.grant, _grant_spec(w.shop))  # through the grant webhook
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, _deployment("web", 1))
    s = _session(w)
    # The chart's default: a gateway-mode session, its kubeconfig naming the gateway Service.
    assert s.server == f"https://{RELEASE}-webhooks.{NAMESPACE}.svc:8443", s.server
    assert _token_status(w, s) == 200
    assert _token_status(w, s, direct=True) == 401, "a gateway token must not reach the apiserver"
    name = _ask(w, s, "web", 3)  # +2 is beyond the auto limit: a human must approve
    _request_phase(w, name, {"AwaitingApproval"})
    _approve(w, name)
    _request_phase(w, name, {"Succeeded"})
    assert _replicas(w, "web") == 3
    agents.end_session(w.agent, w.ns, s.name)
    agents.wait_phase(w.admin, w.ns, s.name, {"Ended"}, timeout=60)
    agents.wait_for(lambda: _credentials_gone(w, s), 30, "the session's credentials to go")
    agents.wait_for(lambda: _token_status(w, s) in (401, 403), 30, "the token to be refused")


def test_a_direct_mode_grant_reads_the_apiserver_itself(world: World) -> None:
    w = world
    grant = agents.unique("direct")
    spec = _grant_spec(w.shop)
    spec["session"]["accessMode"] = "direct"
    agents.cluster_role(w.admin, f"open-{grant}", agents.open_sessions_rules(), [AGENT])
    agents.create_grant(w.admin, grant, spec)
    s = _session(w, grant)
    assert s.server is None, "a direct session's Secret names no gateway"
    assert _token_status(w, s) == 200
    agents.end_session(w.agent, w.ns, s.name)
    agents.wait_phase(w.admin, w.ns, s.name, {"Ended"}, timeout=60)
    agents.wait_for(lambda: _token_status(w, s) in (401, 403), 30, "the direct token refused")


# -- the approval page ---------------------------------------------------------------------------


def test_the_approval_page_answers_through_its_service(world: World) -> None:
    """Enabled in the chart: HTTPS on the approvals Service, verified with the operator's CA for
    the Service's name, answering with the sign-in form."""
    w = world
    service = f"{RELEASE}-approvals"
    found = client.CoreV1Api(w.admin).read_namespaced_service(service, NAMESPACE)
    assert found.spec.session_affinity == "ClientIP"
    secret = client.CoreV1Api(w.admin).read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE)
    context = ssl.create_default_context(cadata=base64.b64decode(secret.data["ca.crt"]).decode())
    name = f"{service}.{NAMESPACE}.svc"
    raw = socket.create_connection((found.spec.cluster_ip, 443), timeout=10)
    request = f"GET /login HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
    with context.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(request.encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"<h1>Sign in</h1>" in body


# -- leader loss -----------------------------------------------------------------------------------


def _leader_pod(w: World) -> str:
    peering = client.CustomObjectsApi(w.admin).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", RELEASE
    )
    live = {}
    for peer_id, info in (peering.get("status") or {}).items():
        if not isinstance(info, dict):
            continue
        live[peer_id] = info
    assert live, f"no peers recorded in the peering object: {peering.get('status')}"
    names = {p.metadata.name for p in _operator_pods(w)}
    ranked = sorted(live.items(), key=lambda kv: int(kv[1].get("priority", 0)), reverse=True)
    for peer_id, _info in ranked:
        host = peer_id.split("@", 1)[-1].split("/", 1)[0]
        if host in names:
            return host
    raise AssertionError(f"no live operator pod among the peers {list(live)}")


def _operator_pid(pod: str) -> int:
    """The host pid of the operator process in ``pod`` (found by its HOSTNAME)."""
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"agent_authority.cli.main" in cmdline and f"HOSTNAME={pod}".encode() in environ:
            return int(proc.name)
    raise AssertionError(f"no operator process found for pod {pod}")


class AdmissionProbe(threading.Thread):
    """Dry-run session creations every 0.2 s; records when admission was unavailable."""

    def __init__(self, w: World) -> None:
        super().__init__(daemon=True)
        self.w = w
        self.stop = threading.Event()
        self.failures: list[tuple[float, str]] = []
        self.successes = 0

    def run(self) -> None:
        api = client.CustomObjectsApi(self.w.agent)
        while not self.stop.is_set():
            body = agents.session_body(agents.unique("probe"), self.w.grant)
            try:
                api.create_namespaced_custom_object(
                    GROUP, VERSION, self.w.ns, "incidentsessions", body, dry_run="All"
                )
                self.successes += 1
            except client.ApiException as e:
                self.failures.append((time.monotonic(), agents.refusal(e)[:200]))
            except urllib3.exceptions.HTTPError as e:  # the connection dropped: also unavailable
                self.failures.append((time.monotonic(), f"connection: {e}"[:200]))
            time.sleep(0.2)

    def longest_outage(self) -> float:
        """Longest span of consecutive refusals (0 when none)."""
        longest, start, last = 0.0, None, None
        for at, _ in self.failures:
            if last is None or at - last > 1.0:
                start = at
            last = at
            assert start is not None
            longest = max(longest, at - start + 0.2)
        return longest


def _kill_process(w: World, pod: str) -> None:
    os.kill(_operator_pid(pod), signal.SIGKILL)  # a crash: no clean-up, no hand-over


def _force_delete_pod(w: World, pod: str) -> None:
    """``kubectl delete pod --grace-period=0 --force``: the object goes at once, the kubelet
    kills the container without waiting (the operator gets no time to hand over)."""
    client.CoreV1Api(w.admin).delete_namespaced_pod(
        pod, NAMESPACE, grace_period_seconds=0, body=client.V1DeleteOptions(grace_period_seconds=0)
    )


@pytest.mark.parametrize(
    ("how", "lose"),
    [
        pytest.param("SIGKILLed", _kill_process, id="process-killed"),
        pytest.param("pod force-deleted", _force_delete_pod, id="pod-force-deleted"),
    ],
)
def test_losing_the_leader_hands_over_within_a_lease(
    world: World, how: str, lose: Callable[[World, str], None]
) -> None:
    w = world
    s = _session(w)
    probe = AdmissionProbe(w)
    probe.start()
    time.sleep(2)
    leader = _leader_pod(w)
    lose(w, leader)
    killed = time.monotonic()
    # Ending passes the session UPDATE webhook: while the dead pod is still an endpoint the
    # apiserver may reach it and fail the call (5xx). A client retries, as an agent would; the
    # probe measures that outage and bounds it below.
    deadline = killed + WEBHOOK_TIMEOUT + 10
    while True:
        try:
            agents.end_session(w.agent, w.ns, s.name)
            break
        except client.ApiException as e:
            if e.status is None or e.status < 500 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    agents.wait_phase(w.admin, w.ns, s.name, {"Ended"}, timeout=LEASE_SECONDS + 60)
    agents.wait_for(lambda: _credentials_gone(w, s), 60, "the ended session's credentials to go")
    revoked = time.monotonic() - killed
    agents.wait_for(
        lambda: len([p for p in _operator_pods(w) if _ready(p)]) == 2, 120, "two Ready pods again"
    )
    time.sleep(2)
    probe.stop.set()
    probe.join(10)
    outage = probe.longest_outage()
    print(
        f"\n[node] leader {leader} {how}: revocation done {revoked:.1f} s later "
        f"(lease {LEASE_SECONDS} s); admission refused {len(probe.failures)} times, longest "
        f"outage {outage:.1f} s, {probe.successes} admitted"
    )
    if probe.failures:
        print(f"[node] first refusal: {probe.failures[0][1]}")
    assert probe.successes > 0
    assert outage <= WEBHOOK_TIMEOUT, probe.failures[:5]
    assert revoked <= LEASE_SECONDS + 30, f"revocation took {revoked:.1f} s"


# -- upgrade ---------------------------------------------------------------------------------------


def test_upgrade_keeps_sessions_and_pending_requests(world: World) -> None:
    w = world
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, _deployment("api", 1))
    s = _session(w)
    pending = _ask(w, s, "api", 3)
    _request_phase(w, pending, {"AwaitingApproval"})
    before = {p.metadata.name for p in _operator_pods(w)}
    started = time.monotonic()
    result = _helm(
        w, "upgrade", RELEASE, *_install_args(w), "--set", "podAnnotations.rollout=second"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    after = {p.metadata.name for p in _operator_pods(w)}
    print(f"\n[node] helm upgrade (pods replaced) in {time.monotonic() - started:.1f} s")
    assert not before & after, "the upgrade did not replace the operator pods"
    body = agents.get_session(w.admin, w.ns, s.name)
    assert body["status"]["phase"] == "Active"
    assert agents.token_of(w.agent, w.ns, body) == s.token, "the upgrade re-minted the token"
    assert _token_status(w, s) == 200
    assert _request(w, pending)["status"]["phase"] == "AwaitingApproval"
    assert _replicas(w, "api") == 1, "a pending request was applied without approval"
    _approve(w, pending)
    done = _request_phase(w, pending, {"Succeeded"})
    assert _replicas(w, "api") == 3
    generation = client.AppsV1Api(w.admin).read_namespaced_deployment("api", w.shop).metadata
    time.sleep(3)  # a second apply (by a replica that missed the first) would show up here
    assert _request(w, pending)["status"]["phase"] == "Succeeded"
    again = client.AppsV1Api(w.admin).read_namespaced_deployment("api", w.shop).metadata
    assert again.generation == generation.generation
    print(f"[node] request {pending} {done['status']['phase']} once, replicas 1 -> 3")


# -- uninstall -------------------------------------------------------------------------------------


def test_uninstall_revokes_every_session_and_keeps_the_crds(world: World) -> None:
    w = world
    s = _session(w)
    assert _token_status(w, s) == 200
    result = _helm(w, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m")
    assert result.returncode == 0, result.stderr + result.stdout + _hook_logs(w)
    body = agents.get_session(w.admin, w.ns, s.name)
    assert body["status"]["phase"] == "Ended"
    assert FINALIZER not in (body["metadata"].get("finalizers") or [])
    assert _credentials_gone(w, s)
    secret = body["status"].get("secretName")
    if secret:
        with pytest.raises(client.ApiException) as gone:
            client.CoreV1Api(w.admin).read_namespaced_secret(secret, w.ns)
        assert gone.value.status == 404
    # The gateway went with the operator: nothing answers there any more (or it refuses).
    agents.wait_for(lambda: _token_status(w, s) in (401, 403, UNREACHABLE), 30, "the token refused")
    ext = client.ApiextensionsV1Api(w.admin)
    crds = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    assert {f"incidentsessions.{GROUP}", f"agentgrants.{GROUP}"} <= crds
    hooks = client.AdmissionregistrationV1Api(w.admin)
    configurations = [
        *hooks.list_validating_webhook_configuration().items,
        *hooks.list_mutating_webhook_configuration().items,
    ]
    assert WEBHOOK_CONFIGURATION not in {c.metadata.name for c in configurations}
    # Nothing waits for a vanished operator: a session can simply be deleted now.
    client.CustomObjectsApi(w.admin).delete_namespaced_custom_object(
        GROUP, VERSION, w.ns, "incidentsessions", s.name
    )
    agents.wait_for(lambda: _gone(w, s.name), 15, "the session to be deleted")
    assert not _operator_pods(w)
    tokens = [
        sa.metadata.name
        for sa in client.CoreV1Api(w.admin).list_namespaced_service_account(w.ns).items
        if sa.metadata.name != "default"
    ]
    assert not tokens, f"session ServiceAccounts left behind: {tokens}"


def _hook_logs(w: World) -> str:
    core = client.CoreV1Api(w.admin)
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={RELEASE}-uninstall")
    return "\n".join(
        str(core.read_namespaced_pod_log(p.metadata.name, NAMESPACE)) for p in pods.items
    )


def _gone(w: World, name: str) -> bool:
    try:
        agents.get_session(w.admin, w.ns, name)
    except client.ApiException as e:
        return e.status == 404
    return False
