"""The metrics the operator exports: names, build info, and the one-line wiring helpers."""

from __future__ import annotations

import asyncio
import datetime

import kopf
import prometheus_client
import pytest

from agent_authority import __version__, metrics
from agent_authority.webhooks import refusals


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    found = prometheus_client.REGISTRY.get_sample_value(name, labels or {})
    return float(found or 0)


def test_request_transitions_are_named_as_transitions() -> None:
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert "agent_authority_remediation_request_transitions" in names
    assert "agent_authority_remediation_requests" not in names
    assert metrics.REQUESTS is metrics.REQUEST_TRANSITIONS


def test_build_info_names_the_version() -> None:
    samples = [
        s
        for m in prometheus_client.REGISTRY.collect()
        if m.name == "agent_authority_build_info"
        for s in m.samples
    ]
    assert [s.labels["version"] for s in samples] == [__version__]
    assert samples[0].value == 1


def test_audit_trail_write_failures_are_counted_and_reraised() -> None:
    @metrics.counts_failures(metrics.AUDIT_TRAIL_WRITE_FAILURES)
    async def failing() -> None:
        raise OSError("disk full")

    before = _value("agent_authority_audit_trail_write_failures_total")
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(failing())
    assert _value("agent_authority_audit_trail_write_failures_total") == before + 1


def test_audit_webhook_lag_is_observed_from_the_request_time() -> None:
    before = _value("agent_authority_audit_webhook_lag_seconds_count")
    total = _value("agent_authority_audit_webhook_lag_seconds_sum")
    now = datetime.datetime(2026, 1, 1, 0, 0, 2, tzinfo=datetime.UTC)
    metrics.observe_audit_lag({"requestReceivedTimestamp": "2026-01-01T00:00:00.500000Z"}, now)
    metrics.observe_audit_lag({"requestReceivedTimestamp": "not a time"}, now)
    metrics.observe_audit_lag({}, now)
    assert _value("agent_authority_audit_webhook_lag_seconds_count") == before + 1
    assert _value("agent_authority_audit_webhook_lag_seconds_sum") == pytest.approx(total + 1.5)


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        pytest.param(
            "SeverityNotAllowed: SEV4 is not allowed", 403, "SeverityNotAllowed", id="code"
        ),
        pytest.param("spec is not a valid IncidentSession spec: x", 422, "Invalid", id="422"),
        pytest.param("self-approval refused", 403, "Forbidden", id="403"),
        pytest.param("Weird", None, "Refused", id="other"),
    ],
)
def test_refusal_reason_labels_stay_a_small_set(
    message: str, code: int | None, reason: str
) -> None:
    assert refusals.reason_of(message, code) == reason


def test_admission_refusals_are_counted_by_kind_and_reason() -> None:
    @refusals.counted("IncidentSession")
    async def handler() -> None:
        raise kopf.AdmissionError("TtlTooLong: 7200 s is over the grant's 3600 s", code=403)

    labels = {"kind": "IncidentSession", "reason": "TtlTooLong"}
    before = _value("agent_authority_admission_refusals_total", labels)
    with pytest.raises(kopf.AdmissionError):
        asyncio.run(handler())
    assert _value("agent_authority_admission_refusals_total", labels) == before + 1
