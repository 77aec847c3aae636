"""Receiver formats and the HMAC signature of the generic JSON format."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from agent_authority.models import request
from agent_authority.notify import formats, notices

BODY: dict[str, Any] = {
    "metadata": {"namespace": "agents", "name": "rr-1"},
    "spec": {
        "sessionRef": {"name": "s-1"},
        "action": {
            "type": "scale-workload",
            "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
        },
        "hypothesis": "saturated",
    },
    "status": {"requiredApprovals": 2},
}
URL = "https://approvals.example"
LINK = f"{URL}/requests/agents/rr-1"


def _notice() -> notices.Notice:
    notice = notices.for_request(BODY, request.RequestPhase.AWAITING_APPROVAL, "R", "needs 2")
    assert notice is not None
    return notice


def test_slack_has_a_fallback_text_and_a_button_to_the_page() -> None:
    doc = json.loads(formats.body(formats.Format.SLACK, _notice(), URL))
    assert LINK in doc["text"]
    assert doc["blocks"][0]["type"] == "header"
    assert doc["blocks"][-1]["elements"][0]["url"] == LINK
    assert len(doc["blocks"][2]["fields"]) <= formats.SLACK_FIELDS


def test_teams_carries_an_adaptive_card_that_opens_the_page() -> None:
    doc = json.loads(formats.body(formats.Format.TEAMS, _notice(), URL))
    assert doc["type"] == "message"
    card = doc["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["actions"] == [{"type": "Action.OpenUrl", "title": "Open", "url": LINK}]
    facts = {f["title"]: f["value"] for f in card["content"]["body"][2]["facts"]}
    assert facts["Approvals needed"] == "2"


def test_generic_json_names_the_object_and_the_kind() -> None:
    doc = json.loads(formats.body(formats.Format.JSON, _notice(), URL))
    assert doc["type"] == "awaiting-approval"
    assert doc["object"] == {"kind": "RemediationRequest", "namespace": "agents", "name": "rr-1"}
    assert doc["link"] == LINK


def test_without_a_page_url_there_is_no_link() -> None:
    doc = json.loads(formats.body(formats.Format.SLACK, _notice(), ""))
    assert all(b["type"] != "actions" for b in doc["blocks"])


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    secret, payload = b"0123456789abcdef", b'{"a":1}'
    expected = hmac.new(secret, b"1700000000." + payload, hashlib.sha256).hexdigest()
    assert formats.signature(secret, 1700000000, payload) == f"sha256={expected}"
    headers = formats.signed_headers(secret, 1700000000, payload)
    assert headers[formats.TIMESTAMP_HEADER] == "1700000000"


@pytest.mark.parametrize(
    ("secret", "timestamp", "payload", "now", "valid"),
    [
        pytest.param(b"k" * 16, "1000", b"{}", 1000.0, True, id="fresh-and-intact"),
        pytest.param(b"k" * 16, "1000", b"{} ", 1000.0, False, id="body-changed"),
        pytest.param(b"x" * 16, "1000", b"{}", 1000.0, False, id="another-secret"),
        pytest.param(b"k" * 16, "1000", b"{}", 1301.0, False, id="replayed-too-late"),
        pytest.param(b"k" * 16, "1000", b"{}", 700.0, True, id="clock-skew-within-tolerance"),
        pytest.param(b"k" * 16, "soon", b"{}", 1000.0, False, id="timestamp-not-a-number"),
    ],
)
def test_verify(secret: bytes, timestamp: str, payload: bytes, now: float, valid: bool) -> None:
    given = formats.signature(b"k" * 16, 1000, b"{}")
    assert formats.verify(secret, timestamp, payload, given, now) is valid


@pytest.mark.parametrize(
    ("phase", "reason", "kind"),
    [
        pytest.param("AwaitingApproval", "WaitingForApproval", "awaiting-approval", id="waiting"),
        pytest.param("Approved", "Approved", "decided", id="approved-by-people"),
        pytest.param("Approved", "AutoApproved", None, id="auto-approval-is-not-news"),
        pytest.param("Denied", "DeniedByApprover", "decided", id="denied-by-a-person"),
        pytest.param("Denied", "TargetOutOfScope", "decided", id="denied-by-policy"),
        pytest.param("Expired", "ApprovalTimeout", "decided", id="expired"),
        pytest.param("Succeeded", "Applied", "applied", id="applied"),
        pytest.param("Failed", "TargetChanged", "failed", id="failed"),
        pytest.param("Applying", "Applying", None, id="a-step-is-not-announced"),
        pytest.param("Cancelled", "SessionEnded", None, id="cancelled-is-not-announced"),
    ],
)
def test_which_transitions_are_announced(phase: str, reason: str, kind: str | None) -> None:
    notice = notices.for_request(BODY, request.RequestPhase(phase), reason, "m")
    assert (notice.kind.value if notice else None) == kind


def test_a_revoked_session_notice_names_the_reason_and_agent() -> None:
    notice = notices.for_revoked_session(
        {
            "metadata": {"namespace": "agents", "name": "s-1"},
            "spec": {
                "grantRef": {"name": "pager"},
                "incident": {"id": "INC-9", "severity": "SEV1"},
                "requester": {"username": "rita"},
            },
        },
        "OutOfScopeRequest",
        "rr-2 was out of scope",
    )
    assert notice.kind is notices.Kind.SESSION_REVOKED
    assert notice.title == "session agents/s-1 revoked: OutOfScopeRequest"
    assert ("Agent", "rita") in notice.facts
