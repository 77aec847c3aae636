"""Start the operator: kopf settings, webhooks, the audit receiver, JSON logs, metrics.

Importing this module registers every handler (controllers and webhooks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import pathlib
import tempfile
from typing import Any

import kopf

from agent_authority import certs, indexes, metrics, models
from agent_authority.audit import trail
from agent_authority.controllers import deviations, grants, requests, sessions
from agent_authority.gateway import server as gateway_server
from agent_authority.gateway import watching as gateway_watching
from agent_authority.kube import access, api
from agent_authority.webhooks import grants as grant_webhooks
from agent_authority.webhooks import requests as request_webhooks
from agent_authority.webhooks import sessions as session_webhooks

FINALIZER = models.FINALIZER
ANNOTATION_PREFIX = "agentauthority.io"
WEBHOOK_CONFIGURATION = "agentauthority.io"
WORKER_THREADS = 64

# Importing the modules registers their handlers; listed so linters see they are used.
REGISTERED = (
    indexes,
    grants,
    sessions,
    requests,
    grant_webhooks,
    session_webhooks,
    request_webhooks,
)


@dataclasses.dataclass
class Options:
    metrics_port: int = 8080
    metrics_addr: str = "127.0.0.1"
    verbose: bool = False
    json_logs: bool = True
    webhook_port: int = 9443
    webhook_addr: str = "0.0.0.0"  # noqa: S104 - the apiserver must reach it
    webhook_host: str = "127.0.0.1"
    """How the apiserver reaches the webhooks (a host name or IP in the serving certificate)."""
    webhook_cert: str | None = None
    webhook_key: str | None = None
    webhook_ca: str | None = None
    """CA of the serving certificate (the webhook configurations' caBundle)."""
    cert_dir: str | None = None
    """Where to generate a CA and serving certificate when none is given."""
    audit_port: int = 9444
    """Port of the ``/audit`` endpoint (0 disables deviation detection from audit events)."""
    audit_client_ca: str | None = None
    """CA that signs the apiserver's audit client certificate (required to trust events)."""
    token_seconds: int = 3600
    rotate_after: float = 0.8
    audit_trail: str | None = None
    """JSON-lines file of the signed, hash-chained audit trail (unset: no trail, a warning)."""
    audit_trail_key: str | None = None
    """Ed25519 private key signing the trail (created if missing; public key at ``<key>.pub``)."""
    # -- the session gateway (issue 10) --
    gateway_port: int = 0
    """Port of the session gateway (0: no gateway, and gateway-mode sessions are refused)."""
    gateway_addr: str = "0.0.0.0"  # noqa: S104 - agents must reach it
    gateway_url: str | None = None
    """How agents reach the gateway (session kubeconfigs); default ``https://<webhook-host>:<port>``."""
    gateway_audience: str = "agent-authority.io/gateway"
    """Audience of gateway-mode session tokens (the apiserver refuses tokens not meant for it)."""
    session_mode: str = "direct"
    """Mode of sessions whose grant sets no ``spec.session.accessMode``: direct or gateway."""


_OPTIONS = Options()


def _serving_files(options: Options) -> tuple[str, str, str]:
    """The serving certificate, key and CA; generated once (into ``cert_dir``) when not given."""
    if options.webhook_cert and options.webhook_key and options.webhook_ca:
        return options.webhook_cert, options.webhook_key, options.webhook_ca
    folder = pathlib.Path(options.cert_dir or tempfile.mkdtemp(prefix="agent-authority-certs-"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = certs.Authority.create(folder, "agent-authority-webhook")
    pair = ca.issue(
        folder,
        "serving",
        common_name=options.webhook_host,
        dns_names=[options.webhook_host] if not options.webhook_host[0].isdigit() else [],
        ip_addresses=[options.webhook_host] if options.webhook_host[0].isdigit() else [],
        server=True,
    )
    options.webhook_cert, options.webhook_key = str(pair.cert), str(pair.key)
    options.webhook_ca = str(ca.files.cert)
    return options.webhook_cert, options.webhook_key, options.webhook_ca


def configure(settings: kopf.OperatorSettings, options: Options) -> None:
    """Operator-wide kopf settings.

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
    settings.execution.max_workers = WORKER_THREADS
    settings.batching.worker_limit = 256
    cert, key, ca = _serving_files(options)
    settings.admission.server = kopf.WebhookServer(
        addr=options.webhook_addr,
        port=options.webhook_port,
        host=options.webhook_host,
        certfile=cert,
        pkeyfile=key,
        cafile=ca,
    )
    settings.admission.managed = WEBHOOK_CONFIGURATION


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, memo: Any, logger: Any, **_: Any) -> None:
    options = _OPTIONS
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(WORKER_THREADS)
    )
    configure(settings, options)
    sessions.SETTINGS.token_seconds = options.token_seconds
    sessions.SETTINGS.rotate_after = options.rotate_after
    sessions.SETTINGS.access_mode = models.grant.AccessMode(options.session_mode)
    if options.audit_trail:
        key = options.audit_trail_key or f"{options.audit_trail}.key"
        trail.open_trail(pathlib.Path(options.audit_trail), pathlib.Path(key))
    else:
        logger.warning("no --audit-trail: decisions are not recorded in a signed audit trail")
    kube = api.default()
    memo.operator = await access.whoami(kube)
    logger.info("operating as %s", memo.operator.username)
    await sessions.sweep_orphans(kube, logger)
    if options.gateway_port:
        await _start_gateway(kube, options, memo, logger)
    if options.audit_port:
        receiver = deviations.Receiver(kube)
        serving_cert, serving_key, _ca = _serving_files(options)
        await receiver.start(
            host=options.webhook_addr,
            port=options.audit_port,
            certfile=serving_cert,
            keyfile=serving_key,
            client_ca=options.audit_client_ca,
        )
        memo.receiver = receiver


GATEWAY_SYNC_SECONDS = 30.0


async def _start_gateway(kube: api.Kube, options: Options, memo: Any, logger: Any) -> None:
    """Serve the session gateway (HTTPS, the webhooks' certificate) and feed its view."""
    cert, key, ca = _serving_files(options)
    gateway = gateway_server.Gateway(
        kube,
        gateway_server.Config(
            addr=options.gateway_addr,
            port=options.gateway_port,
            certfile=cert,
            keyfile=key,
            audience=options.gateway_audience,
        ),
    )
    await gateway.start()
    synced = asyncio.Event()
    memo.gateway_watch = asyncio.create_task(gateway_watching.run(gateway, synced))
    await asyncio.wait_for(synced.wait(), GATEWAY_SYNC_SECONDS)
    memo.gateway = gateway
    url = options.gateway_url or f"https://{options.webhook_host}:{gateway.port}"
    ca_pem = await asyncio.to_thread(pathlib.Path(ca).read_text)
    sessions.SETTINGS.gateway = sessions.GatewayTarget(
        audience=options.gateway_audience, server=url, ca_pem=ca_pem
    )
    logger.info("session gateway at %s (audience %s)", url, options.gateway_audience)


@kopf.on.cleanup()
async def _cleanup(memo: Any, **_: Any) -> None:
    watch = getattr(memo, "gateway_watch", None)
    if watch is not None:
        watch.cancel()
    gateway = getattr(memo, "gateway", None)
    if gateway is not None:
        await gateway.stop()
    receiver = getattr(memo, "receiver", None)
    if receiver is not None:
        await receiver.stop()
    trail.TRAIL.close()


@kopf.on.login()
def _login(settings: kopf.OperatorSettings, **_: object) -> kopf.ConnectionInfo | None:
    """``$KUBECONFIG`` read at login time (not at import time), else the in-cluster account."""
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(settings=settings)
    return kopf.login_with_service_account(settings=settings)


async def run(options: Options, stop_flag: asyncio.Event | None = None) -> None:
    """Run until ``stop_flag`` is set (or forever)."""
    global _OPTIONS
    _OPTIONS = options
    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.json_logs else kopf.LogFormat.FULL,
    )
    if options.metrics_port:
        metrics.serve(options.metrics_port, options.metrics_addr)
    await kopf.operator(clusterwide=True, stop_flag=stop_flag, memo=kopf.Memo())
