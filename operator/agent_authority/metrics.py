"""Every Prometheus metric of the operator, declared in one place.

Names follow Prometheus conventions (``agent_authority_`` prefix, ``_total`` counters, base units).
Other modules import this module and call ``metrics.X.labels(...).inc()``; nothing else declares
metrics. Two helpers keep the wiring to one line where a metric is counted: the decorator
:func:`counts_failures` and :func:`observe_audit_lag`.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import platform
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import prometheus_client

from agent_authority import __version__

P = ParamSpec("P")
T = TypeVar("T")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)

ACTIVE_SESSIONS = prometheus_client.Gauge(
    "agent_authority_active_sessions", "IncidentSessions currently Active", ["grant"]
)
TOKENS_MINTED = prometheus_client.Counter(
    "agent_authority_tokens_minted_total", "Session tokens minted with the TokenRequest API"
)
TOKENS_ROTATED = prometheus_client.Counter(
    "agent_authority_tokens_rotated_total", "Session tokens rotated before their expiry"
)
REVOCATIONS = prometheus_client.Counter(
    "agent_authority_revocations_total", "Sessions that lost their access, by reason", ["reason"]
)
REVOCATION_LATENCY = prometheus_client.Histogram(
    "agent_authority_revocation_latency_seconds",
    "From the revoking event being observed to the session's RoleBindings being deleted",
    buckets=_LATENCY_BUCKETS,
)
SESSION_READY_LATENCY = prometheus_client.Histogram(
    "agent_authority_session_ready_latency_seconds",
    "From a session's creation to its token being stored",
    buckets=_LATENCY_BUCKETS,
)
REQUEST_TRANSITIONS = prometheus_client.Counter(
    "agent_authority_remediation_request_transitions_total",
    "RemediationRequest phase transitions, by the phase entered and the action",
    ["phase", "action"],
)
REQUESTS = REQUEST_TRANSITIONS
"""The old Python name of :data:`REQUEST_TRANSITIONS` (the metric counts transitions)."""
APPROVAL_WAIT = prometheus_client.Histogram(
    "agent_authority_approval_wait_seconds",
    "From a request awaiting approval to its decision",
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200),
)
APPLY_DURATION = prometheus_client.Histogram(
    "agent_authority_apply_duration_seconds",
    "Time to apply an approved remediation",
    ["action"],
    buckets=_LATENCY_BUCKETS,
)
DEVIATIONS = prometheus_client.Counter(
    "agent_authority_deviations_total",
    "Denied or out-of-scope actions attributed to a session, by source",
    ["source"],
)

GATEWAY_REQUESTS = prometheus_client.Counter(
    "agent_authority_gateway_requests_total",
    "Session requests answered by the session gateway, by grant, verb and HTTP status code",
    ["grant", "verb", "code"],
)
GATEWAY_STREAMS = prometheus_client.Gauge(
    "agent_authority_gateway_open_streams",
    "Streamed responses (watches, followed logs, chunked lists) the gateway holds open",
)
GATEWAY_REFUSALS = prometheus_client.Counter(
    "agent_authority_gateway_refusals_total",
    "Requests the session gateway refused itself, by reason",
    ["reason"],
)
GATEWAY_CUT_STREAMS = prometheus_client.Counter(
    "agent_authority_gateway_cut_streams_total",
    "Open streams the gateway closed because their session lost access",
)


# -- notifications (issue 12) -------------------------------------------------------------------
NOTIFICATIONS = prometheus_client.Counter(
    "agent_authority_notifications_total",
    "Notices by receiver and outcome: delivered, dropped (retries exhausted), overflow "
    "(queue full)",
    ["receiver", "outcome"],
)
NOTIFICATION_FAILURES = prometheus_client.Counter(
    "agent_authority_notification_attempt_failures_total",
    "Failed delivery attempts (connection error, timeout, non-2xx), by receiver",
    ["receiver"],
)
NOTIFICATION_QUEUE = prometheus_client.Gauge(
    "agent_authority_notification_queue_length", "Notices waiting for delivery", ["receiver"]
)


BUILD_INFO = prometheus_client.Gauge(
    "agent_authority_build_info",
    "Always 1; the labels say which build of the operator is running",
    ["version", "python_version"],
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
ADMISSION_REFUSALS = prometheus_client.Counter(
    "agent_authority_admission_refusals_total",
    "Objects the admission webhooks refused, by kind and reason",
    ["kind", "reason"],
)
AUDIT_TRAIL_WRITE_FAILURES = prometheus_client.Counter(
    "agent_authority_audit_trail_write_failures_total",
    "Records that could not be appended to the signed audit trail",
)
AUDIT_WEBHOOK_LAG = prometheus_client.Histogram(
    "agent_authority_audit_webhook_lag_seconds",
    "From the apiserver receiving a request to its audit event reaching the operator",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


def counts_failures(
    counter: prometheus_client.Counter,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a coroutine function: every exception it raises is counted, then re-raised."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await fn(*args, **kwargs)
            except Exception:
                counter.inc()
                raise

        return wrapper

    return decorate


def observe_audit_lag(event: Mapping[str, Any], now: datetime.datetime | None = None) -> None:
    """Observe how late an audit event arrived (``requestReceivedTimestamp`` to now)."""
    stamp = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    if not isinstance(stamp, str):
        return
    try:
        received = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return
    if received.tzinfo is None:
        return
    lag = ((now or datetime.datetime.now(datetime.UTC)) - received).total_seconds()
    AUDIT_WEBHOOK_LAG.observe(max(lag, 0.0))


class Health:
    """What ``/healthz`` and ``/readyz`` answer; the runtime flips these as the operator starts."""

    def __init__(self) -> None:
        self.live: Callable[[], bool] = lambda: True
        self.ready: Callable[[], bool] = lambda: False


HEALTH = Health()


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/metrics`` (Prometheus text), ``/healthz`` (alive), ``/readyz`` (serving); else 404."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(
                200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST
            )
        elif path == "/healthz":
            ok = _safely(HEALTH.live)
            self._reply(200 if ok else 503, b"ok\n" if ok else b"not alive\n")
        elif path == "/readyz":
            ok = _safely(HEALTH.ready)
            self._reply(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
        else:
            self._reply(404, b"not found: /metrics, /healthz and /readyz are served here\n")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes every few seconds are not worth a log line."""


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # a failing check means "no", never a crashed server
        return False


def serve(port: int, addr: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``addr:port`` from a daemon thread."""
    server = http.server.ThreadingHTTPServer((addr, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
