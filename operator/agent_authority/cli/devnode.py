"""``agent-authority dev --node``: the demo against the operator running as pods of its chart.

Owns the node variant of ``dev``: a real single-node cluster (the ``hack/cluster`` machinery:
control plane, containerd, runc, kubelet, kube-proxy, CNI), the operator's image (``hack/image``,
cached by a hash of what goes into it) imported into the node, the chart installed with the
pinned Helm, the demo, and the same next steps as ``dev`` (``<run folder>/env.sh``, the agent's
and approvers' kubeconfigs). Ctrl-C, SIGTERM or ``--exit-after`` tears everything down (pods,
mounts, network namespaces, veths, the bridge, iptables chains) and reports anything left.

The webhook Service gets a fixed address (:data:`SERVICE_ADDRESS`) whose serving certificate
is issued by the local CA before ``helm install`` (the chart keeps an existing certificate): the
apiserver's audit webhook and the host's clients (no cluster DNS here) reach the audit receiver
and the session gateway at that address, through kube-proxy's rules on the host.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

from agent_authority import certs
from agent_authority.cli import dev, failures
from agent_authority.kube import clients, manifests
from agent_authority.localcluster import assets, cluster, node, nodeassets

ROOT = dev.ROOT
CHART = ROOT / "charts" / "agent-authority"
RELEASE, NAMESPACE = "agent-authority", "agent-authority-system"
SERVICE_ADDRESS = "10.0.0.10"
"""The webhook Service's ClusterIP: in the Service range's static band, never auto-allocated."""
AUDIT_PORT, GATEWAY_PORT = 9444, 8443
AUDIT_CLIENT_CA = "agent-authority-audit-client-ca"
NICE = ("nice", "-n", "10")
IMAGE_INPUTS = ("operator", "requirements.lock", "pyproject.toml", "hack/image")
DEMO_IMAGE = "localhost/agent-authority/pause:1"
"""What the demo's Deployment runs on the node (no registry is reachable; built locally)."""


def image_tag() -> str:
    """A tag that changes whenever anything the image is built from changes."""
    digest = hashlib.sha256()
    for top in IMAGE_INPUTS:
        base = ROOT / top
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            skipped = any(
                part == "__pycache__" or part.endswith(".egg-info") for part in path.parts
            )
            if path.is_file() and not skipped:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return "0.1.0-" + digest.hexdigest()[:12]


def build_image(tag: str) -> pathlib.Path:
    """The operator's OCI archive for ``tag``: from the cache, else built by ``hack/image``."""
    archive = assets.cache_dir() / "images" / f"operator-{tag}.tar"
    if archive.exists():
        return archive
    result = subprocess.run(
        [*NICE, sys.executable, str(ROOT / "hack" / "image"), "-o", str(archive), "--tag", tag],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise failures.CliError(f"hack/image failed:\n{result.stderr[-3000:]}")
    return archive


def _say(message: str) -> None:
    print(f"[dev --node] {message}", file=sys.stderr, flush=True)


def _helm(helm: pathlib.Path, local: cluster.LocalCluster, *args: str) -> None:
    result = subprocess.run(
        [str(helm), f"--kubeconfig={local.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise failures.CliError(f"helm {args[0]} failed:\n{result.stderr[-3000:]}")


def serving_secret(local: cluster.LocalCluster) -> dict[str, Any]:
    """The chart's webhook TLS Secret, issued by the local CA for the Service's names and
    :data:`SERVICE_ADDRESS` (the CA the apiserver's audit webhook trusts), labelled for Helm
    to adopt; the chart reads an existing certificate back instead of generating one."""
    pki = local.pki_dir
    ca = certs.Authority.load(certs.KeyPair(pki / "cluster-ca.crt", pki / "cluster-ca.key"))
    names = [
        f"{RELEASE}-{service}{suffix}"
        for service in ("webhooks", "approvals")
        for suffix in ("", f".{NAMESPACE}", f".{NAMESPACE}.svc", f".{NAMESPACE}.svc.cluster.local")
    ]
    pair = ca.issue(
        pki,
        "in-cluster-operator",
        common_name=f"{RELEASE}-webhooks.{NAMESPACE}.svc",
        dns_names=names,
        ip_addresses=[SERVICE_ADDRESS],
        server=True,
    )

    def encoded(path: pathlib.Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": f"{RELEASE}-webhook-tls",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": RELEASE,
                "meta.helm.sh/release-namespace": NAMESPACE,
            },
        },
        "data": {
            "ca.crt": encoded(local.ca_file),
            "tls.crt": encoded(pair.cert),
            "tls.key": encoded(pair.key),
        },
    }


def chart_values(tag: str, session_mode: str) -> list[str]:
    """``helm install`` settings: the image on the node, the demo's session namespace and the
    namespace its scopes read, the audit receiver and the gateway at the fixed Service address."""
    settings = {
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "sessionNamespaces": "{" + ",".join(dev.DEMO_SESSION_NAMESPACES) + "}",
        "scopeNamespaces": "{" + ",".join(dev.DEMO_SCOPE_NAMESPACES) + "}",
        "webhooks.clusterIP": SERVICE_ADDRESS,
        "auditWebhook.enabled": "true",
        "auditWebhook.port": str(AUDIT_PORT),
        "auditWebhook.clientCASecret": AUDIT_CLIENT_CA,
        "gateway.port": str(GATEWAY_PORT),
        "gateway.url": f"https://{SERVICE_ADDRESS}:{GATEWAY_PORT}",
        "gateway.sessionMode": session_mode,
    }
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


def demo_docs() -> list[dict[str, Any]]:
    """The demo of ``dev``, its Deployment running the locally built image."""
    docs = copy.deepcopy(dev.DEMO)
    for doc in docs:
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            container.update(image=DEMO_IMAGE, imagePullPolicy="Never")
    return docs


def install(local: cluster.LocalCluster, helm: pathlib.Path, tag: str, session_mode: str) -> None:
    """Namespaces, the serving Secret and the audit client CA, then ``helm install --wait``."""
    admin = clients.api_client(str(local.kubeconfig))
    demo = [d["metadata"]["name"] for d in dev.DEMO if d["kind"] == "Namespace"]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in demo]
    manifests.apply(admin, [*namespaces, {**namespaces[0], "metadata": {"name": NAMESPACE}}])
    audit_ca = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": AUDIT_CLIENT_CA, "namespace": NAMESPACE},
        "data": {"ca.crt": base64.b64encode(local.ca_file.read_bytes()).decode()},
    }
    manifests.apply(admin, [serving_secret(local), audit_ca])
    started = time.monotonic()
    _helm(
        helm,
        local,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        *chart_values(tag, session_mode),
        "--wait",
        "--timeout",
        "8m",
    )
    _say(f"chart installed, operator pods Ready in {time.monotonic() - started:.1f} s")


def install_demo(local: cluster.LocalCluster) -> list[str]:
    """The demo's objects, the agent's and approvers' RBAC and the grant ``sre-bot``."""
    admin = clients.api_client(str(local.kubeconfig))
    docs = demo_docs() + manifests.load(
        [
            ROOT / "examples" / "rbac" / "sre-bot-agent.yaml",
            ROOT / "examples" / "rbac" / "approvers.yaml",
            ROOT / "examples" / "agentgrant-sre-bot.yaml",
        ]
    )
    return manifests.apply(admin, docs)


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise failures.CliError(
            "dev --node needs root (containerd, mounts, network namespaces, iptables); "
            "run it as root on a throwaway machine, or use `dev` without --node"
        )
    result = subprocess.run(
        [str(ROOT / "hack" / "node-deps")], capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode != 0:
        raise failures.CliError(f"hack/node-deps failed:\n{result.stderr[-2000:]}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_for_stop(exit_after: float) -> None:
    """Block until Ctrl-C / SIGTERM (both raise KeyboardInterrupt here) or ``exit_after`` s."""
    with contextlib.suppress(KeyboardInterrupt):
        if exit_after:
            time.sleep(exit_after)
        else:
            while True:
                time.sleep(3600)


def run(args: argparse.Namespace) -> int:
    _check_prerequisites()
    signal.signal(signal.SIGTERM, _interrupt)  # a TERM mid-setup still tears everything down
    started = time.monotonic()
    tag = image_tag()
    _say(f"operator image {tag} (built by hack/image when not cached)")
    archive = build_image(tag)
    try:
        helm = nodeassets.helm()
    except assets.AssetError as e:
        raise failures.CliError(str(e)) from e
    local = cluster.LocalCluster(
        node.cluster_options(
            name=args.name, audit_url=f"https://{SERVICE_ADDRESS}:{AUDIT_PORT}/audit"
        )
    )
    worker: node.LocalNode | None = None
    mode = args.session_mode or "gateway"  # the chart's default
    left: list[str] = []
    try:
        try:
            local.start()
            worker = node.LocalNode(local, images=[archive]).start()
        except (assets.AssetError, cluster.ClusterError, node.NodeError) as e:
            raise failures.CliError(f"the single-node cluster could not be started: {e}") from e
        _say(
            f"control plane {local.startup_seconds:.1f} s, node {node.NODE_NAME} Ready "
            f"{worker.startup_seconds:.1f} s, at {local.url}"
        )
        install(local, helm, tag, mode)
        agent: pathlib.Path | None = None
        approvers: dict[str, pathlib.Path] = {}
        if not args.no_demo:  # the demo's namespaces exist either way (sessionNamespaces)
            for applied in install_demo(local):
                _say(f"applied {applied}")
            agent = dev._agent_kubeconfig(local)
            approvers = dev.approver_kubeconfigs(local)
            _say(f"agent kubeconfig (ServiceAccount agents/sre-bot): {agent}")
            for name, path in approvers.items():
                _say(f"approver kubeconfig ({name}, group {dev.APPROVER_GROUP}): {path}")
        _say(
            f"operator: {RELEASE} pods in namespace {NAMESPACE}; sessions default to "
            f"{mode} mode (gateway https://{SERVICE_ADDRESS}:{GATEWAY_PORT})"
        )
        _say(f"ready in {time.monotonic() - started:.1f} s")
        bin_dir = pathlib.Path(sys.executable).parent
        lines = dev.env_lines(local.kubeconfig, agent, approvers, bin_dir)
        env_file = local.pki_dir.parent / "env.sh"
        env_file.write_text("\n".join(lines) + "\n")
        _say(f"in another shell: source {env_file}   # or paste:")
        for line in lines:
            print(line, flush=True)
        _wait_for_stop(args.exit_after)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the teardown
            signal.signal(sig, signal.SIG_IGN)
        _say("tearing down the node and the control plane")
        if worker is not None:
            worker.stop()
        local.stop()
        left = node.leftovers()
        if left:
            _say("left behind on this host:\n  " + "\n  ".join(left))
        else:
            _say("stopped; nothing left behind (pods, mounts, netns, veths, bridge, iptables)")
    return 1 if left else 0
