"""Run the real operator (``agent-authority run``) as a child process against the local cluster."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import IO

from kubernetes import client, config

from agent_authority.cli import dev
from agent_authority.localcluster import cluster


class OperatorProcess:
    """The operator under test: start, SIGKILL, restart; its log is kept for failure reports."""

    def __init__(self, local: cluster.LocalCluster, env: dev.OperatorEnv, log: pathlib.Path):
        self.local = local
        self.env = env
        self.log_path = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    def start(self, timeout: float = 30, failpoints: str = "") -> None:
        """Start; ``failpoints`` (see agent_authority.failpoints) make it kill itself there."""
        self._log = self.log_path.open("ab")
        self._log_offset = self.log_path.stat().st_size
        environ = {**os.environ, "KUBECONFIG": str(self.env.kubeconfig)}
        environ["AGENT_AUTHORITY_FAILPOINTS"] = failpoints
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agent_authority.cli.main", *self.env.run_args()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environ,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready when the webhook configurations point at this process and it answers them."""
        admin = config.new_client_from_config(config_file=str(self.local.kubeconfig))
        api = client.AdmissionregistrationV1Api(admin)
        deadline = time.monotonic() + timeout
        marker = "webhook configurations agentauthority.io applied"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self._proc.returncode}:\n{self.tail()}")
            try:
                api.read_mutating_webhook_configuration("agentauthority.io")
                with self.log_path.open("rb") as log:
                    log.seek(self._log_offset)
                    written = log.read().decode(errors="replace")
                if marker in written:
                    time.sleep(0.3)
                    return
            except client.ApiException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"operator not ready within {timeout} s:\n{self.tail()}")

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit by itself (e.g. killed at a failpoint)."""
        assert self._proc is not None
        code = self._proc.wait(timeout=timeout)
        self._close()
        return code

    def kill(self) -> None:
        """SIGKILL: no clean-up handlers run (as a crash or an OOM kill)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
        self._close()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its connections but runs no code until :meth:`resume`."""
        assert self._proc is not None
        assert self._proc.poll() is None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
