"""A real Alertmanager for tests and ``dev``: built once from its Go module, run on 127.0.0.1.

Lookup order: ``TEST_ASSET_ALERTMANAGER`` (an executable), else the cache (``assets.cache_dir()``),
building ``github.com/prometheus/alertmanager`` at ``ALERTMANAGER_VERSION`` into it under
``nice -n 10`` when missing. The version is pinned to the last release whose module builds without
a JavaScript toolchain: from v0.32 the web UI is ``go:embed``-ed from ``ui/app/dist``, which the
published module does not contain.

``Alertmanager`` runs the binary with a config whose only receiver is a webhook (the operator's
``/alertmanager`` endpoint), clustering off, and short group timers, so a resolved alert is
notified within seconds.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import yaml

from agent_authority.localcluster import assets, cluster

ALERTMANAGER_VERSION = "v0.31.1"
ALERTMANAGER_MODULE = "github.com/prometheus/alertmanager"
READY_TIMEOUT = 60.0


def _nice_go(args: list[str], cwd: pathlib.Path) -> None:
    result = subprocess.run(
        ["nice", "-n", "10", assets._go(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
        raise assets.AssetError(f"building alertmanager failed: go {' '.join(args)}:\n{tail}")


def binary(version: str = ALERTMANAGER_VERSION) -> pathlib.Path:
    """The alertmanager executable: ``TEST_ASSET_ALERTMANAGER``, the cache, or a fresh build."""
    explicit = os.environ.get("TEST_ASSET_ALERTMANAGER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise assets.AssetError(f"TEST_ASSET_ALERTMANAGER={explicit} is not an executable file")
        return pathlib.Path(explicit)
    target = assets.cache_dir() / "bin" / f"alertmanager-{version}" / "alertmanager"
    if target.exists():
        return target
    with assets._locked(assets.cache_dir() / "locks" / f"alertmanager-{version}.lock"):
        if target.exists():
            return target
        src = assets.cache_dir() / "src" / f"alertmanager-{version}"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(
            "module agentauthority.local/alertmanager\n\ngo 1.26.0\n\n"
            f"require {ALERTMANAGER_MODULE} {version}\n\n"
            f"tool {ALERTMANAGER_MODULE}/cmd/alertmanager\n"
        )
        started = time.monotonic()
        print(
            f"[alertmanager] building {version} from its Go module (first time only; minutes) ...",
            flush=True,
        )
        _nice_go(["mod", "tidy"], src)
        partial = target.parent.with_name(f".alertmanager-{version}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _nice_go(
            [
                "build",
                "-ldflags",
                "-s -w",
                "-o",
                f"{partial}/",
                f"{ALERTMANAGER_MODULE}/cmd/alertmanager",
            ],
            src,
        )
        shutil.rmtree(target.parent, ignore_errors=True)
        partial.rename(target.parent)
        print(f"[alertmanager] built in {time.monotonic() - started:.0f} s", flush=True)
    return target


def config(webhook_url: str, ca_file: str | None = None) -> str:
    """An Alertmanager config that notifies ``webhook_url`` of every alert, resolved ones too
    (over TLS verified with ``ca_file`` when given)."""
    tls: dict[str, object] = {"ca_file": ca_file} if ca_file else {"insecure_skip_verify": True}
    document = {
        "route": {
            "receiver": "agent-authority",
            "group_by": ["alertname", "incident"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "agent-authority",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"tls_config": tls},
                    }
                ],
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Alertmanager:
    """One Alertmanager process on 127.0.0.1 (``url`` is its base URL; API v2 under ``/api/v2``)."""

    def __init__(
        self,
        webhook_url: str,
        port: int = 0,
        ca_file: str | None = None,
        serving: tuple[str, str] | None = None,
    ) -> None:
        """``ca_file`` verifies the webhook receiver; ``serving`` (certificate, key) makes the
        API itself HTTPS."""
        self.port = port or _free_port()
        self.url = f"{'https' if serving else 'http'}://127.0.0.1:{self.port}"
        self.webhook_url = webhook_url
        self.ca_file = ca_file
        self.serving = serving
        self._folder = pathlib.Path(tempfile.mkdtemp(prefix="agent-authority-alertmanager-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = binary()
        config_file = self._folder / "alertmanager.yml"
        config_file.write_text(config(self.webhook_url, self.ca_file))
        web: list[str] = []
        if self.serving:
            web_file = self._folder / "web.yml"
            cert, key = self.serving
            web_file.write_text(
                yaml.safe_dump({"tls_server_config": {"cert_file": cert, "key_file": key}})
            )
            web = [f"--web.config.file={web_file}"]
        with (self._folder / "alertmanager.log").open("wb") as log:  # the child keeps its copy
            self._process = subprocess.Popen(
                [
                    str(executable),
                    f"--config.file={config_file}",
                    f"--storage.path={self._folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=info",
                    *web,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=cluster._die_with_parent,  # no stray Alertmanager after a crash
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise assets.AssetError(
                    f"alertmanager exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(  # noqa: S310 - 127.0.0.1
                    f"{self.url}/-/ready", timeout=2, context=self._client_tls()
                ) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise assets.AssetError(
            f"alertmanager not ready in {READY_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def _client_tls(self) -> ssl.SSLContext | None:
        """Readiness checks trust the configured CA (the serving certificate's issuer)."""
        if not self.serving:
            return None
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None

    def log_tail(self, lines: int = 30) -> str:
        path = self._folder / "alertmanager.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self._folder, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - `python -m ...alertmanager` builds it
    print(binary())
