"""Which decisions a request's committed status holds, and which phases one write may pass."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import request
from agent_authority.policy import request_records

P = request.RequestPhase
C = request_records.Committed


def _cond(type_: str, reason: str, message: str, status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


APPROVED = _cond("Approved", "Approved", "approved by oncall (1 of 1)")
AUTO = _cond("AutoApproved", "AutoApproved", "within the auto limits")
AUTO_APPROVED = _cond("Approved", "AutoApproved", "within the auto limits")


def _status(phase: str | None, reason: str, *conds: dict[str, Any], ready: str = "") -> Any:
    out: dict[str, Any] = {
        "reason": reason,
        "conditions": [*conds, _cond("Ready", reason, ready, "False")],
    }
    if phase is not None:
        out["phase"] = phase
    return out


COMMITTED_CASES = [
    pytest.param(_status(None, ""), [], id="never-written-commits-nothing"),
    pytest.param(_status("Pending", "Pending"), [], id="pending-commits-nothing"),
    pytest.param(
        _status("AwaitingApproval", "WaitingForApproval", ready="needs 1 approver"),
        [C(P.AWAITING_APPROVAL, "WaitingForApproval", "needs 1 approver")],
        id="waiting-commits-its-evaluation",
    ),
    pytest.param(
        _status("Applying", "Applying", APPROVED, ready="applying the approved change"),
        [C(P.APPROVED, "Approved", "approved by oncall (1 of 1)")],
        id="applying-with-approved-commits-the-approval-written-with-it",
    ),
    pytest.param(
        _status("Applying", "Applying", AUTO_APPROVED),
        [C(P.APPROVED, "AutoApproved", "within the auto limits")],
        id="applying-auto-commits-the-policys-approval",
    ),
    pytest.param(
        _status("Applying", "Applying", _cond("Approved", "Approved", "x", "False")),
        [],
        id="applying-without-a-true-approved-commits-no-approval",
    ),
    pytest.param(
        _status("Approved", "Approved", APPROVED, ready="approved by oncall (1 of 1)"),
        [C(P.APPROVED, "Approved", "approved by oncall (1 of 1)")],
        id="approved-phase-commits-its-approval-once",
    ),
    pytest.param(
        _status("Failed", "ApprovalNotVerified", APPROVED, ready="do not add up"),
        [
            C(P.APPROVED, "Approved", "approved by oncall (1 of 1)"),
            C(P.FAILED, "ApprovalNotVerified", "do not add up"),
        ],
        id="failed-at-apply-time-commits-the-approval-then-the-failure",
    ),
    pytest.param(
        _status("Succeeded", "Applied", APPROVED, ready="scaled"),
        [
            C(P.APPROVED, "Approved", "approved by oncall (1 of 1)"),
            C(P.SUCCEEDED, "Applied", "scaled"),
        ],
        id="succeeded-commits-the-approval-then-the-apply",
    ),
    pytest.param(
        _status(
            "Denied", "DeniedByApprover", _cond("Denied", "DeniedByApprover", "no"), ready="no"
        ),
        [C(P.DENIED, "DeniedByApprover", "no")],
        id="denied-commits-only-the-denial",
    ),
    pytest.param(
        _status("Expired", "ApprovalTimeout", AUTO, ready="no decision"),
        [C(P.EXPIRED, "ApprovalTimeout", "no decision")],
        id="other-conditions-are-not-approvals",
    ),
    pytest.param({"phase": "Exploded"}, [], id="an-unknown-phase-commits-nothing"),
    pytest.param({"phase": "Applying", "conditions": "garbage"}, [], id="unreadable-conditions"),
]


@pytest.mark.parametrize(("status", "expected"), COMMITTED_CASES)
def test_committed(status: Any, expected: list[request_records.Committed]) -> None:
    assert request_records.committed(status) == expected


PASS_CASES = [
    pytest.param(P.AWAITING_APPROVAL, P.APPROVED, P.APPLYING, True, id="people-approve-then-apply"),
    pytest.param(P.PENDING, P.APPROVED, P.APPLYING, True, id="policy-approves-then-apply"),
    pytest.param(None, P.APPROVED, P.APPLYING, True, id="never-written-policy-approves"),
    pytest.param(P.AWAITING_APPROVAL, P.APPROVED, P.FAILED, True, id="approved-then-refused"),
    pytest.param(P.AWAITING_APPROVAL, P.APPROVED, P.SUCCEEDED, False, id="never-straight-to-done"),
    pytest.param(P.AWAITING_APPROVAL, P.DENIED, P.FAILED, False, id="a-denial-is-never-passed"),
    pytest.param(P.APPLYING, P.APPROVED, P.APPLYING, False, id="no-approval-once-applying"),
    pytest.param(P.CANCELLED, P.APPROVED, P.APPLYING, False, id="a-final-phase-stays"),
    pytest.param(P.DENIED, P.APPROVED, P.APPLYING, False, id="a-denied-request-stays-denied"),
]


@pytest.mark.parametrize(("origin", "passed", "to", "expected"), PASS_CASES)
def test_may_pass(
    origin: request.RequestPhase | None,
    passed: request.RequestPhase,
    to: request.RequestPhase,
    expected: bool,
) -> None:
    assert request_records.may_pass(origin, passed, to) is expected
