"""``agent-authority dev`` as a person uses it: ports, printed identities, the kept audit trail."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

from agent_authority.localcluster import cluster

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_taken_metrics_port_is_refused_before_anything_starts() -> None:
    name = f"dev-port-{uuid.uuid4().hex[:6]}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = _cli("dev", "--name", name, "--metrics-port", str(port), timeout=60)
        elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 (--metrics-port) is taken, perhaps by another "
        f"`agent-authority dev`; stop it or pass --metrics-port with a free port"
    ]
    assert not (cluster.run_root() / name).exists(), "a control plane was prepared anyway"
    assert elapsed < 20, f"took {elapsed:.1f} s: something was built or started first"


def test_dev_prints_approvers_and_metrics_and_keeps_the_audit_trail_after_ctrl_c() -> None:
    name = f"dev-tour-{uuid.uuid4().hex[:6]}"
    metrics_port = _free_port()
    args = [
        "dev",
        "--name",
        name,
        "--metrics-port",
        str(metrics_port),
        "--webhook-port",
        str(_free_port()),
        "--audit-port",
        str(_free_port()),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_authority.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    trail: pathlib.Path | None = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("export BOB_KUBECONFIG="):
                break
            assert time.monotonic() < deadline, "".join(lines[-30:])
        text = "".join(lines)
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in text
        assert "approver kubeconfig (alice, group oncall-sre)" in text
        assert "approver kubeconfig (bob, group oncall-sre)" in text
        found = re.search(r"audit trail \(kept after Ctrl-C\): (\S+)", text)
        assert found, text
        trail = pathlib.Path(found.group(1))
        env = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert pathlib.Path(sys.executable).parent.as_posix() in env["PATH"]
        for who in ("ALICE", "BOB"):
            # RBAC applied: each approver may list requests and holds `approve` on the grant.
            listed = _cli("requests", "-n", "agents", "--kubeconfig", env[f"{who}_KUBECONFIG"])
            assert listed.returncode == 0, listed.stderr
            assert "No remediation requests awaiting approval" in listed.stderr
            can = subprocess.run(
                ["kubectl", "auth", "can-i", "approve", "agentgrants.agentauthority.io/sre-bot"],
                env={**os.environ, "KUBECONFIG": env[f"{who}_KUBECONFIG"]},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert can.stdout.strip() == "yes", can.stdout + can.stderr
        # The operator's first records (the grant compiled) are written soon after start-up;
        # wait for them (a busy machine takes longer than a fixed pause), then stop it.
        written = time.monotonic() + 120
        while not (trail.exists() and trail.stat().st_size > 0):
            assert time.monotonic() < written, "the operator wrote no audit record in 120 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest)
        assert proc.returncode == 0, "".join(lines[-30:])
        assert f"the audit trail is kept in {trail}" in rest
        assert not (cluster.run_root() / name).exists()
        assert trail.exists(), "the audit trail went with Ctrl-C"
        assert trail.stat().st_size > 0
        verified = _cli("audit", "verify", str(trail), "--public-key", f"{trail}.key.pub")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if trail is not None:
            for leftover in trail.parent.glob(f"{trail.name}*"):
                leftover.unlink()
