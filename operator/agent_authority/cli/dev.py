"""``agent-authority dev``: local control plane + CRDs + demo objects + the operator, in one go.

Everything runs in this process's tree and stops on Ctrl-C (or after ``--exit-after`` seconds),
leaving no processes or folders behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import signal
import sys
from typing import Any

from agent_authority.controllers import runtime
from agent_authority.kube import clients, manifests
from agent_authority.localcluster import assets, cluster

ROOT = pathlib.Path(__file__).resolve().parents[3]
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


def add_parser(sub: Any) -> None:
    dev = sub.add_parser(
        "dev", help="start a local control plane, install the CRDs and the demo, run the operator"
    )
    dev.add_argument("--exit-after", type=float, default=0, help="stop after N seconds (0: never)")
    dev.add_argument("--metrics-port", type=int, default=8080)
    dev.add_argument("--webhook-port", type=int, default=9443)
    dev.add_argument("--no-demo", action="store_true", help="do not apply the demo objects")
    dev.add_argument("--name", default="dev", help="name of the local control plane")
    dev.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    local = cluster.LocalCluster(
        cluster.Options(name=args.name, operator_url=f"https://127.0.0.1:{args.webhook_port}")
    )
    try:
        local.start()
    except (assets.AssetError, cluster.ClusterError) as e:
        _say(f"error: {e}")
        return 1
    try:
        _say(f"control plane ready in {local.startup_seconds:.1f} s at {local.url}")
        os.environ["KUBECONFIG"] = str(local.kubeconfig)
        api = clients.api_client(str(local.kubeconfig))
        manifests.install_crds(api, sorted((ROOT / "crds").glob("*.yaml")))
        _say("CRDs installed")
        if not args.no_demo:
            docs = DEMO + manifests.load([ROOT / "examples" / "agentgrant-sre-bot.yaml"])
            for applied in manifests.apply(api, docs):
                _say(f"applied {applied}")
        _say(f"export KUBECONFIG={local.kubeconfig}   # in another shell, then: kubectl get ag")
        asyncio.run(_operate(args))
    finally:
        local.stop()
        _say("stopped; nothing left behind")
    return 0


async def _operate(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_after:
        loop.call_later(args.exit_after, stop.set)
    options = runtime.Options(metrics_port=args.metrics_port)
    with contextlib.suppress(asyncio.CancelledError):
        await runtime.run(options, stop_flag=stop)
