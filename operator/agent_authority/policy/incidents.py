"""Incidents that come from the alerting system: alert → severity and class, and admission.

A grant with ``spec.incidents.alertmanager`` opens sessions only for a firing Alertmanager alert;
``spec.incident.id`` is the alert's fingerprint. This module decides, with no I/O:

- :func:`matches` / :func:`unmatched`: whether an alert's labels meet the grant's matchers, as
  Alertmanager matches them (regular expressions are anchored: they match the whole value);
- :func:`incident_of`: the severity and class an alert's labels give (or why they give none);
- :func:`refusal`: whether a session's declared incident may open against what Alertmanager said
  (found, not found, or unreachable: unreachable refuses, fail closed), naming both values when
  the declaration disagrees with the alert;
- :func:`filled`: the severity and class admission writes into a spec that left them out;
- :func:`resolved`: whether a live session's alert has resolved, given what Alertmanager lists.

The caller (``kube.alertmanager``) reads Alertmanager and hands the result in as a
:class:`Lookup`; nothing here trusts a value the agent wrote.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence

from agent_authority.models import grant

__all__ = [
    "Alert",
    "AlertIncident",
    "Lookup",
    "Reason",
    "Refusal",
    "describe",
    "filled",
    "incident_of",
    "matcher_text",
    "matches",
    "refusal",
    "resolved",
    "unmatched",
]

SEVERITIES = {s.value for s in grant.Severity}


class Reason(enum.StrEnum):
    """Machine reasons of an alert-bound admission refusal (also in ``policy.sessions.Reason``)."""

    ALERTMANAGER_UNREACHABLE = "AlertmanagerUnreachable"
    INCIDENT_NOT_FIRING = "IncidentNotFiring"
    ALERT_NOT_MATCHED = "AlertNotMatched"
    ALERT_LABEL_INVALID = "AlertLabelInvalid"
    INCIDENT_DISAGREES_WITH_ALERT = "IncidentDisagreesWithAlert"


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert as Alertmanager's API v2 lists it (only alerts that have not resolved)."""

    fingerprint: str
    labels: Mapping[str, str]
    state: str = "active"
    """``active``, ``suppressed`` (silenced or inhibited, still firing) or ``unprocessed``."""


@dataclasses.dataclass(frozen=True)
class Lookup:
    """What the operator learned from Alertmanager about one fingerprint."""

    url: str
    alert: Alert | None = None
    """The firing alert with that fingerprint, or ``None`` when Alertmanager lists none."""
    error: str | None = None
    """Why Alertmanager could not be asked (then ``alert`` says nothing)."""


@dataclasses.dataclass(frozen=True)
class AlertIncident:
    severity: grant.Severity
    class_: str


@dataclasses.dataclass(frozen=True)
class Refusal:
    reason: Reason
    message: str


def describe(binding: grant.AlertBinding) -> str:
    """One line for people (``grant explain``/``diff``): which alerts, which labels decide."""
    which = (
        "matching " + ", ".join(matcher_text(m) for m in binding.matchers)
        if binding.matchers
        else "of any labels"
    )
    mapping = (
        " (" + ", ".join(f"{k}={v}" for k, v in sorted(binding.severity_values.items())) + ")"
        if binding.severity_values
        else ""
    )
    return (
        f"firing alerts in Alertmanager {binding.url} {which}; severity from label "
        f"'{binding.severity_label}'{mapping}, class from label '{binding.class_label}'"
    )


def matcher_text(m: grant.AlertMatcher) -> str:
    return f'{m.name}{m.match_type.value}"{m.value}"'


def _meets(m: grant.AlertMatcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(m.name, "")  # a missing label matches as the empty string, as upstream
    if m.match_type is grant.AlertMatchType.EQUAL:
        return value == m.value
    if m.match_type is grant.AlertMatchType.NOT_EQUAL:
        return value != m.value
    found = re.fullmatch(m.value, value) is not None
    return found if m.match_type is grant.AlertMatchType.REGEX else not found


def unmatched(
    matchers: Sequence[grant.AlertMatcher], labels: Mapping[str, str]
) -> list[grant.AlertMatcher]:
    """The matchers the labels do not meet (empty: the alert matches)."""
    return [m for m in matchers if not _meets(m, labels)]


def matches(matchers: Sequence[grant.AlertMatcher], labels: Mapping[str, str]) -> bool:
    return not unmatched(matchers, labels)


def incident_of(binding: grant.AlertBinding, alert: Alert) -> AlertIncident | Refusal:
    """Severity and class from the alert's labels, or a refusal naming the label at fault."""
    raw = alert.labels.get(binding.severity_label)
    if raw is None:
        return Refusal(
            Reason.ALERT_LABEL_INVALID,
            f"spec.incident.id: alert {alert.fingerprint} has no label "
            f"'{binding.severity_label}', so its severity is unknown (allowed: an alert "
            f"labelled {binding.severity_label}={_severity_choices(binding)})",
        )
    severity_name = binding.severity_values.get(raw) if binding.severity_values else raw.upper()
    if severity_name is None or str(severity_name) not in SEVERITIES:
        return Refusal(
            Reason.ALERT_LABEL_INVALID,
            f"spec.incident.id: alert {alert.fingerprint} has "
            f'{binding.severity_label}="{raw}", which is no incident severity (allowed: '
            f"{binding.severity_label}={_severity_choices(binding)})",
        )
    class_ = alert.labels.get(binding.class_label)
    if not class_ or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", class_) or len(class_) > 63:
        shown = "no label" if class_ is None else f'{binding.class_label}="{class_}", not'
        return Refusal(
            Reason.ALERT_LABEL_INVALID,
            f"spec.incident.id: alert {alert.fingerprint} has {shown} "
            f"'{binding.class_label}' naming the incident class (allowed: an alert whose "
            f"{binding.class_label} label is a lower-case DNS label such as 'latency')",
        )
    return AlertIncident(grant.Severity(str(severity_name)), class_)


def _severity_choices(binding: grant.AlertBinding) -> str:
    if binding.severity_values:
        return "|".join(sorted(binding.severity_values))
    return "|".join(sorted(SEVERITIES))


def refusal(
    binding: grant.AlertBinding,
    lookup: Lookup,
    *,
    fingerprint: str,
    severity: str | None,
    class_: str | None,
) -> Refusal | None:
    """Whether a session for ``fingerprint`` declaring ``severity``/``class_`` is refused.

    ``None`` for a declared value means "left out" (admission fills it from the alert). The order:
    Alertmanager reachable, the alert firing, the grant's matchers, the labels, the declaration.
    """
    where = f"Alertmanager {binding.url}"
    if lookup.error is not None:
        return Refusal(
            Reason.ALERTMANAGER_UNREACHABLE,
            f"spec.incident.id: the grant requires a firing alert, but {where} could not be "
            f"asked ({lookup.error}), so the session is refused (fail closed; allowed: retry "
            "once Alertmanager answers)",
        )
    alert = lookup.alert
    if alert is None:
        return Refusal(
            Reason.INCIDENT_NOT_FIRING,
            f"spec.incident.id: '{fingerprint}' is not the fingerprint of a firing alert in "
            f"{where} (allowed: the fingerprint of an alert that fires now)",
        )
    missed = unmatched(binding.matchers, alert.labels)
    if missed:
        return Refusal(
            Reason.ALERT_NOT_MATCHED,
            f"spec.incident.id: alert {alert.fingerprint} does not meet the grant's "
            f"spec.incidents.alertmanager.matchers: {', '.join(matcher_text(m) for m in missed)} "
            f"(allowed: alerts matching {', '.join(matcher_text(m) for m in binding.matchers)})",
        )
    incident = incident_of(binding, alert)
    if isinstance(incident, Refusal):
        return incident
    if severity is not None and severity != incident.severity.value:
        return Refusal(
            Reason.INCIDENT_DISAGREES_WITH_ALERT,
            f"spec.incident.severity: declared {severity}, but alert {alert.fingerprint} has "
            f"severity {incident.severity.value} (label {binding.severity_label}="
            f'"{alert.labels[binding.severity_label]}"); the alert decides (allowed: '
            f"{incident.severity.value}, or leave it out)",
        )
    if class_ is not None and class_ != incident.class_:
        return Refusal(
            Reason.INCIDENT_DISAGREES_WITH_ALERT,
            f"spec.incident.class: declared '{class_}', but alert {alert.fingerprint} has class "
            f"'{incident.class_}' (label {binding.class_label}); the alert decides (allowed: "
            f"'{incident.class_}', or leave it out)",
        )
    return None


def filled(
    binding: grant.AlertBinding, lookup: Lookup, incident: Mapping[str, object]
) -> dict[str, str]:
    """The incident fields admission sets from the alert: those the spec left out.

    Nothing when the alert cannot be read or gives no incident: validation then refuses.
    """
    if lookup.alert is None or lookup.error is not None:
        return {}
    found = incident_of(binding, lookup.alert)
    if isinstance(found, Refusal):
        return {}
    values = {"severity": found.severity.value, "class": found.class_}
    return {key: value for key, value in values.items() if not incident.get(key)}


def resolved(fingerprint: str, firing: Sequence[Alert]) -> bool:
    """Whether the alert ``fingerprint`` resolved: Alertmanager no longer lists it as firing."""
    return all(alert.fingerprint != fingerprint for alert in firing)
