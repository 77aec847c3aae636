"""The page's HTML: what agents wrote (hypothesis, evidence, names) is text, never markup."""

from __future__ import annotations

from typing import Any

from agent_authority.approvals import pages
from agent_authority.policy import approval_view

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _item() -> dict[str, Any]:
    return {
        "metadata": {"namespace": "agents", "name": "rr-1", "uid": "u"},
        "spec": {
            "sessionRef": {"name": "s-1"},
            "action": {
                "type": "scale-workload",
                "target": {"kind": "Deployment", "namespace": "shop", "name": "web"},
            },
            "hypothesis": EVIL,
            "evidence": [
                {
                    "kind": "log",
                    "source": EVIL,
                    "excerpt": EVIL,
                    "sha256": "a" * 64,
                    "observedAt": "2026-12-01T00:00:00Z",
                }
            ],
        },
        "status": {
            "phase": "AwaitingApproval",
            "diff": [{"path": "spec.replicas", "before": "3", "after": EVIL}],
            "approvals": [{"decision": "approve", "reason": EVIL, "approver": {"username": EVIL}}],
        },
    }


def test_agent_written_text_is_escaped_everywhere() -> None:
    html = pages.detail(
        "alice",
        "token",
        _item(),
        None,
        approval_view.Offer(False, EVIL),
        "0 of 1",
        [{"message": EVIL, "reason": EVIL, "involvedObject": {"kind": EVIL}}],
        error=EVIL,
    )
    assert "<script" not in html
    assert "<img" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 7


def test_the_diff_is_rendered_as_removed_and_added_lines() -> None:
    item = _item()
    item["status"]["diff"] = [{"path": "spec.replicas", "before": "3", "after": "4"}]
    html = pages.detail("alice", "t", item, None, approval_view.Offer(True), "0 of 1", [])
    assert '<span class="del">- spec.replicas: 3</span>' in html
    assert '<span class="add">+ spec.replicas: 4</span>' in html
    assert 'name="csrf" value="t"' in html  # the decision form carries the CSRF token


def test_no_form_when_the_offer_is_refused() -> None:
    html = pages.detail(
        "alice", "t", _item(), None, approval_view.Offer(False, "why not"), "0 of 1", []
    )
    assert 'id="decide"' not in html
    assert '<p class="why" id="why">why not</p>' in html
