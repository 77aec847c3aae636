"""What the cluster-facing commands share: ``-n``/``--kubeconfig``/``--context``, the client.

The connection flags are accepted both before and after the command, as kubectl plugins are
called (``kubectl agent -n agents requests`` and ``kubectl agent requests -n agents`` mean the
same): the top-level parser holds their defaults and each command re-declares them with
``argparse.SUPPRESS``, so a value given in either place survives.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kubernetes import client, config

from agent_authority.cli import failures
from agent_authority.kube import api
from agent_authority.models import GROUP, VERSION

CONNECTION_DESTS = ("namespace", "kubeconfig", "context")


def _add(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-n", "--namespace", default=default, help="default: the kubeconfig context's namespace"
    )
    parser.add_argument(
        "--kubeconfig", default=default, help="default: $KUBECONFIG or ~/.kube/config"
    )
    parser.add_argument("--context", default=default, help="default: the current context")


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """The connection flags before the command (``agent-authority -n agents requests``)."""
    _add(parser, None)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The connection flags after the command; they override those given before it."""
    _add(parser, argparse.SUPPRESS)


def _kubeconfig_path(args: argparse.Namespace) -> str | None:
    path = args.kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None:
        default = os.path.expanduser("~/.kube/config")
        return default if os.path.exists(default) else None
    return str(path)


def kube(args: argparse.Namespace) -> api.Kube:
    """A client for the kubeconfig and context the flags name; a one-line error if it cannot."""
    path = _kubeconfig_path(args)
    if path is None:
        raise failures.CliError(
            "no kubeconfig: pass --kubeconfig FILE or set KUBECONFIG (hack/dev prints one)"
        )
    for one in path.split(os.pathsep):
        if one and not os.path.isfile(one):
            source = "--kubeconfig" if args.kubeconfig else "KUBECONFIG"
            raise failures.CliError(
                f"kubeconfig {one} ({source}) does not exist; pass the path hack/dev printed"
            )
    try:
        api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=path, context=args.context
        )
    except (config.ConfigException, ValueError, OSError) as e:
        raise failures.CliError(f"cannot use kubeconfig {path}: {e}") from e
    return api.Kube(api_client)


def namespace(args: argparse.Namespace) -> str:
    """``-n``, else the kubeconfig context's namespace, else ``default``."""
    if args.namespace:
        return str(args.namespace)
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=_kubeconfig_path(args)
        )
    except (config.ConfigException, OSError, TypeError):
        return "default"
    if args.context:
        active = next((c for c in contexts if c.get("name") == args.context), active)
    return str((active or {}).get("context", {}).get("namespace") or "default")


def fail(message: str) -> int:
    """Print ``message`` as an error; the exit status of a refused command."""
    print(f"error: {message}", file=sys.stderr)
    return failures.EXIT_FAILED


def list_objects(args: argparse.Namespace, plural: str) -> list[api.Json]:
    """Our custom objects of ``plural`` in ``-n`` (or every namespace with ``-A``)."""
    kube_client = kube(args)
    if args.all_namespaces:
        found = api.sync(kube_client.custom.list_cluster_custom_object, GROUP, VERSION, plural)
    else:
        found = api.sync(
            kube_client.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace(args),
            plural,
        )
    items: list[api.Json] = found.get("items", [])
    return items


def where(args: argparse.Namespace) -> str:
    """``in namespace agents`` or ``in any namespace``, for "nothing found" messages."""
    return "in any namespace" if args.all_namespaces else f"in namespace {namespace(args)}"
