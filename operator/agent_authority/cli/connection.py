"""What the cluster-facing commands share: ``-n``/``--kubeconfig``, the client, error output."""

from __future__ import annotations

import argparse
import sys

from kubernetes import config

from agent_authority.kube import api
from agent_authority.models import GROUP, VERSION


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


def list_objects(args: argparse.Namespace, plural: str) -> list[api.Json]:
    """Our custom objects of ``plural`` in ``-n`` (or every namespace with ``-A``)."""
    client = kube(args)
    if args.all_namespaces:
        found = api.sync(client.custom.list_cluster_custom_object, GROUP, VERSION, plural)
    else:
        found = api.sync(
            client.custom.list_namespaced_custom_object, GROUP, VERSION, namespace(args), plural
        )
    items: list[api.Json] = found.get("items", [])
    return items


def print_table(rows: list[list[str]]) -> None:
    """Print rows as left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
