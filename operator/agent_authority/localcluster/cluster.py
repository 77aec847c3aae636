"""Run etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, and stop them cleanly.

Children are started in their own process group. Attached clusters (tests, ``dev``) also ask the
kernel to kill the children when the starting thread dies (``PR_SET_PDEATHSIG``), so an
interrupted or killed test run leaves no stray processes; run folders of dead owners are removed
on the next start. Detached clusters (``up``) record their pids in ``state.json`` for ``down``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
import pathlib
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from agent_authority import certs as pki
from agent_authority.localcluster import assets, authn, kubeconfig, processes

READY_TIMEOUT = 90.0

# Moved to :mod:`processes`; the names stay here for the modules and tests that use them.
ClusterError = processes.ClusterError
STALE_RUN_HOOKS = processes.STALE_RUN_HOOKS
run_root = processes.run_root
reap_stale_runs = processes.reap_stale_runs
stop_detached = processes.stop_detached
die_with_parent = processes.die_with_parent
_die_with_parent = processes.die_with_parent
alive = processes.alive


@dataclasses.dataclass
class Options:
    apiserver_port: int = 0
    """0 picks a free port."""
    etcd_port: int = 0
    audit_url: str = "https://127.0.0.1:9444/audit"
    """Where the apiserver posts audit events (the operator's ``/audit`` endpoint)."""
    controller_manager: bool = True
    detach: bool = False
    name: str | None = None
    """A stable name (``dev``) makes the run folder ``<cache>/run/<name>``; else a temp folder."""
    max_token_expiration: str | None = None
    """``--service-account-max-token-expiration``, e.g. ``1h``; unset keeps the default."""
    bind_address: str = "127.0.0.1"
    """Where the apiserver listens (a node's pods reach it on ``advertise_address``)."""
    advertise_address: str = "127.0.0.1"
    """The ``kubernetes`` Service's endpoint (a node sets its bridge address)."""
    extra_ips: tuple[str, ...] = ()
    """More IP SANs of the apiserver's certificate (the Service IP, the node's bridge)."""
    authorization_modes: str = "RBAC"
    """``--authorization-mode``; a node adds ``Node`` so the kubelet is confined to its pods."""
    node_lifecycle: bool = False
    """Run the node lifecycle controller (it lifts a Ready node's ``not-ready`` taint)."""
    jwt_issuers: tuple[authn.JwtIssuer, ...] = ()
    """OIDC issuers whose id tokens the apiserver accepts (``--authentication-config``); each
    must serve its discovery document and keys while the apiserver runs."""


class LocalCluster:
    """One local control plane. ``start()``, use ``kubeconfig``, ``stop()``."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.binaries: assets.Binaries | None = None
        self.folder: pathlib.Path | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.apiserver_port = 0
        self.etcd_port = 0
        self.startup_seconds = 0.0
        self._starting = False

    # -- paths -------------------------------------------------------------------------------
    def _path(self, *parts: str) -> pathlib.Path:
        if self.folder is None:
            raise ClusterError("the control plane is not started")
        return self.folder.joinpath(*parts)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self._path("admin.kubeconfig")

    @property
    def pki_dir(self) -> pathlib.Path:
        return self._path("pki")

    @property
    def ca_file(self) -> pathlib.Path:
        return self._path("pki", "cluster-ca.crt")

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting the cluster CA and presenting the admin's client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        p = self._path("pki")
        context.load_cert_chain(str(p / "admin.crt"), str(p / "admin.key"))
        return context

    def operator_serving(self) -> pki.KeyPair:
        """The certificate the operator serves webhooks and ``/audit`` with (signed by the CA)."""
        return pki.KeyPair(self._path("pki", "operator.crt"), self._path("pki", "operator.key"))

    def user_kubeconfig(self, username: str, groups: list[str] | None = None) -> pathlib.Path:
        """A kubeconfig authenticating as ``username`` in ``groups`` (a CA-signed client cert)."""
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in username)
        ca = pki.Authority.load(pki.KeyPair(self.ca_file, self._path("pki", "cluster-ca.key")))
        pair = ca.issue(
            self._path("pki"),
            f"user-{safe}",
            common_name=username,
            organizations=groups,
            client=True,
        )
        return kubeconfig.write(
            self._path(f"user-{safe}.kubeconfig"),
            server=self.url,
            ca=self.ca_file,
            user=username,
            client_cert=pair.cert,
            client_key=pair.key,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        started = time.monotonic()
        self.etcd_port = processes.claim(self.options.etcd_port, "etcd")
        self.apiserver_port = processes.claim(self.options.apiserver_port, "kube-apiserver")
        processes.reap_stale_runs()
        self.binaries = assets.find_or_build()
        root = processes.run_root()
        root.mkdir(parents=True, exist_ok=True)
        if self.options.name:
            self.folder = root / self.options.name
            if (self.folder / "state.json").exists():
                raise ClusterError(
                    f"a control plane named {self.options.name!r} is already running "
                    f"(state in {self.folder}); run `down` first"
                )
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir()
        else:
            self.folder = pathlib.Path(tempfile.mkdtemp(prefix="cp-", dir=root))
        self._starting = True  # owned by this process until started, even when detached
        try:
            self._write_state()
            self._prepare()
            self._spawn("etcd", self._etcd_args())
            self._wait_etcd()
            self._spawn("kube-apiserver", self._apiserver_args())
            self._wait_apiserver()
            if self.options.controller_manager:
                self._spawn("kube-controller-manager", self._controller_manager_args())
            self._starting = False
            self._write_state()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every child (TERM, then KILL after 10 s) and remove the run folder."""
        for name in reversed(list(self._procs)):
            processes.terminate(self._procs[name])
        self._procs.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only (etcd and the controller manager keep running): an outage."""
        proc = self._procs.pop("kube-apiserver", None)
        if proc is None:
            raise ClusterError("kube-apiserver is not running")
        processes.terminate(proc)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again (same port, certificates and etcd data), wait for it, and
        restart the controller manager."""
        if "kube-apiserver" in self._procs:
            raise ClusterError("kube-apiserver is already running")
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait_apiserver()
        # The controller manager's informers back off for most of a minute after losing the
        # apiserver; a fresh one resumes at once, so later work (and tests) need not wait for it.
        manager = self._procs.pop("kube-controller-manager", None)
        if manager is not None:
            processes.terminate(manager)
            self._spawn("kube-controller-manager", self._controller_manager_args())
        self._write_state()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        return {
            "owner": 0 if self.options.detach and not self._starting else os.getpid(),
            "pids": [p.pid for p in self._procs.values()],
            "url": self.url,
            "kubeconfig": str(self.kubeconfig),
            "folder": str(self.folder),
            "auditUrl": self.options.audit_url,
        }

    def _write_state(self) -> None:
        self._path("state.json").write_text(json.dumps(self.state(), indent=2))

    # -- internals ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        pki_dir = self._path("pki")
        pki_dir.mkdir()
        ca = pki.Authority.create(pki_dir, "cluster")
        ca.issue(
            pki_dir,
            "apiserver",
            common_name="kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=["127.0.0.1", *self.options.extra_ips],
            server=True,
        )
        admin = ca.issue(
            pki_dir, "admin", common_name="admin", organizations=["system:masters"], client=True
        )
        ca.issue(
            pki_dir,
            "operator",
            common_name="agent-authority-webhook",
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
            server=True,
        )
        ca.issue(  # how the apiserver authenticates to a node's kubelet (logs, exec)
            pki_dir, "kubelet-client", common_name="kube-apiserver-kubelet-client", client=True
        )
        audit_client = ca.issue(
            pki_dir, "audit-client", common_name="system:kube-apiserver-audit", client=True
        )
        pki.service_account_keys(pki_dir)
        kubeconfig.write(
            self.kubeconfig,
            server=self.url,
            ca=ca.files.cert,
            user="admin",
            client_cert=admin.cert,
            client_key=admin.key,
        )
        kubeconfig.write(
            self._path("audit-webhook.kubeconfig"),
            server=self.options.audit_url,
            ca=ca.files.cert,
            user="kube-apiserver-audit",
            client_cert=audit_client.cert,
            client_key=audit_client.key,
        )
        policy = importlib.resources.files("agent_authority.localcluster") / "audit-policy.yaml"
        self._path("audit-policy.yaml").write_text(policy.read_text())
        if self.options.jwt_issuers:
            document = authn.configuration(self.options.jwt_issuers)
            self._path("authentication-config.yaml").write_text(json.dumps(document, indent=2))

    def _etcd_args(self) -> list[str]:
        assert self.binaries is not None
        peer = f"http://127.0.0.1:{processes.free_port()}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        return [
            str(self.binaries.etcd),
            f"--data-dir={self._path('etcd')}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--name=default",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        assert self.binaries is not None
        p = self._path("pki")
        args = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--bind-address={self.options.bind_address}",
            f"--advertise-address={self.options.advertise_address}",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'cluster-ca.crt'}",
            f"--authorization-mode={self.options.authorization_modes}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--audit-policy-file={self._path('audit-policy.yaml')}",
            f"--audit-webhook-config-file={self._path('audit-webhook.kubeconfig')}",
            "--audit-webhook-batch-max-wait=1s",
            "--audit-webhook-initial-backoff=3s",  # retry window ~24 s (docs/operations.md)
            "--profiling=false",
            f"--cert-dir={self._path('apiserver-certs')}",
            f"--kubelet-client-certificate={p / 'kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]
        if self.options.jwt_issuers:
            args.append(f"--authentication-config={self._path('authentication-config.yaml')}")
        if self.options.max_token_expiration:
            args.append(
                f"--service-account-max-token-expiration={self.options.max_token_expiration}"
            )
        return args

    def _controller_manager_args(self) -> list[str]:
        assert self.binaries is not None
        p = self._path("pki")
        return [
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'cluster-ca.crt'}",
            "--controllers=*,-bootstrapsigner,-tokencleaner,-nodeipam"
            + ("" if self.options.node_lifecycle else ",-nodelifecycle"),
        ]

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self._path(f"{name}.log").open("wb")
        try:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=None if self.options.detach else processes.die_with_parent,
            )
        finally:
            log.close()
        self._procs[name] = proc

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            tail = self._path(f"{name}.log").read_text(errors="replace").splitlines()[-25:]
            raise ClusterError(
                f"{name} exited with code {proc.returncode} during start-up; last log lines:\n"
                + "\n".join(tail)
            )

    def _wait_etcd(self) -> None:
        url = f"http://127.0.0.1:{self.etcd_port}/health"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive("etcd")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if b'"health":"true"' in resp.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"etcd did not become healthy within {READY_TIMEOUT:.0f} s")

    def _wait_apiserver(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        p = self._path("pki")
        context.load_cert_chain(str(p / "admin.crt"), str(p / "admin.key"))
        deadline = time.monotonic() + READY_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("kube-apiserver")
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own https URL
                    f"{self.url}/readyz", timeout=2, context=context
                ) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as e:
                last = e.read().decode(errors="replace")[-500:]
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        raise ClusterError(f"kube-apiserver not ready within {READY_TIMEOUT:.0f} s: {last}")
