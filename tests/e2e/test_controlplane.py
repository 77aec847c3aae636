"""The local control plane and ``agent-authority dev`` start and stop without leaving anything."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

from agent_authority.localcluster import cluster

CHILD = """
import json, time
from agent_authority.localcluster import cluster
local = cluster.LocalCluster().start()
print(json.dumps({"folder": str(local.folder), "pids": local.state()["pids"]}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _wait_dead(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_stop_leaves_no_process_and_no_folder() -> None:
    local = cluster.LocalCluster().start()
    pids, folder = local.state()["pids"], local.folder
    assert folder is not None
    assert folder.exists()
    assert len(pids) == 3  # etcd, kube-apiserver, kube-controller-manager
    local.stop()
    assert _wait_dead(pids, 5) == []
    assert not folder.exists()


def test_killed_owner_takes_its_control_plane_along() -> None:
    """SIGKILL of the test process: children die with it, the next start removes its folder."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        pids, folder = started["pids"], pathlib.Path(started["folder"])
        assert all(_alive(p) for p in pids)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert _wait_dead(pids, 10) == [], "control-plane processes outlived their killed owner"
    assert folder.exists()  # nobody could clean up: the owner was killed
    cluster.reap_stale_runs()
    assert not folder.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dev_runs_the_operator_with_metrics_and_json_logs() -> None:
    metrics_port = _free_port()
    name = f"dev-test-{uuid.uuid4().hex[:6]}"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            "dev",
            "--name",
            name,
            "--exit-after",
            "12",
            "--metrics-port",
            str(metrics_port),
            "--webhook-port",
            str(_free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as dev:
        assert dev.stdout is not None
        lines: list[str] = []
        metrics = ""
        for line in dev.stdout:
            lines.append(line)
            if "Handler 'compiled' succeeded" in line and not metrics:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{metrics_port}/metrics", timeout=5
                ) as resp:
                    metrics = resp.read().decode()
        assert dev.wait(timeout=60) == 0, "".join(lines[-30:])
    text = "".join(lines)
    assert "CRDs and the operator's ClusterRole installed" in text
    assert "applied AgentGrant/sre-bot" in text
    json_lines = [json.loads(x) for x in lines if x.startswith("{")]
    assert any(x.get("object", {}).get("name") == "sre-bot" for x in json_lines)
    assert "agent_authority_tokens_minted_total" in metrics
    assert not (cluster.run_root() / name).exists()
