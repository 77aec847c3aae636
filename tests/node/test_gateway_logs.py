"""`kubectl logs -f` through the session gateway on the real node: cut off when the session ends.

The kubelet serves pod logs, so only a real node can show it: a pod prints a line every 200 ms
(``ticker``, a few lines of Go built here into an OCI archive, like the pause image), the agent
opens a gateway-mode session, follows the pod's log with real ``kubectl`` and that session's
kubeconfig, then ends the session. The gateway must close the followed log (``kubectl`` exits)
and refuse the next request with 401.

The operator runs as a host process against the node's control plane (the gateway reaches the
kubelet through the apiserver's ``pods/log`` proxy), so this module needs no operator image.
Always run under ``flock /tmp/aa-node.lock`` (one node per host).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.localcluster import assets, cluster, node, nodeimages
from agent_authority.models import GROUP
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
AGENT, AGENT_GROUP = "agent-lena", "gateway-log-agents"
TICKER_VERSION = "1"
TICKER_IMAGE = f"localhost/agent-authority/ticker:{TICKER_VERSION}"
_TICKER_SOURCE = """\
// Prints a numbered line every 200 ms until it is stopped: a pod log that never ends.
package main

import (
\t"fmt"
\t"time"
)

func main() {
\tfor i := 0; ; i++ {
\t\tfmt.Printf("tick %d\\n", i)
\t\ttime.Sleep(200 * time.Millisecond)
\t}
}
"""


def ticker_archive() -> pathlib.Path:
    """The OCI archive of :data:`TICKER_IMAGE`, built once into the image cache."""
    return nodeimages.go_program_archive("ticker", TICKER_VERSION, TICKER_IMAGE, _TICKER_SOURCE)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    agent: Any
    agent_kubeconfig: pathlib.Path
    ns: str
    shop: str
    grant: str
    pod: str
    tmp: pathlib.Path


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.fail(
            "the node tests need root (containerd, mounts, network namespaces, iptables); "
            "run them as root on a throwaway machine or CI",
            pytrace=False,
        )
    _kubectl_path()
    subprocess.run([str(ROOT / "hack" / "node-deps")], check=True, timeout=900)
    try:
        ticker = ticker_archive()
    except assets.AssetError as e:
        pytest.fail(f"the ticker image could not be built: {e}", pytrace=False)
    local = cluster.LocalCluster(node.cluster_options())
    worker: node.LocalNode | None = None
    operator: OperatorProcess | None = None
    with tempfile.TemporaryDirectory(prefix="gateway-logs-") as tmp_dir:
        tmp = pathlib.Path(tmp_dir)
        try:
            try:
                local.start()
                worker = node.LocalNode(local, images=[ticker]).start()
            except (assets.AssetError, cluster.ClusterError, node.NodeError) as e:
                pytest.fail(f"the single-node cluster could not be started:\n{e}", pytrace=False)
            env = dev.prepare(
                local,
                metrics_port=_port(),
                webhook_port=_port(),
                audit_port=_port(),
                gateway_port=_port(),
            )
            env.options.alert_port = _port()  # not the default port: other operators run here
            operator = OperatorProcess(local, env, tmp / "operator.log")
            try:
                operator.start(timeout=120)
            except RuntimeError as e:
                pytest.fail(f"the operator could not start: {e}", pytrace=False)
            yield _setup(local, tmp)
        finally:
            if operator is not None:
                operator.stop()
            if worker is not None:
                worker.stop()
            local.stop()


def _setup(local: cluster.LocalCluster, tmp: pathlib.Path) -> World:
    admin = agents.as_user(local, "gateway-logs-admin", ["system:masters"])
    ns, shop = agents.unique("glogs"), agents.unique("glshop")
    core = client.CoreV1Api(admin)
    for name in (ns, shop):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local, ns)
    agents.allow_scopes_in(local, shop)
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "open-sessions"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["incidentsessions"],
                    "verbs": ["create", "get", "patch"],
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
    grant = agents.unique("glgrant")
    agents.create_grant(
        admin,
        grant,
        {
            "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
            "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
            "read": [
                {
                    "name": "logs",
                    "namespaces": [shop],
                    "resources": ["pods", "pods/log"],
                    "verbs": ["get", "list"],
                }
            ],
            "session": {"maxTtlSeconds": 900, "accessMode": "gateway"},
        },
    )
    pod = "ticker"
    core.create_namespaced_pod(
        shop,
        {
            "metadata": {"name": pod},
            "spec": {
                "containers": [
                    {"name": "ticker", "image": TICKER_IMAGE, "imagePullPolicy": "Never"}
                ],
                "terminationGracePeriodSeconds": 1,
            },
        },
    )

    def running() -> bool | None:
        phase = core.read_namespaced_pod(pod, shop).status.phase
        return True if phase == "Running" else None

    agents.wait_for(running, 180, f"pod {shop}/{pod} Running on the node")
    return World(
        local,
        admin,
        agents.as_user(local, AGENT, [AGENT_GROUP]),
        local.user_kubeconfig(AGENT, [AGENT_GROUP]),
        ns,
        shop,
        grant,
        pod,
        tmp,
    )


def _kubectl_path() -> str:
    """The real kubectl, or a clear failure naming what is missing."""
    return KUBECTL or pytest.fail(
        "kubectl is not on PATH: this test needs the real kubectl", pytrace=False
    )


def _kubectl(w: World, kubeconfig: pathlib.Path, *args: str) -> list[str]:
    return [
        _kubectl_path(),
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(w.tmp / "kcache"),
        *args,
    ]


def _lines(stream: Any, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def test_a_followed_log_is_closed_when_the_session_ends(world: World) -> None:
    w = world
    name = agents.unique("gl")
    agents.open_session(w.agent, w.ns, agents.session_body(name, w.grant))
    body = agents.wait_phase(w.admin, w.ns, name, {"Active", "Denied"}, timeout=60)
    assert body["status"]["phase"] == "Active", body["status"]
    assert body["status"]["accessMode"] == "gateway"
    kubeconfig = w.tmp / f"{name}.kubeconfig"
    written = subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", "session", "kubeconfig", name,
         "-n", w.ns, "--kubeconfig", str(w.agent_kubeconfig), "--write-kubeconfig",
         str(kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert w.local.url not in kubeconfig.read_text(), "the kubeconfig must point at the gateway"
    env = {**os.environ, "HOME": str(w.tmp)}

    with subprocess.Popen(
        _kubectl(w, kubeconfig, "logs", "-f", w.pod, "-n", w.shop),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as follow:
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(follow.stdout, lines), daemon=True).start()
        try:
            seen = [lines.get(timeout=60) for _ in range(3)]
            assert all(line and line.startswith("tick ") for line in seen), seen
            assert follow.poll() is None, "kubectl logs -f must still be following"

            ended = time.monotonic()
            agents.end_session(w.agent, w.ns, name)
            exit_code = follow.wait(timeout=30)
            took = time.monotonic() - ended
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait(timeout=10)
        stderr = follow.stderr.read() if follow.stderr else ""
    # Cut, not completed: kubectl must not take it for a container that stopped logging.
    assert exit_code != 0, f"kubectl took the cut log for a complete one: {stderr}"
    after = subprocess.run(
        _kubectl(w, kubeconfig, "get", "pods", "-n", w.shop),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert after.returncode != 0, after.stdout
    assert "Unauthorized" in after.stderr or "must be logged in" in after.stderr, after.stderr
    agents.wait_phase(w.admin, w.ns, name, {"Ended"}, timeout=60)
    print(
        f"\n[gateway] kubectl logs -f exited {took * 1000:.0f} ms after session end "
        f"(exit {exit_code}; {stderr.strip()[:200] or 'no error output'}); next request: "
        f"{after.stderr.strip()[:120]}"
    )
