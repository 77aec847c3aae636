"""Start the kopf operator: settings, JSON logs, metrics, handler registration."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os

import kopf

from agent_authority import metrics
from agent_authority.controllers import grants, requests, sessions

FINALIZER = "agentauthority.io/finalizer"
ANNOTATION_PREFIX = "agentauthority.io"

# Referenced so the linters see that importing the modules registers their handlers.
REGISTERED = (grants, sessions, requests)


@dataclasses.dataclass
class Options:
    metrics_port: int = 8080
    metrics_addr: str = "127.0.0.1"
    verbose: bool = False
    json_logs: bool = True


def configure(settings: kopf.OperatorSettings) -> None:
    """Operator-wide kopf settings: our own finalizer and annotation-based progress storage.

    Progress and diff-base live in annotations, not in ``status``: our status schema is
    structural, so the apiserver would prune kopf's ``status.kopf`` field anyway.
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 32


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: object) -> None:
    configure(settings)


@kopf.on.login()
def _login(settings: kopf.OperatorSettings, **_: object) -> kopf.ConnectionInfo | None:
    """``$KUBECONFIG`` read at login time (not at import time), else the in-cluster account."""
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(settings=settings)
    return kopf.login_with_service_account(settings=settings)


async def run(options: Options, stop_flag: asyncio.Event | None = None) -> None:
    """Run until ``stop_flag`` is set (or forever)."""
    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.json_logs else kopf.LogFormat.FULL,
    )
    if options.metrics_port:
        metrics.serve(options.metrics_port, options.metrics_addr)
    await kopf.operator(clusterwide=True, stop_flag=stop_flag)
