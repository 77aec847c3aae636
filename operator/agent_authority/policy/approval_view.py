"""What the approval page offers a signed-in person on a request, and why it offers nothing.

The page never shows a button the approval webhook would refuse. It asks the same questions in
the same order as the webhook (``webhooks/requests.py``): is the request still waiting, does the
person hold the RBAC verb ``approve`` on the grant (the caller answers that with a
SelfSubjectAccessReview as the person), and do the rules of :mod:`policy.approvals` allow this
person (requester, session identities, operator, each approver once). When no button is shown,
:attr:`Offer.why` is the reason in the webhook's words. The webhook stays the authority: a
forged form still goes to the apiserver as the person and is refused there.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime

from agent_authority.models import GROUP, base, request
from agent_authority.policy import approvals

WAITING = request.RequestPhase.AWAITING_APPROVAL.value
UNDECIDED = (None, request.RequestPhase.PENDING.value, WAITING)


@dataclasses.dataclass(frozen=True)
class Offer:
    """Whether the approve/deny buttons are shown; if not, why not."""

    decide: bool
    why: str = ""


def not_an_approver(username: str, grant_name: str) -> str:
    """The refusal for someone without the ``approve`` verb on the grant (as the webhook says)."""
    return (
        f"{username} may not approve or deny requests under grant {grant_name!r}: RBAC verb "
        f"'approve' on agentgrants.{GROUP} with resourceName {grant_name!r} is required"
    )


def offer(
    *,
    phase: str | None,
    person: base.UserInfo,
    may_approve: bool,
    grant_name: str,
    requester: base.UserInfo | None,
    session_identities: collections.abc.Collection[str],
    operator_username: str,
    existing: collections.abc.Sequence[request.Approval],
) -> Offer:
    """The buttons for ``person`` on a request in ``phase`` (see the module docstring)."""
    if phase != WAITING:
        shown = phase or "Pending"
        if phase in UNDECIDED:
            return Offer(False, f"not yet waiting for approval: the request is {shown}")
        return Offer(False, f"already decided: the request is {shown}; nothing can be added")
    if not may_approve:
        return Offer(False, not_an_approver(person.username, grant_name))
    candidate = request.Approval(
        decision=request.ApprovalDecision.APPROVE, reason="(preview)", approver=person
    )
    refusal = approvals.check_new_approval(
        candidate,
        existing,
        requester,
        session_identities,
        operator_username,
        already_decided=False,
    )
    if refusal is not None:
        return Offer(False, f"{refusal.reason.value}: {refusal.message}")
    return Offer(True)


def progress(
    given: collections.abc.Sequence[request.Approval],
    required: int | None,
    ignored: collections.abc.Collection[str] = (),
) -> str:
    """``"1 of 2"``: distinct approvals that count so far, of those required."""
    needed = required or 1
    counted = approvals.tally(given, needed, ignored=ignored)
    return f"{len(counted.approvers)} of {needed}"


def age(since: datetime.datetime, now: datetime.datetime) -> str:
    """A short age as ``kubectl`` prints it: ``45s``, ``12m``, ``3h``, ``2d``."""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
