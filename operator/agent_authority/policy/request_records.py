"""Which decisions a RemediationRequest's status commits, in the order they were made.

Every decision about a request (evaluated, approved, denied, applied, failed, ...) has one audit
record, written right after the status write that commits it, and before anything else happens
to the request or its target. One status write may commit two decisions: the approval and the
start of the apply are one write (``AwaitingApproval`` or ``Pending`` → ``Applying`` with the
``Approved`` condition set, :data:`PASSABLE`), as are the approval and its refusal at apply time
(→ ``Failed`` with ``Approved`` set). A crash between a write and its records leaves decisions in
the status that are not in the trail yet; before a restarted operator acts on a request it
records :func:`committed` of its status, in order (record ids make the records the trail holds
already no-ops).

Pure: the caller reads the status and writes the records.
"""

from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any

from agent_authority.models import request

P = request.RequestPhase

DECISIONS = frozenset(
    {
        P.DENIED,
        P.AWAITING_APPROVAL,
        P.APPROVED,
        P.SUCCEEDED,
        P.FAILED,
        P.EXPIRED,
        P.CANCELLED,
        P.ROLLED_BACK,
    }
)
"""Phases whose transition is a decision with a record of its own (``Applying`` is a step)."""

PASSABLE = frozenset({P.APPROVED})
"""Phases one status write may pass through on its way to the next one: the write sets the
passed phase's condition (``Approved``) and commits its decision along with the new phase."""

CONDITION = {P.APPROVED: "Approved", P.DENIED: "Denied"}
"""The set-once condition a decision phase sets."""


@dataclasses.dataclass(frozen=True)
class Committed:
    """One decision a status commits: the phase it moved to, its reason and message."""

    phase: request.RequestPhase
    reason: str
    message: str


def _condition(conditions: object, type_: str) -> collections.abc.Mapping[str, Any] | None:
    if not isinstance(conditions, list):
        return None
    for c in conditions:
        if isinstance(c, collections.abc.Mapping) and c.get("type") == type_:
            return c
    return None


def committed(status: collections.abc.Mapping[str, Any]) -> list[Committed]:
    """The decisions ``status`` commits, oldest first (module docstring).

    The phase's own decision carries ``status.reason`` and the ``Ready`` condition's message;
    a passed ``Approved`` carries its condition's reason and message.
    """
    try:
        phase = request.RequestPhase(str(status.get("phase") or ""))
    except ValueError:
        return []
    conditions = status.get("conditions")
    out: list[Committed] = []
    for passed in sorted(PASSABLE):
        held = _condition(conditions, CONDITION[passed])
        if phase is not passed and held is not None and held.get("status") == "True":
            out.append(
                Committed(passed, str(held.get("reason") or passed), str(held.get("message") or ""))
            )
    if phase in DECISIONS:
        ready = _condition(conditions, "Ready") or {}
        out.append(
            Committed(phase, str(status.get("reason") or phase), str(ready.get("message") or ""))
        )
    return out


def may_pass(
    origin: request.RequestPhase | None, passed: request.RequestPhase, to: request.RequestPhase
) -> bool:
    """Whether one status write may move a request from ``origin`` through ``passed`` to ``to``:
    only an approval (by people from ``AwaitingApproval``, by policy from ``Pending``) on its way
    to the apply (``Applying``) or to its refusal at apply time (``Failed``)."""
    return (
        passed in PASSABLE
        and origin in (None, P.PENDING, P.AWAITING_APPROVAL)
        and to in (P.APPLYING, P.FAILED)
    )
