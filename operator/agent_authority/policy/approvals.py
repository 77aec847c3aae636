"""Approvals of RemediationRequests: who may add one, how they add up, when waiting ends.

Used by the admission webhook (:func:`check_new_approval` on each status write that appends an
approval) and by the controller (:func:`tally` to set the ``Approved``/``Denied`` conditions,
:func:`expired` to give up waiting). Whether someone may approve under a grant at all is RBAC
(a SubjectAccessReview for verb ``approve`` on the grant), checked by the caller; this module
holds the rules RBAC cannot express.

Rules for a new approval or denial (the same for both: only an independent human's decision is
recorded; withdrawing a request is cancelling it, not denying it):

- it must carry the approver identity the webhook stamped;
- nothing is added once the request is decided (``Approved``/``Denied`` are set once);
- the operator's own identity never decides (it applies what others approve);
- the requester (``spec.requester``) never decides its own request;
- no identity acting for a session decides: the caller passes the usernames of the session's
  ServiceAccount and of whoever opened it (and of its parent sessions). Identities are compared by
  exact username, nothing is inferred from a ``system:serviceaccount:`` prefix;
- each approver decides once: a second approval or denial by the same username is refused.

Counting (:func:`tally`): distinct approvers by username, in list order; the first moment the
request has ``required`` distinct approvals it is approved, and any denial before that is final.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import enum

from agent_authority.models import base, grant, request
from agent_authority.policy import blast

Identity = base.UserInfo
"""An authenticated identity as the webhook stamps it."""


class RefusalReason(enum.StrEnum):
    APPROVER_UNKNOWN = "ApproverUnknown"
    ALREADY_DECIDED = "AlreadyDecided"
    OPERATOR_APPROVAL = "OperatorApproval"
    SELF_APPROVAL = "SelfApproval"
    SESSION_IDENTITY = "SessionIdentity"
    DUPLICATE_APPROVER = "DuplicateApprover"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a new approval or denial is refused, naming the rule."""

    reason: RefusalReason
    message: str


class State(enum.StrEnum):
    APPROVED = "Approved"
    DENIED = "Denied"
    WAITING = "Waiting"


@dataclasses.dataclass(frozen=True)
class Tally:
    """Where a request stands with its approvals."""

    state: State
    required: int
    approvers: tuple[str, ...]
    """Distinct usernames whose approvals counted, in order."""
    needed: int
    """Distinct approvals still needed (0 unless waiting)."""
    denied_by: str | None = None
    message: str = ""


def required_approvals(policy: grant.ApprovalPolicy, risk: blast.RiskClass) -> int:
    """How many distinct approvers a grant requires for an action of ``risk``."""
    counts = policy.required_approvals
    return counts.reversible if risk is blast.RiskClass.REVERSIBLE else counts.irreversible


def check_new_approval(
    new: request.Approval,
    existing: collections.abc.Sequence[request.Approval],
    requester: Identity | None,
    session_identities: collections.abc.Collection[str],
    operator_username: str,
    already_decided: bool,
) -> Refusal | None:
    """Refuse ``new`` (approver already stamped) when a rule of the module docstring forbids it."""
    word = _verb(new.decision)
    noun = "approval" if new.decision is request.ApprovalDecision.APPROVE else "denial"
    if new.approver is None:
        return Refusal(
            RefusalReason.APPROVER_UNKNOWN,
            f"approver unknown: status.approvals[].approver was not stamped; the {noun} must "
            f"come through the admission webhook, which records the authenticated user",
        )
    who = new.approver.username
    if already_decided:
        return Refusal(
            RefusalReason.ALREADY_DECIDED,
            f"already decided: this request is already Approved or Denied, so {who}'s {noun} "
            f"cannot change it; create a new request if the situation changed",
        )
    if who == operator_username:
        return Refusal(
            RefusalReason.OPERATOR_APPROVAL,
            f"operator identity: {who} is the operator, which applies what others approve and "
            f"may not {word} itself; a human approver is required",
        )
    if requester is not None and who == requester.username:
        return Refusal(
            RefusalReason.SELF_APPROVAL,
            f"self-approval: {who} created this request (spec.requester); a different approver "
            f"is required",
        )
    if who in session_identities:
        return Refusal(
            RefusalReason.SESSION_IDENTITY,
            f"session identity: {who} acts for the agent's incident session; a human outside "
            f"the session must {word}",
        )
    for previous in existing:
        if previous.approver is not None and previous.approver.username == who:
            return Refusal(
                RefusalReason.DUPLICATE_APPROVER,
                f"duplicate approver: {who} already {_past(previous.decision)} this request; "
                f"each approver counts once, a different approver is required",
            )
    return None


def tally(
    approvals: collections.abc.Sequence[request.Approval],
    required: int,
    *,
    ignored: collections.abc.Collection[str] = (),
) -> Tally:
    """Count distinct approvers in order; a denial before ``required`` approvals is final.

    Entries without a stamped approver, or from a username in ``ignored`` (the requester, session
    identities, the operator: defence in depth should the webhook have been bypassed), and
    repeated approvers do not count.
    """
    approvers: list[str] = []
    for approval in approvals:
        if approval.approver is None or approval.approver.username in ignored:
            continue
        who = approval.approver.username
        if approval.decision is request.ApprovalDecision.DENY:
            return Tally(
                State.DENIED,
                required,
                tuple(approvers),
                needed=0,
                denied_by=who,
                message=f"denied by {who}: {approval.reason}",
            )
        if who in approvers:
            continue
        approvers.append(who)
        if len(approvers) >= required:
            return Tally(
                State.APPROVED,
                required,
                tuple(approvers),
                needed=0,
                message=f"approved by {', '.join(approvers)} ({len(approvers)} of {required})",
            )
    needed = required - len(approvers)
    so_far = f" ({', '.join(approvers)})" if approvers else ""
    noun = "approver" if needed == 1 else "approvers"
    return Tally(
        State.WAITING,
        required,
        tuple(approvers),
        needed=needed,
        message=(
            f"{len(approvers)} of {required} approvals{so_far}; "
            f"{needed} more distinct {noun} needed"
        ),
    )


def expires_at(created_at: datetime.datetime, timeout_seconds: int) -> datetime.datetime:
    """When a request created at ``created_at`` stops waiting for approval."""
    return created_at + datetime.timedelta(seconds=timeout_seconds)


def expired(created_at: datetime.datetime, timeout_seconds: int, now: datetime.datetime) -> bool:
    """Whether the approval wait is over at ``now`` (the deadline itself counts as over)."""
    return now >= expires_at(created_at, timeout_seconds)


def _verb(decision: request.ApprovalDecision) -> str:
    return "approve" if decision is request.ApprovalDecision.APPROVE else "deny"


def _past(decision: request.ApprovalDecision) -> str:
    return "approved" if decision is request.ApprovalDecision.APPROVE else "denied"


SESSION_ACCOUNT_PREFIX = "aa-"
"""Names of the ServiceAccounts the operator creates for sessions start with this."""


def session_identities(
    namespace: str,
    session_requester: str | None,
    service_account: str | None,
    caller: str,
) -> set[str]:
    """The usernames that act for a request's session and so never decide on it.

    Whoever opened the session, the session's ServiceAccount, and ``caller`` itself when it is
    any session ServiceAccount of the request's namespace (not only this session's). Used by the
    approval webhook and by the approval page, so both refuse the same people.
    """
    sa = f"system:serviceaccount:{namespace}:"
    found = {session_requester or "", f"{sa}{service_account}" if service_account else ""}
    if caller.startswith(f"{sa}{SESSION_ACCOUNT_PREFIX}"):
        found.add(caller)
    return found - {""}
