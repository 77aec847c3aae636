"""Who may approve or deny a request, how approvals add up, and when waiting ends."""

from __future__ import annotations

import datetime

import pytest

from agent_authority.models import base, grant, request
from agent_authority.policy import approvals, blast

AGENT_SA = "system:serviceaccount:incidents:aa-sess-1"
OPENER = "system:serviceaccount:agents:sre-bot"
OPERATOR = "system:serviceaccount:agent-authority:operator"
SESSION_IDENTITIES = frozenset({AGENT_SA, OPENER})
T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)

APPROVE = request.ApprovalDecision.APPROVE
DENY = request.ApprovalDecision.DENY
RR = approvals.RefusalReason


def vote(
    who: str | None, decision: request.ApprovalDecision = APPROVE, reason: str = "looks right"
) -> request.Approval:
    """An approval or denial as the webhook stamps it (``who=None``: not stamped)."""
    return request.Approval(
        decision=decision,
        reason=reason,
        approver=base.UserInfo(username=who) if who else None,
        time=T0,
    )


def user(name: str) -> base.UserInfo:
    return base.UserInfo(username=name, groups=["oncall"])


CHECK_CASES = [
    pytest.param(vote("alice"), [], user(AGENT_SA), False, None, "", id="first-human-accepted"),
    pytest.param(
        vote("bob"),
        [vote("alice")],
        user(AGENT_SA),
        False,
        None,
        "",
        id="second-distinct-approver-accepted",
    ),
    pytest.param(
        vote("carol", DENY, "wrong pool"),
        [vote("alice")],
        user(AGENT_SA),
        False,
        None,
        "",
        id="denial-by-a-distinct-human-accepted",
    ),
    pytest.param(
        vote("alice"),
        [vote("alice")],
        user(AGENT_SA),
        False,
        RR.DUPLICATE_APPROVER,
        "duplicate approver: alice already approved this request; each approver counts "
        "once, a different approver is required",
        id="same-person-twice-refused",
    ),
    pytest.param(
        vote("alice"),
        [vote("alice", DENY)],
        user(AGENT_SA),
        False,
        RR.DUPLICATE_APPROVER,
        "duplicate approver: alice already denied this request",
        id="approver-who-denied-cannot-then-approve",
    ),
    pytest.param(
        vote("alice"),
        [],
        user("alice"),
        False,
        RR.SELF_APPROVAL,
        "self-approval: alice created this request (spec.requester); a different approver "
        "is required",
        id="requester-approving-own-request-refused",
    ),
    pytest.param(
        vote("alice", DENY),
        [],
        user("alice"),
        False,
        RR.SELF_APPROVAL,
        "self-approval: alice created this request",
        id="requester-denying-own-request-refused-too-cancel-instead",
    ),
    pytest.param(
        vote(AGENT_SA),
        [],
        None,
        False,
        RR.SESSION_IDENTITY,
        f"session identity: {AGENT_SA} acts for the agent's incident session; a human "
        f"outside the session must approve",
        id="session-service-account-refused",
    ),
    pytest.param(
        vote(OPENER),
        [],
        user(AGENT_SA),
        False,
        RR.SESSION_IDENTITY,
        f"session identity: {OPENER}",
        id="identity-that-opened-the-session-refused",
    ),
    pytest.param(
        vote(OPERATOR),
        [],
        user(AGENT_SA),
        False,
        RR.OPERATOR_APPROVAL,
        f"operator identity: {OPERATOR} is the operator, which applies what others approve "
        f"and may not approve itself; a human approver is required",
        id="operator-approving-refused",
    ),
    pytest.param(
        vote("bob"),
        [vote("alice")],
        user(AGENT_SA),
        True,
        RR.ALREADY_DECIDED,
        "already decided: this request is already Approved or Denied, so bob's approval "
        "cannot change it",
        id="approval-after-decision-refused",
    ),
    pytest.param(
        vote(None),
        [],
        user(AGENT_SA),
        False,
        RR.APPROVER_UNKNOWN,
        "approver unknown: status.approvals[].approver was not stamped",
        id="unstamped-approval-refused",
    ),
    pytest.param(
        vote("system:serviceaccount:ci:release-bot"),
        [],
        user(AGENT_SA),
        False,
        None,
        "",
        id="service-account-outside-the-session-is-judged-by-rbac-not-by-prefix",
    ),
]


@pytest.mark.parametrize(
    ("new", "existing", "requester", "decided", "reason", "message"), CHECK_CASES
)
def test_check_new_approval(
    new: request.Approval,
    existing: list[request.Approval],
    requester: base.UserInfo | None,
    decided: bool,
    reason: approvals.RefusalReason | None,
    message: str,
) -> None:
    refusal = approvals.check_new_approval(
        new, existing, requester, SESSION_IDENTITIES, OPERATOR, decided
    )
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.reason is reason
        assert refusal.message.startswith(message)


def test_every_refusal_reason_has_a_case() -> None:
    assert {p.values[4] for p in CHECK_CASES} - {None} == set(approvals.RefusalReason)


@pytest.mark.parametrize(
    ("votes", "required", "state", "approvers", "needed", "message"),
    [
        pytest.param(
            [],
            2,
            approvals.State.WAITING,
            (),
            2,
            "0 of 2 approvals; 2 more distinct approvers needed",
            id="no-approvals-waits-for-all",
        ),
        pytest.param(
            [vote("alice")],
            2,
            approvals.State.WAITING,
            ("alice",),
            1,
            "1 of 2 approvals (alice); 1 more distinct approver needed",
            id="one-approval-is-not-enough-for-the-two-person-rule",
        ),
        pytest.param(
            [vote("alice"), vote("bob")],
            2,
            approvals.State.APPROVED,
            ("alice", "bob"),
            0,
            "approved by alice, bob (2 of 2)",
            id="two-distinct-approvers-satisfy-the-two-person-rule",
        ),
        pytest.param(
            [vote("alice"), vote("alice")],
            2,
            approvals.State.WAITING,
            ("alice",),
            1,
            "1 of 2 approvals (alice)",
            id="same-person-twice-counts-once",
        ),
        pytest.param(
            [vote("alice")],
            1,
            approvals.State.APPROVED,
            ("alice",),
            0,
            "approved by alice (1 of 1)",
            id="one-approval-suffices-for-a-reversible-action",
        ),
        pytest.param(
            [vote("alice"), vote("bob", DENY, "wrong pool")],
            2,
            approvals.State.DENIED,
            ("alice",),
            0,
            "denied by bob: wrong pool",
            id="a-denial-before-the-threshold-is-final",
        ),
        pytest.param(
            [vote("alice"), vote("bob", DENY, "too late")],
            1,
            approvals.State.APPROVED,
            ("alice",),
            0,
            "approved by alice (1 of 1)",
            id="a-denial-after-the-request-was-approved-is-void",
        ),
        pytest.param(
            [vote(None), vote("alice")],
            2,
            approvals.State.WAITING,
            ("alice",),
            1,
            "1 of 2 approvals (alice)",
            id="unstamped-entries-do-not-count",
        ),
        pytest.param(
            [vote(AGENT_SA), vote(OPERATOR), vote("alice")],
            2,
            approvals.State.WAITING,
            ("alice",),
            1,
            "1 of 2 approvals (alice)",
            id="approvals-by-ignored-identities-do-not-count",
        ),
        pytest.param(
            [vote(AGENT_SA, DENY, "never mind")],
            1,
            approvals.State.WAITING,
            (),
            1,
            "0 of 1 approvals; 1 more distinct approver needed",
            id="denial-by-an-ignored-identity-does-not-deny",
        ),
    ],
)
def test_tally(
    votes: list[request.Approval],
    required: int,
    state: approvals.State,
    approvers: tuple[str, ...],
    needed: int,
    message: str,
) -> None:
    result = approvals.tally(votes, required, ignored=SESSION_IDENTITIES | {OPERATOR})
    assert (result.state, result.approvers, result.needed) == (state, approvers, needed)
    assert result.message.startswith(message)


def test_tally_names_the_denier() -> None:
    result = approvals.tally([vote("bob", DENY, "wrong pool")], 1)
    assert (result.state, result.denied_by) == (approvals.State.DENIED, "bob")


@pytest.mark.parametrize(
    ("risk", "counts", "required"),
    [
        pytest.param(blast.RiskClass.REVERSIBLE, {}, 1, id="reversible-defaults-to-one"),
        pytest.param(blast.RiskClass.IRREVERSIBLE, {}, 2, id="irreversible-defaults-to-two"),
        pytest.param(
            blast.RiskClass.IRREVERSIBLE,
            {"irreversible": 3},
            3,
            id="irreversible-follows-the-grant",
        ),
    ],
)
def test_required_approvals(risk: blast.RiskClass, counts: dict[str, int], required: int) -> None:
    policy = grant.ApprovalPolicy.model_validate({"requiredApprovals": counts})
    assert approvals.required_approvals(policy, risk) == required


@pytest.mark.parametrize(
    ("elapsed", "expired"),
    [
        pytest.param(3599, False, id="one-second-before-the-deadline-still-waits"),
        pytest.param(3600, True, id="at-the-deadline-expired"),
        pytest.param(7200, True, id="after-the-deadline-expired"),
    ],
)
def test_expired(elapsed: int, expired: bool) -> None:
    now = T0 + datetime.timedelta(seconds=elapsed)
    assert approvals.expired(T0, 3600, now) is expired
    assert approvals.expires_at(T0, 3600) == T0 + datetime.timedelta(hours=1)


# -- lineage: the request's session and every ancestor ---------------------------------------------

S = approvals.SessionIdentities

LINEAGE_CASES = [
    pytest.param([S("child", "sa:parent", "sa:child")], {"sa:parent", "sa:child"}, id="root-only"),
    pytest.param(
        [S("child", "sa:parent", "sa:child"), S("parent", "alice", "sa:parent")],
        {"sa:parent", "sa:child", "alice"},
        id="parent-opener-is-excluded-from-a-sub-agent-request",
    ),
    pytest.param(
        [
            S("grandchild", "sa:child", "sa:grandchild"),
            S("child", "sa:parent", "sa:child"),
            S("parent", "alice", "sa:parent"),
        ],
        {"sa:grandchild", "sa:child", "sa:parent", "alice"},
        id="every-ancestor-up-to-the-root",
    ),
    pytest.param([S("pending", "alice", None)], {"alice"}, id="a-session-without-an-account-yet"),
    pytest.param([], set(), id="no-chain-no-identities"),
]


@pytest.mark.parametrize(("chain", "expected"), LINEAGE_CASES)
def test_lineage_identities(chain: list[approvals.SessionIdentities], expected: set[str]) -> None:
    assert approvals.lineage_identities(chain) == expected


# -- recount at apply time -------------------------------------------------------------------------

RECOUNT_CASES = [
    pytest.param([vote("alice")], 1, set(), set(), True, "", id="one-authorized-approval"),
    pytest.param([], 1, set(), set(), False, "0 of 1", id="forged-approved-without-approvals"),
    pytest.param(
        [vote("alice")],
        2,
        set(),
        set(),
        False,
        "1 of 2",
        id="grant-now-requires-more-than-were-given",
    ),
    pytest.param(
        [vote("alice")],
        1,
        set(),
        {"alice"},
        False,
        "alice: not authorized to approve under the grant",
        id="approver-lost-the-approve-verb",
    ),
    pytest.param(
        [vote("sa:parent"), vote("bob")],
        2,
        {"sa:parent"},
        set(),
        False,
        "sa:parent: may not decide this request",
        id="ancestor-identity-does-not-count",
    ),
    pytest.param(
        [vote("alice"), vote("alice")], 2, set(), set(), False, "1 of 2", id="same-approver-twice"
    ),
    pytest.param(
        [vote(None), vote("bob")],
        1,
        set(),
        set(),
        True,
        "an entry without a stamped approver",
        id="unstamped-entry-is-skipped",
    ),
    pytest.param(
        [vote("mallory", DENY), vote("bob")],
        1,
        set(),
        {"mallory"},
        True,
        "mallory",
        id="denial-by-an-unauthorized-identity-does-not-count",
    ),
    pytest.param([vote("alice")], 0, set(), set(), True, "", id="zero-required-still-needs-one"),
]


@pytest.mark.parametrize(
    ("given", "required", "excluded", "unauthorized", "approved", "says"), RECOUNT_CASES
)
def test_recount(
    given: list[request.Approval],
    required: int,
    excluded: set[str],
    unauthorized: set[str],
    approved: bool,
    says: str,
) -> None:
    result = approvals.recount(given, required, excluded=excluded, unauthorized=unauthorized)
    assert result.approved is approved
    assert says in result.message
    assert "None" not in result.message


def test_already_decided_names_the_phase() -> None:
    refusal = approvals.check_new_approval(
        vote("alice"), [], None, set(), OPERATOR, already_decided=True, phase="Cancelled"
    )
    assert refusal is not None
    assert refusal.reason is RR.ALREADY_DECIDED
    assert "is Cancelled" in refusal.message
    assert "Approved or Denied" not in refusal.message
