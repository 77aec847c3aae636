"""Every Prometheus metric of the operator, declared in one place.

Names follow Prometheus conventions (``agent_authority_`` prefix, ``_total`` counters, base units).
Other modules import this module and call ``metrics.X.labels(...).inc()``; nothing else declares
metrics.
"""

from __future__ import annotations

import prometheus_client

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
REQUESTS = prometheus_client.Counter(
    "agent_authority_remediation_requests_total",
    "RemediationRequest phase transitions, by phase and action",
    ["phase", "action"],
)
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


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``addr:port`` from a background thread."""
    prometheus_client.start_http_server(port, addr=addr)
