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
- no identity acting for the request's session *or any ancestor of it* decides: a sub-agent's
  request is not independently reviewed when the agent that opened its parent (or that parent's
  own ServiceAccount) approves it. :func:`lineage_identities` turns the chain of sessions (the
  request's, its parent, ... up to the root, walked by the caller) into the usernames to exclude:
  every session's requester and every session's ServiceAccount. Identities are compared by exact
  username, nothing is inferred from a ``system:serviceaccount:`` prefix;
- each approver decides once: a second approval or denial by the same username is refused.

Counting (:func:`tally`): distinct approvers by username, in list order; the first moment the
request has ``required`` distinct approvals it is approved, and any denial before that is final.

Re-counting at apply time (:func:`recount`): the executor never trusts an ``Approved`` condition.
It counts ``status.approvals`` again against the grant's *current* requirement, leaving out the
excluded identities (requester, lineage, operator) and every approver who no longer holds the
``approve`` verb on the grant (the caller asks RBAC); only ``Approved`` with enough approvals left
lets the change be applied.
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


@dataclasses.dataclass(frozen=True)
class SessionIdentities:
    """Who acts for one session of a request's lineage."""

    name: str
    requester: str | None
    """``spec.requester.username`` of the session (whoever opened it)."""
    service_account: str | None
    """The username of the session's ServiceAccount, ``system:serviceaccount:<ns>:<name>``."""


def lineage_identities(chain: collections.abc.Iterable[SessionIdentities]) -> frozenset[str]:
    """Usernames that may never decide a request of any session in ``chain`` (its own session
    and every ancestor): each session's requester and ServiceAccount."""
    found: set[str] = set()
    for link in chain:
        found.update(who for who in (link.requester, link.service_account) if who)
    return frozenset(found)


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
    phase: str | None = None,
) -> Refusal | None:
    """Refuse ``new`` (approver already stamped) when a rule of the module docstring forbids it.

    ``phase`` (the request's phase) makes an ``AlreadyDecided`` refusal say where it stands.
    """
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
        where = f"is {phase}" if phase else "is already Approved or Denied"
        return Refusal(
            RefusalReason.ALREADY_DECIDED,
            f"already decided: this request {where}, so {who}'s {noun} "
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


@dataclasses.dataclass(frozen=True)
class Recount:
    """The apply-time count: whether the change may be applied, and what did not count."""

    tally: Tally
    discounted: tuple[str, ...]
    """One phrase per approval that did not count, e.g. ``oncall-1: no longer authorized``."""

    @property
    def approved(self) -> bool:
        return self.tally.state is State.APPROVED

    @property
    def message(self) -> str:
        left_out = f"; not counted: {', '.join(self.discounted)}" if self.discounted else ""
        return f"{self.tally.message}{left_out}"


def recount(
    approvals: collections.abc.Sequence[request.Approval],
    required: int,
    *,
    excluded: collections.abc.Collection[str],
    unauthorized: collections.abc.Collection[str],
) -> Recount:
    """Count ``approvals`` again at apply time (module docstring).

    ``excluded``: the requester, the lineage identities and the operator. ``unauthorized``:
    approvers RBAC no longer allows to approve under the grant. Neither counts, and a denial by
    either does not count either (it never came from someone entitled to decide).
    """
    discounted: list[str] = []
    for approval in approvals:
        if approval.approver is None:
            discounted.append("an entry without a stamped approver")
        elif approval.approver.username in excluded:
            discounted.append(f"{approval.approver.username}: may not decide this request")
        elif approval.approver.username in unauthorized:
            discounted.append(
                f"{approval.approver.username}: not authorized to approve under the grant"
            )
    counted = tally(approvals, max(1, required), ignored={*excluded, *unauthorized})
    return Recount(counted, tuple(dict.fromkeys(discounted)))


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
