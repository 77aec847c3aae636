"""Which buttons the approval page offers, and why not: the webhook's questions, in its order."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from agent_authority.models import base, request
from agent_authority.policy import approval_view, approvals

ALICE = base.UserInfo(username="alice", groups=["sre"])
AGENT = base.UserInfo(username="system:serviceaccount:agents:aa-s1")
OPENER = "system:serviceaccount:people:rita"
OPERATOR = "agent-authority-operator"


def _approval(who: str, decision: str = "approve") -> request.Approval:
    return request.Approval(
        decision=request.ApprovalDecision(decision),
        reason="ok",
        approver=base.UserInfo(username=who),
    )


def _offer(**overrides: Any) -> approval_view.Offer:
    values: dict[str, Any] = {
        "phase": "AwaitingApproval",
        "person": ALICE,
        "may_approve": True,
        "grant_name": "pager",
        "requester": AGENT,
        "session_identities": {AGENT.username, OPENER},
        "operator_username": OPERATOR,
        "existing": [],
    }
    values.update(overrides)
    return approval_view.offer(**values)


@pytest.mark.parametrize(
    ("overrides", "decide", "why_starts"),
    [
        pytest.param({}, True, "", id="an-approver-on-a-waiting-request-gets-the-buttons"),
        pytest.param(
            {"phase": "Succeeded"}, False, "already decided", id="a-decided-request-has-none"
        ),
        pytest.param(
            {"phase": "Pending"}, False, "not yet waiting", id="a-pending-request-has-none-yet"
        ),
        pytest.param({"phase": None}, False, "not yet waiting", id="no-phase-counts-as-pending"),
        pytest.param(
            {"may_approve": False},
            False,
            "alice may not approve or deny requests under grant 'pager'",
            id="without-the-approve-verb-the-rbac-reason",
        ),
        pytest.param(
            {"person": AGENT},
            False,
            "SelfApproval: self-approval",
            id="the-requester-never-decides-even-with-the-verb",
        ),
        pytest.param(
            {"person": base.UserInfo(username=OPENER)},
            False,
            "SessionIdentity: session identity",
            id="whoever-opened-the-session-never-decides",
        ),
        pytest.param(
            {"person": base.UserInfo(username=OPERATOR)},
            False,
            "OperatorApproval",
            id="the-operator-never-decides",
        ),
        pytest.param(
            {"existing": [_approval("alice")]},
            False,
            "DuplicateApprover",
            id="each-approver-decides-once",
        ),
        pytest.param(
            {"existing": [_approval("bob")]}, True, "", id="a-second-approver-gets-the-buttons"
        ),
        pytest.param(
            {"phase": "Denied", "may_approve": False},
            False,
            "already decided",
            id="the-phase-is-said-before-rbac-as-the-webhook-does",
        ),
    ],
)
def test_offer(overrides: dict[str, Any], decide: bool, why_starts: str) -> None:
    offer = _offer(**overrides)
    assert offer.decide is decide
    assert offer.why.startswith(why_starts), offer.why
    assert bool(offer.why) is not decide


def test_the_refusal_is_worded_as_the_webhook_words_it() -> None:
    offer = _offer(person=AGENT)
    refusal = approvals.check_new_approval(
        _approval(AGENT.username), [], AGENT, set(), OPERATOR, already_decided=False
    )
    assert refusal is not None
    assert offer.why == f"{refusal.reason.value}: {refusal.message}"


@pytest.mark.parametrize(
    ("given", "required", "ignored", "shown"),
    [
        pytest.param([], 2, (), "0 of 2", id="none-yet"),
        pytest.param([_approval("a"), _approval("a")], 2, (), "1 of 2", id="repeats-count-once"),
        pytest.param([_approval("x")], 1, ("x",), "0 of 1", id="ignored-identities-do-not-count"),
        pytest.param([], None, (), "0 of 1", id="unknown-requirement-is-one"),
    ],
)
def test_progress(
    given: list[request.Approval], required: int | None, ignored: tuple[str, ...], shown: str
) -> None:
    assert approval_view.progress(given, required, ignored) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (7200, "2h"), (200000, "2d"), (-5, "0s")],
)
def test_age(seconds: int, shown: str) -> None:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    assert approval_view.age(now - datetime.timedelta(seconds=seconds), now) == shown


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        pytest.param("alice", {OPENER, "system:serviceaccount:agents:aa-s1"}, id="a-person"),
        pytest.param(
            "system:serviceaccount:agents:aa-other",
            {OPENER, "system:serviceaccount:agents:aa-s1", "system:serviceaccount:agents:aa-other"},
            id="any-session-account-of-the-namespace",
        ),
        pytest.param(
            "system:serviceaccount:elsewhere:aa-x",
            {OPENER, "system:serviceaccount:agents:aa-s1"},
            id="not-session-accounts-of-other-namespaces",
        ),
    ],
)
def test_session_identities(caller: str, expected: set[str]) -> None:
    assert approvals.session_identities("agents", OPENER, "aa-s1", caller) == expected


def test_session_identities_without_an_account_or_opener() -> None:
    assert approvals.session_identities("agents", None, None, "alice") == set()
