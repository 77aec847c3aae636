"""What the cluster-facing commands share: ``-n``/``--kubeconfig``, the client, error output."""

from __future__ import annotations

import argparse
import sys

from kubernetes import config

from agent_authority.kube import api


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")


def kube(args: argparse.Namespace) -> api.Kube:
    return api.Kube.from_kubeconfig(args.kubeconfig)


def namespace(args: argparse.Namespace) -> str:
    """``-n``, else the kubeconfig context's namespace, else ``default``."""
    if args.namespace:
        return str(args.namespace)
    try:
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
    except (config.ConfigException, OSError):
        return "default"
    return str(active.get("context", {}).get("namespace") or "default")


def fail(message: str) -> int:
    """Print ``message`` as an error; the exit status of a refused command."""
    print(f"error: {message}", file=sys.stderr)
    return 1
