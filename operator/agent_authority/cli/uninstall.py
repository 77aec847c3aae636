"""``agent-authority uninstall-hook``: what runs before ``helm uninstall`` removes the operator.

Every session still open is ended (``spec.ended``) while the operator still runs, and the hook
waits until each is terminal and its ServiceAccount (the token's identity: deleting it invalidates
every token minted for it) is gone. Then it stops the operator (scales its Deployment to 0) and
removes the operator's finalizer from the sessions, so nothing is left that only a vanished
operator could finish. If any of it does not happen in time the hook fails, and with it the
uninstall: the operator stays, and no credential is left without its revoker.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from agent_authority.cli import connection, help_text
from agent_authority.kube import api, errors
from agent_authority.models import FINALIZER, GROUP, VERSION
from agent_authority.models import session as session_model

PLURAL = "incidentsessions"
TERMINAL = {str(p) for p in session_model.TERMINAL_PHASES}


def add_parser(sub: Any) -> None:
    hook = sub.add_parser(
        "uninstall-hook",
        help="end every session and release the operator's finalizers (Helm)",
        **help_text.examples(
            """
            # run by the chart's pre-delete hook Job, in the cluster:
            agent-authority uninstall-hook --deployment agent-authority --namespace agent-authority
            """
        ),
    )
    hook.add_argument("--deployment", required=True, help="the operator's Deployment")
    hook.add_argument("--namespace", required=True, help="its namespace")
    hook.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    hook.add_argument("--kubeconfig", help="default: in-cluster")
    hook.set_defaults(func=run)


def _log(message: str) -> None:
    print(f"[uninstall] {message}", file=sys.stderr, flush=True)


def _sessions(kube: api.Kube) -> list[api.Json]:
    found = api.sync(kube.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
    items: list[api.Json] = found.get("items", [])
    return items


def _pending(kube: api.Kube) -> list[str]:
    """Sessions not yet terminal, or whose ServiceAccount still exists."""
    waiting = []
    for item in _sessions(kube):
        meta, status = item["metadata"], item.get("status") or {}
        where = f"{meta['namespace']}/{meta['name']}"
        if status.get("phase") not in TERMINAL:
            waiting.append(f"{where} ({status.get('phase') or 'no phase'})")
            continue
        account = status.get("serviceAccountName")
        if account:
            try:
                api.sync(kube.core.read_namespaced_service_account, account, meta["namespace"])
                waiting.append(f"{where} (ServiceAccount {account} still exists)")
            except errors.NotFound:
                pass
    return waiting


def _wait(what: str, check: Any, deadline: float) -> list[str]:
    left: list[str] = check()
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = check()
    if left:
        _log(f"timed out waiting for {what}: " + ", ".join(left[:20]))
    return left


def run(args: argparse.Namespace) -> int:
    kube = api.Kube.from_kubeconfig(args.kubeconfig)
    deadline = time.monotonic() + args.timeout
    for item in _sessions(kube):
        meta, status = item["metadata"], item.get("status") or {}
        if status.get("phase") not in TERMINAL and not item["spec"].get("ended"):
            _log(f"ending {meta['namespace']}/{meta['name']}")
            api.sync(
                kube.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                {"spec": {"ended": True}},
            )
    if _wait("sessions to be revoked", lambda: _pending(kube), deadline):
        return connection.fail("sessions still hold credentials; the operator stays installed")
    scale = api.sync(kube.apps.read_namespaced_deployment_scale, args.deployment, args.namespace)
    replicas = int(scale.get("spec", {}).get("replicas") or 0)
    _log(f"stopping {args.namespace}/{args.deployment}")
    _scale(kube, args, 0)
    try:
        return _release(kube, args, deadline)
    except errors.KubeError as e:
        _log(f"failed ({e}); starting the operator again ({replicas} replicas)")
        _scale(kube, args, replicas)
        return connection.fail(f"{e}; the operator stays installed")


def _scale(kube: api.Kube, args: argparse.Namespace, replicas: int) -> None:
    api.sync(
        kube.apps.patch_namespaced_deployment_scale,
        args.deployment,
        args.namespace,
        {"spec": {"replicas": replicas}},
    )


def _release(kube: api.Kube, args: argparse.Namespace, deadline: float) -> int:
    """Wait for the operator's pods to stop, then remove its finalizer from every session."""

    def running() -> list[str]:
        pods = api.sync(
            kube.core.list_namespaced_pod,
            args.namespace,
            label_selector="app.kubernetes.io/name=agent-authority",
        )
        return [p["metadata"]["name"] for p in pods.get("items", [])]

    if _wait("the operator's pods to stop", running, deadline):
        raise errors.Unavailable("the operator did not stop in time")
    for item in _sessions(kube):
        meta = item["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER in finalizers:
            kept = [f for f in finalizers if f != FINALIZER]
            api.sync(
                kube.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                {"metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}},
            )
    _log("every session ended, its credentials gone, the finalizers released")
    return 0
