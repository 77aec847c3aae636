"""The body each receiver format gets, and the signature of the generic JSON format.

- ``slack``: a Slack incoming-webhook message (``text`` fallback plus Block Kit blocks);
- ``teams``: a Microsoft Teams message carrying an Adaptive Card (what Teams workflows accept);
- ``json``: our own document, signed: ``X-Agent-Authority-Signature: sha256=<hex>`` is
  HMAC-SHA256 with the receiver's secret over ``<timestamp>.<body>``, the timestamp (Unix
  seconds) in ``X-Agent-Authority-Timestamp``. Receivers check it with :func:`verify` (or the
  same three lines) and refuse stale timestamps, so a captured delivery cannot be replayed later.

Pure: no I/O; the clock is passed in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from typing import Any

from agent_authority.notify import notices

TIMESTAMP_HEADER = "X-Agent-Authority-Timestamp"
SIGNATURE_HEADER = "X-Agent-Authority-Signature"
TOLERANCE_SECONDS = 300
SLACK_FIELDS = 10


class Format(enum.StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    JSON = "json"


def _link(notice: notices.Notice, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{notice.path}" if base_url and notice.path else ""


def slack(notice: notices.Notice, base_url: str) -> dict[str, Any]:
    link = _link(notice, base_url)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
        {"type": "section", "text": {"type": "plain_text", "text": notice.text[:3000] or "-"}},
    ]
    if notice.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "plain_text", "text": f"{k}: {v}"[:2000]}
                    for k, v in notice.facts[:SLACK_FIELDS]
                ],
            }
        )
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": link}
                ],
            }
        )
    fallback = f"{notice.title}: {notice.text}" + (f" {link}" if link else "")
    return {"text": fallback, "blocks": blocks}


def teams(notice: notices.Notice, base_url: str) -> dict[str, Any]:
    link = _link(notice, base_url)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": notice.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": notice.text or "-", "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in notice.facts]},
        ],
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def generic(notice: notices.Notice, base_url: str) -> dict[str, Any]:
    return {
        "type": notice.kind.value,
        "title": notice.title,
        "text": notice.text,
        "object": {
            "kind": notice.object_kind,
            "namespace": notice.namespace,
            "name": notice.name,
        },
        "facts": dict(notice.facts),
        "link": _link(notice, base_url) or None,
    }


def body(fmt: Format, notice: notices.Notice, base_url: str) -> bytes:
    """The encoded request body for ``fmt``."""
    render = {Format.SLACK: slack, Format.TEAMS: teams, Format.JSON: generic}[fmt]
    return json.dumps(render(notice, base_url), sort_keys=True).encode()


def signature(secret: bytes, timestamp: int, payload: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<payload>``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(secret: bytes, timestamp: int, payload: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, payload),
    }


def verify(
    secret: bytes,
    timestamp: str,
    payload: bytes,
    given: str,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``given`` signs ``payload`` at ``timestamp``, and the timestamp is recent."""
    try:
        at = int(timestamp)
    except ValueError:
        return False
    if abs(now - at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, at, payload), given)
