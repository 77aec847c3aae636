"""``agent-authority dev --node``: up on a real node, the README's first steps against the
in-cluster operator (through the gateway Service from the host), and Ctrl-C leaves nothing.

The command runs as a user would start it (a child process, its stdout the shell lines to
paste); the test reads the environment it prints and acts as the agent with the CLI and kubectl.
"""

from __future__ import annotations

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO

import pytest
import yaml

from agent_authority.cli import devnode
from agent_authority.localcluster import cluster, node
from tests.e2e import agents

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAME = "dev-node-test"
# Cold, the image build and the node's first start take minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(2400)


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


def _env_from(
    lines: queue.Queue[str], proc: subprocess.Popen[str], timeout: float
) -> dict[str, str]:
    """The ``export`` lines ``dev --node`` prints once everything is up."""
    env: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while "BOB_KUBECONFIG" not in env:
        if proc.poll() is not None:
            pytest.fail(f"dev --node exited with {proc.returncode} before it was up", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("dev --node printed no environment in time", pytrace=False)
        try:
            line = lines.get(timeout=5)
        except queue.Empty:
            continue
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT / "operator")},
    )


def _kubectl(
    env: dict[str, str], kubeconfig: pathlib.Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_dev_node_comes_up_serves_a_session_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("dev --node needs root; run the node tests as root", pytrace=False)
    assert node.leftovers() == [], "the host was not clean before the test"
    stderr = (tmp_path / "dev-node.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_authority.cli.main", "dev", "--node", "--name", NAME],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        started = time.monotonic()
        env = _env_from(lines, proc, timeout=2000)
        print(f"\n[node] dev --node up in {time.monotonic() - started:.1f} s")
        env_file = cluster.run_root() / NAME / "env.sh"
        assert env_file.read_text().count("export ") == 5, "env.sh differs from what was printed"

        session = tmp_path / "session.kubeconfig"
        opened = _cli(
            env,
            *("session", "open", "--grant", "sre-bot", "--incident-id", "INC-4711"),
            *("--severity", "SEV2", "--class", "latency", "--name", "inc-4711-triage"),
            *("-n", "agents", "--kubeconfig", env["AGENT_KUBECONFIG"]),
            *("--write-kubeconfig", str(session)),
        )
        assert opened.returncode == 0, opened.stderr
        # The chart's default mode: the session reaches the apiserver only through the
        # operator's gateway Service (from the host: kube-proxy's rules), trusted with its CA.
        (entry,) = yaml.safe_load(session.read_text())["clusters"]
        gateway = f"https://{devnode.SERVICE_ADDRESS}:{devnode.GATEWAY_PORT}"
        assert entry["cluster"]["server"] == gateway
        read = _kubectl(env, session, "-n", "shop", "get", "deployments", "-o", "name")
        assert read.returncode == 0, read.stderr
        assert read.stdout.split() == ["deployment.apps/checkout"]
        # Out of scope: refused by the gateway, and the session is revoked at once.
        refused = _kubectl(env, session, "-n", "shop", "get", "secrets")
        assert refused.returncode != 0
        assert "Forbidden" in refused.stderr, refused.stderr

        def revoked() -> bool | None:
            listed = _cli(env, "session", "list", "-n", "agents", "--kubeconfig", env["KUBECONFIG"])
            return True if "Revoked" in listed.stdout else None

        agents.wait_for(revoked, 60, "the session to be listed Revoked", every=1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            stderr.close()
            proc.stdout.close()
            log = (tmp_path / "dev-node.log").read_text()
            print(f"\n[node] dev --node said (last lines):\n{log[-3000:]}")
    assert code == 0, log[-3000:]
    assert "nothing left behind" in log
    assert node.leftovers() == []
    assert not (cluster.run_root() / NAME).exists(), "the run folder is still there"
