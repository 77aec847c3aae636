"""``agent-authority dev``: local control plane + CRDs + demo objects + the operator, in one go.

The operator runs under its own identity (user ``agent-authority-operator``) bound to the
ClusterRole in ``config/rbac/`` — its ceiling — never as cluster-admin. Everything runs in this
process's tree and stops on Ctrl-C (or after ``--exit-after`` seconds), leaving nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pathlib
import signal
import sys
from typing import Any

from agent_authority import runtime
from agent_authority.kube import api, clients, manifests
from agent_authority.localcluster import assets, cluster, kubeconfig

ROOT = pathlib.Path(__file__).resolve().parents[3]
OPERATOR_USER = "agent-authority-operator"
DEMO = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agents"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sre-bot", "namespace": "agents"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/checkout:1"}]},
            },
        },
    },
]


@dataclasses.dataclass(frozen=True)
class OperatorEnv:
    """How to run the operator against a local control plane."""

    kubeconfig: pathlib.Path
    options: runtime.Options

    def run_args(self) -> list[str]:
        """``agent-authority run`` arguments that reproduce :attr:`options`."""
        o = self.options
        return [
            "run",
            f"--metrics-port={o.metrics_port}",
            f"--webhook-port={o.webhook_port}",
            f"--webhook-addr={o.webhook_addr}",
            f"--webhook-host={o.webhook_host}",
            f"--webhook-cert={o.webhook_cert}",
            f"--webhook-key={o.webhook_key}",
            f"--webhook-ca={o.webhook_ca}",
            f"--audit-port={o.audit_port}",
            f"--audit-client-ca={o.audit_client_ca}",
            f"--token-seconds={o.token_seconds}",
            f"--rotate-after={o.rotate_after}",
            *([f"--audit-trail={o.audit_trail}"] if o.audit_trail else []),
            f"--gateway-port={o.gateway_port}",
            f"--gateway-addr={o.gateway_addr}",
            f"--gateway-audience={o.gateway_audience}",
            f"--session-mode={o.session_mode}",
        ]


def operator_rbac() -> list[dict[str, Any]]:
    """The operator's ClusterRole (its ceiling) and a binding to the local operator user."""
    role = manifests.load([ROOT / "config" / "rbac" / "operator-clusterrole.yaml"])
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "agent-authority-operator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "agent-authority-operator",
        },
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": OPERATOR_USER}
        ],
    }
    return [*role, binding]


def gateway_rbac(namespace: str) -> list[dict[str, Any]]:
    """The session gateway's right to impersonate session ServiceAccounts in ``namespace``."""
    docs = manifests.load([ROOT / "config" / "rbac" / "operator-gateway-role.yaml"])
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return docs


def prepare(
    local: cluster.LocalCluster,
    *,
    metrics_port: int,
    webhook_port: int,
    audit_port: int,
    gateway_port: int = 0,
) -> OperatorEnv:
    """Install the CRDs and the operator's RBAC; the kubeconfig and options to run it with."""
    admin = clients.api_client(str(local.kubeconfig))
    manifests.install_crds(admin, sorted((ROOT / "crds").glob("*.yaml")))
    manifests.apply(admin, operator_rbac())
    serving = local.operator_serving()
    options = runtime.Options(
        metrics_port=metrics_port,
        webhook_port=webhook_port,
        webhook_addr="127.0.0.1",
        webhook_host="127.0.0.1",
        webhook_cert=str(serving.cert),
        webhook_key=str(serving.key),
        webhook_ca=str(local.ca_file),
        audit_port=audit_port,
        audit_client_ca=str(local.ca_file),
        audit_trail=str(local.pki_dir.parent / "audit-trail.jsonl"),
        gateway_port=gateway_port,
        gateway_addr="127.0.0.1",
    )
    return OperatorEnv(local.user_kubeconfig(OPERATOR_USER), options)


def _agent_kubeconfig(local: cluster.LocalCluster) -> pathlib.Path:
    """A kubeconfig for the demo agent's base identity (a TokenRequest token, 1 h)."""
    kube = api.Kube.from_kubeconfig(str(local.kubeconfig))
    review = api.sync(
        kube.core.create_namespaced_service_account_token,
        "sre-bot",
        "agents",
        {"spec": {"expirationSeconds": 3600}},
    )
    return kubeconfig.write(
        local.pki_dir.parent / "agent.kubeconfig",
        server=local.url,
        ca=local.ca_file,
        user="sre-bot",
        token=str(review["status"]["token"]),
        namespace="agents",
    )


def add_parser(sub: Any) -> None:
    dev = sub.add_parser(
        "dev", help="start a local control plane, install the CRDs and the demo, run the operator"
    )
    dev.add_argument("--exit-after", type=float, default=0, help="stop after N seconds (0: never)")
    dev.add_argument("--metrics-port", type=int, default=8080)
    dev.add_argument("--webhook-port", type=int, default=9443)
    dev.add_argument("--audit-port", type=int, default=9444)
    dev.add_argument("--gateway-port", type=int, default=9445, help="session gateway; 0: off")
    dev.add_argument(
        "--session-mode",
        choices=["direct", "gateway"],
        default="direct",
        help="mode of sessions whose grant sets none",
    )
    dev.add_argument("--no-demo", action="store_true", help="do not apply the demo objects")
    dev.add_argument("--name", default="dev", help="name of the local control plane")
    dev.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    local = cluster.LocalCluster(
        cluster.Options(name=args.name, audit_url=f"https://127.0.0.1:{args.audit_port}/audit")
    )
    try:
        local.start()
    except (assets.AssetError, cluster.ClusterError) as e:
        _say(f"error: {e}")
        return 1
    try:
        _say(f"control plane ready in {local.startup_seconds:.1f} s at {local.url}")
        env = prepare(
            local,
            metrics_port=args.metrics_port,
            webhook_port=args.webhook_port,
            audit_port=args.audit_port,
            gateway_port=args.gateway_port,
        )
        env.options.session_mode = args.session_mode
        _say("CRDs and the operator's ClusterRole installed")
        if not args.no_demo:
            admin = clients.api_client(str(local.kubeconfig))
            docs = DEMO + manifests.load(
                [
                    ROOT / "examples" / "rbac" / "sre-bot-agent.yaml",
                    ROOT / "examples" / "agentgrant-sre-bot.yaml",
                ]
            )
            if args.gateway_port:
                docs += gateway_rbac("agents")
            for applied in manifests.apply(admin, docs):
                _say(f"applied {applied}")
            _say(f"agent kubeconfig (ServiceAccount agents/sre-bot): {_agent_kubeconfig(local)}")
        _say(f"export KUBECONFIG={local.kubeconfig}   # in another shell, then: kubectl get ag")
        os.environ["KUBECONFIG"] = str(env.kubeconfig)
        asyncio.run(_operate(args, env.options))
    finally:
        local.stop()
        _say("stopped; nothing left behind")
    return 0


async def _operate(args: argparse.Namespace, options: runtime.Options) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_after:
        loop.call_later(args.exit_after, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await runtime.run(options, stop_flag=stop)
