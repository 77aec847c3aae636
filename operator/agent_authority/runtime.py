"""Start the operator: kopf settings, webhooks, the audit receiver, JSON logs, metrics.

Importing this module registers every handler (controllers and webhooks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import pathlib
import socket
import tempfile
import time
from typing import Any

import kopf

from agent_authority import certs, indexes, logs, memory, metrics, models
from agent_authority.approvals import server as approval_page
from agent_authority.audit import errors as audit_errors
from agent_authority.audit import trail
from agent_authority.controllers import (
    alerts,
    deviations,
    grants,
    handling,
    persistence,
    requests,
    session_lifetime,
    session_reads,
    session_revocation,
    session_settings,
    sessions,
)
from agent_authority.gateway import server as gateway_server
from agent_authority.gateway import watching as gateway_watching
from agent_authority.kube import access, api, errors
from agent_authority.notify import outbox, receivers
from agent_authority.webhooks import configuration as webhook_configuration
from agent_authority.webhooks import grants as grant_webhooks
from agent_authority.webhooks import requests as request_webhooks
from agent_authority.webhooks import server
from agent_authority.webhooks import sessions as session_webhooks

FINALIZER = models.FINALIZER
ANNOTATION_PREFIX = "agentauthority.io"
WEBHOOK_CONFIGURATION = webhook_configuration.NAME
WORKER_THREADS = 64
DEFAULT_AUDIT_TRAIL = "/var/lib/agent-authority/audit-trail.jsonl"
"""Where the signed audit trail goes unless ``--audit-trail`` says otherwise (mount a volume)."""
REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
"""kopf's own API calls (watches aside) give up after these many seconds and retry."""
KOPF_ERROR_BACKOFFS = (0.5, 1.0, *([2.0] * 30))


class StartupError(Exception):
    """The operator refuses to start as configured; the message says what to change."""


LIVENESS_STALE = 30.0

# Importing the modules registers their handlers; listed so linters see they are used.
REGISTERED = (
    indexes,
    grants,
    sessions,
    session_lifetime,
    session_reads,
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
    audit_addr: str = "127.0.0.1"
    """Address the ``/audit`` endpoint listens on (in a pod: the pod IP, or 0.0.0.0 explicitly)."""
    audit_client_ca: str | None = None
    """CA that signs the apiserver's audit client certificate (required: no CA, no receiver)."""
    audit_client_names: tuple[str, ...] = (deviations.DEFAULT_CLIENT_NAME,)
    """Subject common names of the apiserver's audit client certificate; anyone else gets 403."""
    token_seconds: int = 3600
    rotate_after: float = 0.8
    audit_trail: str | None = DEFAULT_AUDIT_TRAIL
    """JSON-lines file of the signed, hash-chained audit trail; None only by an explicit
    ``--no-audit-trail``."""
    audit_trail_key: str | None = None
    """Ed25519 private key signing the trail (default ``<trail>.key``; created with a new log,
    never beside an existing one; public key at ``<key>.pub``)."""
    audit_trail_previous_key: str | None = None
    """The key the trail was signed with so far, to hand the log over to ``audit_trail_key``."""
    # -- approval page and notifications (docs/approvals.md) --
    approvals_port: int = 0
    """Port of the approval page (0: not served by the operator)."""
    approvals_addr: str = "127.0.0.1"
    approvals_cert: str | None = None
    approvals_key: str | None = None
    approvals_insecure_http: bool = False
    """Plain HTTP on a non-loopback address, only behind a TLS-terminating proxy."""
    notify_config: str | None = None
    """YAML file of notification receivers (unset: no notifications)."""
    alert_port: int = 9445
    """Port of the ``/alertmanager`` notification receiver (0: off, polling only)."""
    alert_poll_seconds: float = 30.0
    """How often alert-bound sessions are checked against Alertmanager (0: never)."""
    peering: str | None = None
    """A ClusterKopfPeering's name: replicas elect a leader (the oldest) that runs the
    controllers; every replica serves the webhooks. Unset: standalone (one replica)."""
    peering_lifetime: int = 15
    """Seconds a silent leader is still trusted (fail-over bound after it dies without notice)."""
    webhooks_managed: bool = True
    """Patch the webhook configurations to point here; False when a Helm chart installs them."""
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


def configure(
    settings: kopf.OperatorSettings, options: Options, operator_username: str | None = None
) -> None:
    """Operator-wide kopf settings.

    Progress and diff-base live in annotations, not in ``status``: our status schema is
    structural, so the apiserver would prune kopf's ``status.kopf`` field anyway.

    The webhook configurations are the operator's own (``webhooks.configuration``, the chart's
    definition, exempting ``operator_username`` where the handlers do), applied by the webhook
    server when it starts, unless the installer manages them (``--no-manage-webhooks``); kopf's
    configuration manager is always off.
    """
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = persistence.Progress(prefix=ANNOTATION_PREFIX)
    # Sessions and requests: no diff-base write after the create handler (persistence says why).
    settings.persistence.diffbase_storage = persistence.DiffBase(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    _peering(settings, options)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.execution.max_workers = WORKER_THREADS
    settings.batching.worker_limit = 256
    settings.networking.request_timeout = REQUEST_TIMEOUT
    settings.networking.connect_timeout = CONNECT_TIMEOUT
    # kopf's own calls (progress annotations, finalizers) across an outage: retry within a
    # second or two, for about a minute, instead of 1, 1, 2, 3, 5, 8, 13, 21 s.
    settings.networking.error_backoffs = KOPF_ERROR_BACKOFFS
    cert, key, ca = _serving_files(options)
    manage: server.Configure | None = None
    if options.webhooks_managed:

        async def manage(client_config: kopf.WebhookClientConfig) -> None:
            await webhook_configuration.apply(
                api.default(), client_config, operator_username=operator_username
            )

    settings.admission.server = server.WebhookServer(
        addr=options.webhook_addr,
        port=options.webhook_port,
        host=options.webhook_host,
        certfile=cert,
        pkeyfile=key,
        cafile=ca,
        configure=manage,
    )
    settings.admission.managed = None


def _peering(settings: kopf.OperatorSettings, options: Options) -> None:
    """Leader election through kopf peering: the oldest replica has the highest priority.

    A newer pod never preempts a running leader; when the leader stops it removes its peering
    record (its followers resume at once), when it dies its record expires after the lifetime.
    """
    if not options.peering:
        settings.peering.standalone = True
        return
    settings.peering.standalone = False
    settings.peering.mandatory = True
    settings.peering.clusterwide = True
    settings.peering.name = options.peering
    settings.peering.lifetime = options.peering_lifetime
    settings.peering.priority = -int(time.time() * 1000)


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@kopf.on.startup()
async def _startup(
    settings: kopf.OperatorSettings, memo: Any, logger: Any, retry: int = 0, **_: Any
) -> None:
    options = _OPTIONS
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(WORKER_THREADS)
    )
    session_settings.SETTINGS.token_seconds = options.token_seconds
    session_settings.SETTINGS.rotate_after = options.rotate_after
    session_settings.SETTINGS.access_mode = models.grant.AccessMode(options.session_mode)
    if not trail.TRAIL.enabled:
        logger.warning("--no-audit-trail: decisions are not recorded in a signed audit trail")
    kube = api.default()
    try:
        memo.operator = await access.whoami(kube)
        logger.info("operating as %s", memo.operator.username)
        await session_revocation.sweep_orphans(kube, logger)
    except errors.Unavailable as e:
        # An apiserver that has just started (a CRD's storage still initializing) answers 503
        # for a moment: retry in a second or two, not after kopf's default minute.
        raise kopf.TemporaryError(f"transient: {e}", delay=handling.retry_delay(retry)) from e
    configure(settings, options, memo.operator.username)
    if options.gateway_port:
        await _start_gateway(kube, options, memo, logger)
    if options.audit_port:
        receiver = deviations.Receiver(kube, frozenset(options.audit_client_names))
        serving_cert, serving_key, _ca = _serving_files(options)
        await receiver.start(
            host=options.audit_addr,
            port=options.audit_port,
            certfile=serving_cert,
            keyfile=serving_key,
            client_ca=options.audit_client_ca,
        )
        memo.receiver = receiver
    # Sessions bound to alerts end when the alert resolves (notifications, polling fallback).
    resolver = alerts.Resolver(kube, options.alert_poll_seconds)
    if options.alert_port:
        serving_cert, serving_key, _ca = _serving_files(options)
        await resolver.start(
            host=options.webhook_addr,
            port=options.alert_port,
            certfile=serving_cert,
            keyfile=serving_key,
        )
    else:
        await resolver.start_polling()
    memo.resolver = resolver
    await _start_approvals(options, kube, memo, logger)
    _start_lifetimes(settings, kube, memo)
    local = options.webhook_addr in ("0.0.0.0", "")  # noqa: S104 - a wildcard is probed locally
    probe_host = "127.0.0.1" if local else options.webhook_addr
    metrics.HEALTH.ready = lambda: _port_open(probe_host, options.webhook_port)


def _start_lifetimes(settings: kopf.OperatorSettings, kube: api.Kube, memo: Any) -> None:
    """The one schedule of every Active session's TTL and token rotation (pausing as kopf's
    peering does); ``/healthz`` fails when its loop stops beating."""
    if getattr(memo, "lifetimes", None) is not None:
        return
    name = None if settings.peering.standalone else settings.peering.name
    leadership = session_lifetime.Leadership(kube, name, settings.peering.priority)
    schedule = session_lifetime.Schedule(session_lifetime.act, leadership)
    schedule.start()
    memo.lifetimes = schedule
    live = metrics.HEALTH.live
    metrics.HEALTH.live = lambda: live() and schedule.alive()


async def _start_approvals(options: Options, kube: api.Kube, memo: Any, logger: Any) -> None:
    """The notification outbox and the approval page, when configured (docs/approvals.md)."""
    if options.notify_config:
        config = receivers.load(options.notify_config)
        await outbox.OUTBOX.start(config)
        logger.info("notifying %d receiver(s)", len(config.receivers))
    if options.approvals_port:
        page = approval_page.PageServer(
            kube,
            approval_page.Settings(
                addr=options.approvals_addr,
                port=options.approvals_port,
                cert=options.approvals_cert,
                key=options.approvals_key,
                insecure_http=options.approvals_insecure_http,
                operator_username=memo.operator.username,
            ),
        )
        await page.start()
        memo.approval_page = page
        logger.info("approval page at %s", page.url)


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
    session_settings.SETTINGS.gateway = session_settings.GatewayTarget(
        audience=options.gateway_audience, server=url, ca_pem=ca_pem
    )
    logger.info("session gateway at %s (audience %s)", url, options.gateway_audience)


@kopf.on.cleanup()
async def _cleanup(memo: Any, **_: Any) -> None:
    lifetimes = getattr(memo, "lifetimes", None)
    if lifetimes is not None:  # in-flight expiries and rotations finish first
        await lifetimes.stop()
    watch = getattr(memo, "gateway_watch", None)
    if watch is not None:
        watch.cancel()
    gateway = getattr(memo, "gateway", None)
    if gateway is not None:
        await gateway.stop()
    receiver = getattr(memo, "receiver", None)
    if receiver is not None:
        await receiver.stop()
    page = getattr(memo, "approval_page", None)
    if page is not None:
        await page.stop()
    await outbox.OUTBOX.stop()
    resolver = getattr(memo, "resolver", None)
    if resolver is not None:
        await resolver.stop()
    await api.default().close()  # the async transport's connections
    trail.TRAIL.close()


@kopf.on.login()
def _login(settings: kopf.OperatorSettings, **_: object) -> kopf.ConnectionInfo | None:
    """``$KUBECONFIG`` read at login time (not at import time), else the in-cluster account."""
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(settings=settings)
    info = kopf.login_with_service_account(settings=settings)
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if info is not None and host and port:
        # As client-go and the Kubernetes client do: the Service's address from the environment,
        # so no cluster DNS is needed to reach the apiserver.
        address = f"[{host}]" if ":" in host else host
        return dataclasses.replace(info, server=f"https://{address}:{port}")
    return info


def check(options: Options) -> None:
    """Refuse a configuration that would fail open, before anything starts (``StartupError``)."""
    if options.audit_port and not options.audit_client_ca:
        raise StartupError(
            "the /audit receiver needs --audit-client-ca (the CA of the apiserver's audit client "
            "certificate) and trusts only the client names of --audit-client-name; without a CA "
            "anyone who reaches the port could revoke sessions. Set it, or turn the receiver off "
            "with --audit-port=0"
        )
    if options.audit_port and not [n for n in options.audit_client_names if n]:
        raise StartupError("the /audit receiver needs at least one --audit-client-name")


def open_audit_trail(options: Options) -> None:
    """Open the signed trail (on unless ``--no-audit-trail``); ``StartupError`` says why not."""
    if options.audit_trail is None:
        return
    log = pathlib.Path(options.audit_trail)
    key = pathlib.Path(options.audit_trail_key or f"{options.audit_trail}.key")
    previous = options.audit_trail_previous_key
    try:
        log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        trail.open_trail(log, key, previous_key_path=pathlib.Path(previous) if previous else None)
    except (OSError, audit_errors.AuditError) as e:
        raise StartupError(
            f"cannot open the audit trail {log}: {e} (choose another place with --audit-trail, "
            "or run without a trail only by saying so: --no-audit-trail)"
        ) from e


async def run(options: Options, stop_flag: asyncio.Event | None = None) -> None:
    """Run until ``stop_flag`` is set (or forever); ``StartupError`` before starting if the
    options would fail open or the audit trail cannot be opened."""
    global _OPTIONS
    memory.tune()  # before any thread allocates
    check(options)
    open_audit_trail(options)
    _OPTIONS = options
    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.json_logs else kopf.LogFormat.FULL,
    )
    logs.install(verbose=options.verbose)
    memory.install_dump(asyncio.get_running_loop())  # off unless AGENT_AUTHORITY_TRACEMALLOC
    if options.metrics_port:
        metrics.serve(options.metrics_port, options.metrics_addr)
    heartbeat = asyncio.create_task(_heartbeat())
    trimming = asyncio.create_task(memory.trimming())
    try:
        await kopf.operator(clusterwide=True, stop_flag=stop_flag, memo=kopf.Memo())
    finally:
        heartbeat.cancel()
        trimming.cancel()


async def _heartbeat() -> None:
    """``/healthz`` is alive while the event loop runs this every second (stale after 30 s)."""
    beat = time.monotonic()
    metrics.HEALTH.live = lambda: time.monotonic() - beat < LIVENESS_STALE
    while True:
        await asyncio.sleep(1)
        beat = time.monotonic()
