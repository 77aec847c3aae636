"""``agent-authority dev --node``: up on a real node, the README's tour as pasted against the
in-cluster operator (sessions through the gateway Service from the host), Ctrl-C leaves nothing.

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
from tests.e2e import test_readme as readme

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


def _run_the_readme_tour(env_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Every command of the README's tour, as pasted (only the env.sh path differs), with the
    outputs ``tests/e2e/test_readme.py`` checks, against the in-cluster operator."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    seen: list[str] = []
    for raw in readme.tour_commands((ROOT / "README.md").read_text()):
        command = raw.replace(readme.ENV_SH, str(env_file), 1)
        want, patience = next(
            ((w, t) for piece, w, t in readme.EXPECTED if piece in command), ("", 0)
        )
        deadline = time.monotonic() + patience
        while True:
            done = readme._run(command, env_file, work)
            output = done.stdout + done.stderr
            if readme.FORBIDDEN in command:
                ok = done.returncode != 0 and "Forbidden" in output
            else:
                ok = done.returncode == 0 and want in output
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert ok, f"tour command failed: {raw}\nexit {done.returncode}\n{output}\n(after {seen})"
        seen.append(raw.split("#")[0].strip()[:60])


def test_dev_node_comes_up_runs_the_readme_tour_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
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
        written = env_file.read_text()
        assert written.count("export ") == len(env) == 5, "env.sh differs from what was printed"
        assert all(f"export {key}=" in written for key in env)

        _run_the_readme_tour(env_file, tmp_path)
        # The chart's default mode: the session reached the apiserver only through the
        # operator's gateway Service (from the host: kube-proxy's rules), trusted with its CA.
        (entry,) = yaml.safe_load((tmp_path / "work" / "session.kubeconfig").read_text())[
            "clusters"
        ]
        gateway = f"https://{devnode.SERVICE_ADDRESS}:{devnode.GATEWAY_PORT}"
        assert entry["cluster"]["server"] == gateway
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
