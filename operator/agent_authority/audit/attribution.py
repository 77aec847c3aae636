"""What a record says beyond what its caller passes: who asked, who decided, which transition.

Pure functions of the event, its reason and the object the record is about; no I/O.

- :func:`requested_by`: the object's stamped ``spec.requester`` (the identity admission wrote,
  never a client's claim).
- :func:`decided_by`: a person's approvals or denials (with their reasons) when the decision was
  theirs, else the policy.
- :func:`record_id`: a deterministic id per transition. A crash between the audit append and the
  status patch replays the transition; the replay computes the same id, and the chain skips an id
  it already holds, so the trail says what happened exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from agent_authority.models import audit as models

E = models.AuditEvent
POLICY = "agent-authority"
"""The name the policy decides under (the operator enforcing the grant)."""

PERSON_DECISIONS: Mapping[tuple[E, str], str] = {
    (E.REQUEST_APPROVED, "Approved"): "approve",
    (E.REQUEST_DENIED, "DeniedByApprover"): "deny",
}
"""(event, reason) pairs decided by people, and which of their decisions made them."""

CLIENT_ACTS = frozenset({(E.SESSION_ENDED, "Ended")})
"""Transitions a client asked for directly (``spec.ended``): nobody decided anything."""

ONCE_PER_OBJECT = frozenset(
    {
        E.SESSION_OPENED,
        E.TOKEN_MINTED,
        E.REQUEST_EVALUATED,
        E.REQUEST_APPROVED,
        E.REQUEST_DENIED,
        E.REQUEST_APPLIED,
        E.REQUEST_FAILED,
        E.REQUEST_ROLLED_BACK,
        E.REQUEST_EXPIRED,
        E.REQUEST_CANCELLED,
    }
)
SESSION_TERMINAL = frozenset(
    {E.SESSION_DENIED, E.SESSION_ENDED, E.SESSION_EXPIRED, E.SESSION_REVOKED}
)
"""A session reaches one terminal phase, once: whichever of these comes first is the record."""


def requested_by(body: Mapping[str, Any]) -> str | None:
    spec = body.get("spec")
    requester = spec.get("requester") if isinstance(spec, Mapping) else None
    name = requester.get("username") if isinstance(requester, Mapping) else None
    return str(name)[:512] if name else None


def decided_by(
    event: E, reason: str, message: str, body: Mapping[str, Any]
) -> list[models.Decider]:
    """The people whose decisions made this transition, else the policy; [] for client acts."""
    if (event, reason) in CLIENT_ACTS:
        return []
    wanted = PERSON_DECISIONS.get((event, reason))
    if wanted is not None:
        status = body.get("status")
        approvals = status.get("approvals") if isinstance(status, Mapping) else None
        people = [
            models.Decider(
                kind=models.DeciderKind.PERSON,
                name=str((a.get("approver") or {}).get("username") or "unknown")[:512],
                reason=str(a.get("reason") or "")[:4096],
            )
            for a in (approvals if isinstance(approvals, list) else [])
            if isinstance(a, Mapping) and a.get("decision") == wanted
        ]
        if people:
            return people
    return [models.Decider(kind=models.DeciderKind.POLICY, name=POLICY, reason=message[:4096])]


def discriminator(
    event: E, body: Mapping[str, Any], details: Mapping[str, Any], key: str | None
) -> str | None:
    """What tells two records of ``event`` about one object apart; None: never de-duplicated."""
    if key is not None:
        return key
    if event in ONCE_PER_OBJECT:
        return ""
    if event in SESSION_TERMINAL:
        return "terminal"
    status = _mapping(body.get("status"))
    if event is E.TOKEN_ROTATED:
        # The rotation that replaces the token rotated at this time (a replay sees the same one).
        return f"after:{status.get('tokenRotatedAt') or status.get('tokenExpiresAt') or ''}"
    if event is E.DEVIATION_DETECTED:
        audit_id, request = details.get("auditID"), details.get("request")
        if audit_id:
            return f"audit:{audit_id}"
        return f"request:{request}" if request else None
    if event in (E.GRANT_COMPILED, E.GRANT_REJECTED):
        generation = details.get("generation")
        return f"generation:{generation}" if generation is not None else None
    return None


def record_id(
    event: E,
    body: Mapping[str, Any],
    *,
    correlation_id: str,
    details: Mapping[str, Any],
    key: str | None = None,
) -> str | None:
    """32 hex digits naming this transition, or None when the event has no natural identity."""
    which = discriminator(event, body, details, key)
    if which is None:
        return None
    meta = _mapping(body.get("metadata"))
    subject = str(meta.get("uid") or f"{correlation_id}/{meta.get('namespace')}/{meta.get('name')}")
    kind = "SessionTerminal" if event in SESSION_TERMINAL and key is None else event.value
    text = "\x00".join([subject, kind, which])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
