"""A real single-node cluster without Docker: the local control plane plus one worker node.

The node is containerd v2 (CRI, overlayfs, runc), a kubelet registered with a client certificate
from the local CA (so the Node authorizer confines it), kube-proxy in iptables mode (pods reach the
``kubernetes`` Service, the apiserver reaches webhook Services through the host's NAT rules), a
kube-scheduler, and the CNI ``bridge``/``host-local``/``portmap`` plugins on a bridge of our own.
Images come from local OCI archives (no registry); the sandbox (pause) image is built here.

Everything the node creates lives in ``<run folder>/node`` or carries the names
:mod:`nodeteardown` knows, so it can remove it all (on ``stop()``, ``hack/cluster down`` and for
the run folders of killed test runs). Needs root (it is meant for throwaway machines and CI).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from agent_authority.localcluster import cluster, nodeassets, nodeimages, nodeteardown

NODE_NAME = "agent-authority-node"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
SERVICE_IP = "10.0.0.1"
READY_TIMEOUT = 180.0
KUBELET_HEALTHZ = 10248
# What the rest of the world uses of the teardown module, under the node's name.
BRIDGE = nodeteardown.BRIDGE
NodeError = nodeteardown.NodeError
Layout = nodeteardown.Layout
teardown = nodeteardown.teardown
leftovers = nodeteardown.leftovers


def cluster_options(**overrides: Any) -> cluster.Options:
    """Control-plane options for a node: reachable from pods, Node authorizer on."""
    return cluster.Options(
        bind_address="0.0.0.0",  # noqa: S104 - pods reach it on the bridge address
        advertise_address=GATEWAY,
        extra_ips=(GATEWAY, SERVICE_IP),
        authorization_modes="Node,RBAC",
        node_lifecycle=True,
        **overrides,
    )


class LocalNode:
    """One worker node attached to a started :class:`cluster.LocalCluster`."""

    def __init__(self, local: cluster.LocalCluster, images: list[pathlib.Path] | None = None):
        self.local = local
        self.images = list(images or [])
        self.binaries: nodeassets.NodeBinaries | None = None
        self.layout = Layout(local.folder / "node") if local.folder else Layout(pathlib.Path())
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.startup_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalNode:
        started = time.monotonic()
        if os.geteuid() != 0:
            raise nodeteardown.NodeError(
                "a node needs root (containerd, mounts, network namespaces, iptables)"
            )
        if self.local.folder is None:
            raise nodeteardown.NodeError("start the control plane before the node")
        self.layout = Layout(self.local.folder / "node")
        self.binaries = nodeassets.find_or_build()
        if nodeteardown.link_exists(BRIDGE):
            raise nodeteardown.NodeError(
                f"bridge {BRIDGE} exists: another node is running on this host "
                "(`hack/cluster down`, or wait for the other test run)"
            )
        pause = nodeimages.pause_archive()
        self.layout.folder.mkdir(parents=True)
        try:
            self._write_state()
            self._network()
            self._write_configs()
            self._bind_apiserver_to_kubelet()
            self._spawn("containerd", self._containerd_args(), env=self._containerd_env())
            self._wait_containerd()
            for archive in [pause, *self.images]:
                self.import_image(archive)
            self._spawn("kubelet", self._kubelet_args())
            self._spawn("kube-proxy", self._proxy_args())
            self._spawn("kube-scheduler", self._scheduler_args())
            self._write_state()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Tear everything down (pods, daemons, mounts, network); safe to call twice."""
        if not self.layout.folder.name:
            return
        procs = dict(self._procs)
        self._procs.clear()
        nodeteardown.teardown(self.layout.folder, procs=procs)

    def import_image(self, archive: pathlib.Path) -> None:
        """Import an OCI archive into containerd's ``k8s.io`` namespace (the kubelet's)."""
        assert self.binaries is not None
        if not archive.exists():
            raise nodeteardown.NodeError(f"image archive {archive} does not exist (build it first)")
        nodeteardown.run(
            [
                str(self.binaries.ctr),
                f"--address={self.layout.socket}",
                "--namespace=k8s.io",
                "images",
                "import",
                "--local",
                str(archive),
            ],
            timeout=300,
        )

    # -- configuration -----------------------------------------------------------------------
    def _path(self, *parts: str) -> pathlib.Path:
        return self.layout.folder.joinpath(*parts)

    def _write_state(self) -> None:
        state = {
            "pids": {name: p.pid for name, p in self._procs.items()},
            "ipForward": nodeteardown.read(pathlib.Path("/proc/sys/net/ipv4/ip_forward")),
        }
        if self.layout.state_file.exists():
            state["ipForward"] = json.loads(self.layout.state_file.read_text())["ipForward"]
        self.layout.state_file.write_text(json.dumps(state))

    def _network(self) -> None:
        nodeteardown.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        nodeteardown.run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE])
        nodeteardown.run(["ip", "link", "set", BRIDGE, "up"])
        pathlib.Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")

    def _write_configs(self) -> None:
        assert self.binaries is not None
        for sub in ("cni/net.d", "cni/ipam", "kubelet", "logs", "manifests", "runc"):
            self._path(*sub.split("/")).mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "agent-authority",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self._path("cni", "ipam")),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        self._path("cni", "net.d", "10-agent-authority.conflist").write_text(json.dumps(conflist))
        self._path("containerd.toml").write_text(self._containerd_config())
        ca = self.local.ca_file
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "address": GATEWAY,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": KUBELET_HEALTHZ,
            # As on real nodes: callers authenticated by the CA or a token, each call authorized
            # by the apiserver (a SubjectAccessReview), never "anyone with a certificate".
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.layout.socket}",
            "podLogsDir": str(self._path("logs")),
            "staticPodPath": str(self._path("manifests")),
            "clusterDomain": "cluster.local",
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "localStorageCapacityIsolation": False,
            "resolvConf": "/etc/resolv.conf",
            "maxPods": 50,
        }
        self._path("kubelet.yaml").write_text(json.dumps(kubelet_config))
        self.local.user_kubeconfig(f"system:node:{NODE_NAME}", ["system:nodes"]).rename(
            self._path("kubelet.kubeconfig")
        )
        self.local.user_kubeconfig("system:kube-proxy").rename(self._path("proxy.kubeconfig"))
        self.local.user_kubeconfig("system:kube-scheduler").rename(
            self._path("scheduler.kubeconfig")
        )

    def _containerd_config(self) -> str:
        assert self.binaries is not None
        runtime = "plugins.'io.containerd.cri.v1.runtime'"
        runc = f"{runtime}.containerd.runtimes.runc"
        return "\n".join(
            [
                "version = 3",
                f"root = '{self._path('containerd', 'root')}'",
                f"state = '{self._path('containerd', 'state')}'",
                "disabled_plugins = ['io.containerd.nri.v1.nri', "
                "'io.containerd.internal.v1.tracing', 'io.containerd.tracing.processor.v1.otlp']",
                "[grpc]",
                f"  address = '{self.layout.socket}'",
                "[ttrpc]",
                f"  address = '{self.layout.socket}.ttrpc'",
                "[debug]",
                "  level = 'warn'",
                f"[{runtime}]",
                "  restrict_oom_score_adj = true",
                "  netns_mounts_under_state_dir = true",
                "  enable_selinux = false",
                f"[{runtime}.containerd]",
                "  default_runtime_name = 'runc'",
                f"[{runc}]",
                "  runtime_type = 'io.containerd.runc.v2'",
                f"[{runc}.options]",
                f"  BinaryName = '{self.binaries.runc}'",
                f"  Root = '{self.layout.runc_root}'",
                "  SystemdCgroup = false",
                f"[{runtime}.cni]",
                f"  bin_dirs = ['{self.binaries.cni_dir}']",
                f"  conf_dir = '{self._path('cni', 'net.d')}'",
                "[plugins.'io.containerd.cri.v1.images']",
                "  snapshotter = 'overlayfs'",
                "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
                f"  sandbox = '{nodeimages.PAUSE_IMAGE}'",
                "[plugins.'io.containerd.internal.v1.opt']",
                f"  path = '{self._path('containerd', 'opt')}'",
                "[plugins.'io.containerd.grpc.v1.cri']",
                "  stream_server_address = '127.0.0.1'",
                "  stream_server_port = '0'",
                "",
            ]
        )

    def _containerd_env(self) -> dict[str, str]:
        assert self.binaries is not None
        path = [str(self.binaries.containerd.parent), str(self.binaries.runc.parent)]
        return {**os.environ, "PATH": ":".join([*path, os.environ.get("PATH", "/usr/bin:/bin")])}

    def _containerd_args(self) -> list[str]:
        assert self.binaries is not None
        return [str(self.binaries.containerd), f"--config={self._path('containerd.toml')}"]

    def _kubelet_args(self) -> list[str]:
        assert self.binaries is not None
        return [
            str(self.binaries.kubelet),
            f"--config={self._path('kubelet.yaml')}",
            f"--kubeconfig={self._path('kubelet.kubeconfig')}",
            f"--root-dir={self._path('kubelet')}",
            f"--cert-dir={self._path('kubelet-pki')}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={GATEWAY}",
            "--v=1",
        ]

    def _proxy_args(self) -> list[str]:
        assert self.binaries is not None
        return [
            str(self.binaries.kube_proxy),
            f"--kubeconfig={self._path('proxy.kubeconfig')}",
            "--proxy-mode=iptables",
            f"--hostname-override={NODE_NAME}",
            f"--cluster-cidr={POD_CIDR}",
            "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249",
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--iptables-sync-period=5s",
            "--iptables-min-sync-period=0s",
        ]

    def _scheduler_args(self) -> list[str]:
        assert self.binaries is not None
        return [
            str(self.binaries.kube_scheduler),
            f"--kubeconfig={self._path('scheduler.kubeconfig')}",
            f"--authentication-kubeconfig={self._path('scheduler.kubeconfig')}",
            f"--authorization-kubeconfig={self._path('scheduler.kubeconfig')}",
            "--leader-elect=false",
            "--secure-port=0",
        ]

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = self._path(f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=None if self.local.options.detach else cluster.die_with_parent,
            )
        finally:
            log.close()
        self._procs[name] = proc

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise nodeteardown.NodeError(
                    f"{name} exited with code {proc.returncode} during start-up; last log lines:\n"
                    + self.log_tail(name)
                )

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self._path(f"{name}.log")
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _wait_containerd(self) -> None:
        assert self.binaries is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive()
            if self.layout.socket.exists():
                probe = subprocess.run(
                    [str(self.binaries.ctr), f"--address={self.layout.socket}", "version"],
                    capture_output=True,
                    check=False,
                    timeout=10,
                )
                if probe.returncode == 0:
                    return
            time.sleep(0.2)
        raise nodeteardown.NodeError(
            "containerd did not answer within 60 s:\n" + self.log_tail("containerd")
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "not registered"
        while time.monotonic() < deadline:
            self._check_alive()
            node = self._get(f"/api/v1/nodes/{NODE_NAME}")
            if node is not None:
                conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
                ready = conditions.get("Ready", {})
                if ready.get("status") == "True":
                    return
                last = f"{ready.get('reason')}: {ready.get('message')}"
            time.sleep(0.5)
        raise nodeteardown.NodeError(
            f"node {NODE_NAME} not Ready within {READY_TIMEOUT:.0f} s ({last}); kubelet log:\n"
            + self.log_tail("kubelet")
        )

    def _bind_apiserver_to_kubelet(self) -> None:
        """Let the apiserver's kubelet client (logs, exec) through the kubelet's authorization."""
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "agent-authority-node:apiserver-kubelet-client"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:kubelet-api-admin",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "kube-apiserver-kubelet-client",
                }
            ],
        }
        request = urllib.request.Request(  # noqa: S310 - our own https URL
            f"{self.local.url}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            data=json.dumps(binding).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own https URL
                request, timeout=10, context=self.local.admin_ssl_context()
            ):
                pass
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise nodeteardown.NodeError(
                    f"binding the apiserver's kubelet client failed: {e}"
                ) from e

    def _get(self, path: str) -> dict[str, Any] | None:
        context = self.local.admin_ssl_context()
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own https URL
                f"{self.local.url}{path}", timeout=5, context=context
            ) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                return body
        except (urllib.error.URLError, OSError, ValueError):
            return None
