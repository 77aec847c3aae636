"""Incidents from Alertmanager: matchers, labels → severity/class, admission refusals."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import base, grant, session
from agent_authority.policy import incidents, sessions

URL = "http://127.0.0.1:9093"
FP = "3f2a9c0d1e4b5a67"
LABELS = {"alertname": "CheckoutLatency", "severity": "SEV3", "class": "latency", "team": "shop"}


def binding(**fields: Any) -> grant.AlertBinding:
    body: dict[str, Any] = {"url": URL, "matchers": [{"name": "team", "value": "shop"}]}
    body.update(fields)
    return grant.AlertBinding.model_validate(body)


def firing(labels: dict[str, str] | None = None) -> incidents.Lookup:
    return incidents.Lookup(
        URL, alert=incidents.Alert(FP, labels if labels is not None else LABELS)
    )


def matcher(name: str, value: str, match_type: str = "=") -> grant.AlertMatcher:
    return grant.AlertMatcher.model_validate(
        {"name": name, "value": value, "matchType": match_type}
    )


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        pytest.param(matcher("team", "shop"), True, id="equal-matches"),
        pytest.param(matcher("team", "web"), False, id="equal-differs"),
        pytest.param(matcher("team", "web", "!="), True, id="not-equal-matches"),
        pytest.param(matcher("alertname", "Checkout.*", "=~"), True, id="regex-matches"),
        pytest.param(matcher("alertname", "Checkout", "=~"), False, id="regex-is-anchored"),
        pytest.param(matcher("alertname", "Disk.*", "!~"), True, id="negative-regex-matches"),
        pytest.param(matcher("missing", ""), True, id="missing-label-is-empty-string"),
    ],
)
def test_matchers_match_as_alertmanager_does(m: grant.AlertMatcher, expected: bool) -> None:
    assert incidents.matches([m], LABELS) is expected


def test_a_matcher_with_a_broken_regex_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        matcher("team", "(", "=~")


@pytest.mark.parametrize(
    ("b", "labels", "expected"),
    [
        pytest.param(binding(), LABELS, ("SEV3", "latency"), id="sev-label-verbatim"),
        pytest.param(
            binding(), {**LABELS, "severity": "sev1"}, ("SEV1", "latency"), id="case-folded"
        ),
        pytest.param(
            binding(severityValues={"critical": "SEV1", "warning": "SEV3"}),
            {**LABELS, "severity": "critical"},
            ("SEV1", "latency"),
            id="mapped-value",
        ),
        pytest.param(
            binding(severityLabel="priority", classLabel="alertclass"),
            {"priority": "SEV2", "alertclass": "capacity"},
            ("SEV2", "capacity"),
            id="custom-labels",
        ),
    ],
)
def test_severity_and_class_come_from_the_labels(
    b: grant.AlertBinding, labels: dict[str, str], expected: tuple[str, str]
) -> None:
    found = incidents.incident_of(b, incidents.Alert(FP, labels))
    assert isinstance(found, incidents.AlertIncident)
    assert (found.severity.value, found.class_) == expected


@pytest.mark.parametrize(
    ("b", "labels", "fragment"),
    [
        pytest.param(binding(), {"class": "latency"}, "has no label 'severity'", id="no-severity"),
        pytest.param(
            binding(),
            {**LABELS, "severity": "critical"},
            'severity="critical"',
            id="unknown-severity",
        ),
        pytest.param(
            binding(severityValues={"critical": "SEV1"}),
            LABELS,
            "allowed: severity=critical",
            id="unmapped-severity",
        ),
        pytest.param(binding(), {"severity": "SEV3"}, "no label 'class'", id="no-class"),
        pytest.param(
            binding(), {**LABELS, "class": "Not A Label"}, "lower-case DNS label", id="bad-class"
        ),
    ],
)
def test_labels_that_give_no_incident_are_refused(
    b: grant.AlertBinding, labels: dict[str, str], fragment: str
) -> None:
    found = incidents.incident_of(b, incidents.Alert(FP, labels))
    assert isinstance(found, incidents.Refusal)
    assert found.reason is incidents.Reason.ALERT_LABEL_INVALID
    assert fragment in found.message


@pytest.mark.parametrize(
    ("lookup", "severity", "class_", "reason", "fragments"),
    [
        pytest.param(firing(), None, None, None, [], id="left-out-is-filled-later"),
        pytest.param(firing(), "SEV3", "latency", None, [], id="agreeing-declaration"),
        pytest.param(
            firing(),
            "SEV1",
            None,
            incidents.Reason.INCIDENT_DISAGREES_WITH_ALERT,
            ["declared SEV1", "severity SEV3"],
            id="declared-sev1-vs-sev3-alert-names-both",
        ),
        pytest.param(
            firing(),
            None,
            "crashloop",
            incidents.Reason.INCIDENT_DISAGREES_WITH_ALERT,
            ["declared 'crashloop'", "class 'latency'"],
            id="declared-class-disagrees",
        ),
        pytest.param(
            incidents.Lookup(URL),
            None,
            None,
            incidents.Reason.INCIDENT_NOT_FIRING,
            [FP, "not the fingerprint of a firing alert"],
            id="not-firing",
        ),
        pytest.param(
            incidents.Lookup(URL, error="connection refused"),
            "SEV3",
            None,
            incidents.Reason.ALERTMANAGER_UNREACHABLE,
            ["connection refused", "fail closed"],
            id="unreachable-fails-closed",
        ),
        pytest.param(
            firing({**LABELS, "team": "web"}),
            None,
            None,
            incidents.Reason.ALERT_NOT_MATCHED,
            ['team="shop"'],
            id="alert-outside-the-grant-matchers",
        ),
    ],
)
def test_refusal(
    lookup: incidents.Lookup,
    severity: str | None,
    class_: str | None,
    reason: incidents.Reason | None,
    fragments: list[str],
) -> None:
    found = incidents.refusal(binding(), lookup, fingerprint=FP, severity=severity, class_=class_)
    if reason is None:
        assert found is None
        return
    assert found is not None
    assert found.reason is reason
    for fragment in fragments:
        assert fragment in found.message


@pytest.mark.parametrize(
    ("incident", "lookup", "expected"),
    [
        pytest.param(
            {"id": FP}, firing(), {"severity": "SEV3", "class": "latency"}, id="both-left-out"
        ),
        pytest.param(
            {"id": FP, "severity": "SEV3"}, firing(), {"class": "latency"}, id="class-left-out"
        ),
        pytest.param(
            {"id": FP}, incidents.Lookup(URL, error="down"), {}, id="nothing-when-unreachable"
        ),
        pytest.param({"id": FP}, incidents.Lookup(URL), {}, id="nothing-when-not-firing"),
    ],
)
def test_filled(
    incident: dict[str, str], lookup: incidents.Lookup, expected: dict[str, str]
) -> None:
    assert incidents.filled(binding(), lookup, incident) == expected


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        pytest.param([incidents.Alert(FP, LABELS)], False, id="still-listed-is-firing"),
        pytest.param([incidents.Alert("other", LABELS)], True, id="gone-is-resolved"),
        pytest.param([], True, id="empty-list-is-resolved"),
    ],
)
def test_resolved(listed: list[incidents.Alert], expected: bool) -> None:
    assert incidents.resolved(FP, listed) is expected


BOT = base.UserInfo(username="system:serviceaccount:agents:sre-bot")


def _spec(severity: str) -> session.IncidentSessionSpec:
    return session.IncidentSessionSpec.model_validate(
        {
            "grantRef": {"name": "alerts"},
            "incident": {"id": FP, "severity": severity, "class": "latency"},
            "purpose": "triage",
            "requester": BOT.to_api(),
        }
    )


def _ctx(lookup: incidents.Lookup | None) -> sessions.SessionContext:
    spec = grant.AgentGrantSpec.model_validate(
        {
            "subjects": [{"kind": "ServiceAccount", "namespace": "agents", "name": "sre-bot"}],
            "incidents": {
                "severities": ["SEV1", "SEV2", "SEV3"],
                "alertmanager": {"url": URL, "matchers": [{"name": "team", "value": "shop"}]},
            },
            "read": [{"name": "pods", "namespaces": ["shop"], "resources": ["pods"]}],
        }
    )
    return sessions.SessionContext(
        grant=spec, grant_name="alerts", grant_valid=True, active_sessions=0, alert=lookup
    )


@pytest.mark.parametrize(
    ("severity", "lookup", "reason"),
    [
        pytest.param("SEV3", firing(), sessions.Reason.ADMITTED, id="matching-alert-admits"),
        pytest.param(
            "SEV1",
            firing(),
            sessions.Reason.INCIDENT_DISAGREES_WITH_ALERT,
            id="sev1-vs-sev3-refused",
        ),
        pytest.param(
            "SEV3",
            incidents.Lookup(URL, error="timeout"),
            sessions.Reason.ALERTMANAGER_UNREACHABLE,
            id="unreachable-refused",
        ),
        pytest.param(
            "SEV3", None, sessions.Reason.ALERTMANAGER_UNREACHABLE, id="not-asked-refused"
        ),
    ],
)
def test_admission_of_an_alert_bound_grant(
    severity: str, lookup: incidents.Lookup | None, reason: sessions.Reason
) -> None:
    assert sessions.admit(BOT, _spec(severity), _ctx(lookup)).reason is reason
