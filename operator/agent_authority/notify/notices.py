"""What is announced: one :class:`Notice` per event worth telling an approver about.

Pure: built from the object bodies the controllers already hold; no I/O, no clock of its own.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from agent_authority.models import request

P = request.RequestPhase


class Kind(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting-approval"
    DECIDED = "decided"
    APPLIED = "applied"
    FAILED = "failed"
    SESSION_REVOKED = "session-revoked"


@dataclasses.dataclass(frozen=True)
class Notice:
    """One announcement; ``path`` is the page of the object, joined to the page's URL."""

    kind: Kind
    title: str
    text: str
    namespace: str
    name: str
    object_kind: str
    facts: tuple[tuple[str, str], ...] = ()
    path: str = ""


def _target(spec: dict[str, Any]) -> str:
    target = spec["action"]["target"]
    where = f"{target['namespace']}/" if target.get("namespace") else ""
    return f"{target['kind']}/{where}{target['name']}"


def _kind_of(to: request.RequestPhase, reason: str) -> tuple[Kind, str] | None:
    if to is P.AWAITING_APPROVAL:
        return Kind.AWAITING_APPROVAL, "waiting for approval"
    if to is P.APPROVED and reason == "Approved":
        return Kind.DECIDED, "approved"
    if to is P.DENIED:
        return Kind.DECIDED, "denied by an approver" if reason == "DeniedByApprover" else "denied"
    if to is P.EXPIRED:
        return Kind.DECIDED, "expired without a decision"
    if to is P.SUCCEEDED:
        return Kind.APPLIED, "applied"
    if to is P.FAILED:
        return Kind.FAILED, "failed"
    return None


def for_request(
    body: dict[str, Any], to: request.RequestPhase, reason: str, message: str
) -> Notice | None:
    """The notice of a request moving to ``to`` (None for steps nobody needs to hear about)."""
    found = _kind_of(to, reason)
    if found is None:
        return None
    kind, what = found
    meta, spec = body["metadata"], body["spec"]
    status = body.get("status") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    facts = [
        ("Action", f"{spec['action']['type']} {_target(spec)}"),
        ("Request", f"{namespace}/{name}"),
        ("Session", str(spec["sessionRef"]["name"])),
        ("Reason", f"{reason}: {message}"),
    ]
    if to is P.AWAITING_APPROVAL:
        facts.append(("Approvals needed", str(status.get("requiredApprovals") or "?")))
        facts.append(("Hypothesis", str(spec.get("hypothesis", ""))[:300]))
    return Notice(
        kind=kind,
        title=f"{spec['action']['type']} {_target(spec)}: {what}",
        text=message,
        namespace=namespace,
        name=name,
        object_kind="RemediationRequest",
        facts=tuple(facts),
        path=f"/requests/{namespace}/{name}",
    )


def for_revoked_session(body: dict[str, Any], reason: str, message: str) -> Notice:
    """The notice of a session whose access was revoked (deviation, grant gone or narrowed)."""
    meta, spec = body["metadata"], body["spec"]
    incident = spec.get("incident") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    return Notice(
        kind=Kind.SESSION_REVOKED,
        title=f"session {namespace}/{name} revoked: {reason}",
        text=message,
        namespace=namespace,
        name=name,
        object_kind="IncidentSession",
        facts=(
            ("Session", f"{namespace}/{name}"),
            ("Grant", str((spec.get("grantRef") or {}).get("name", ""))),
            ("Incident", f"{incident.get('id', '?')} {incident.get('severity', '')}".strip()),
            ("Agent", str((spec.get("requester") or {}).get("username", "?"))),
            ("Reason", f"{reason}: {message}"),
        ),
        path=f"/?namespace={namespace}",
    )
