"""Which admission webhooks the apiserver need not call for the operator's own writes, and how.

Some webhook handlers let the operator's identity through unexamined
(``webhooks.identity.is_operator`` is their first line). For those the webhook configuration
carries a ``matchConditions`` entry, ``not-the-operator``, so the apiserver skips the round trip
for the operator's own writes: the answer is the same, one call earlier. The handlers keep their
own check (defence in depth), and so do the ValidatingAdmissionPolicies behind them.

Fail closed: the exemption names exactly one username, compared whole (CEL ``!=``, no pattern),
and only a name that can be the operator's. An empty name, the anonymous user, or a name with
control characters or surrounding blanks yields no exemption at all, so the webhooks examine
everyone, the operator included, rather than skip someone they should not.
"""

from __future__ import annotations

import json

NAME = "not-the-operator"
OPERATOR_EXEMPT = frozenset(
    {"guard-session", "guard-session-status", "guard-approvals", "stamp-approver"}
)
"""Handler ids whose handler returns at once for the operator (``identity.is_operator``):

- ``guard-session`` / ``guard-session-status``: IncidentSession UPDATE of the object and of its
  status (``webhooks.sessions._review_update``);
- ``guard-approvals`` / ``stamp-approver``: RemediationRequest status UPDATE, validating and
  mutating (``webhooks.requests.guard_approvals`` and ``stamp_approver``; the latter patches
  nothing for the operator).

Not exempt: the CREATE webhooks (stamping and admission apply to everyone, the operator
included) and ``grant-escalation`` (the operator's metadata writes on a grant return early
because the spec is unchanged, not because of who writes, so skipping it would not be the same).
"""
ANONYMOUS = "system:anonymous"


def trusted_username(username: str | None) -> str | None:
    """``username`` when it may be exempted: a real, whole name; else ``None``."""
    if not username or username != username.strip() or not username.isprintable():
        return None
    if username == ANONYMOUS:
        return None
    return username


def cel_string(value: str) -> str:
    """``value`` as a CEL string literal (double-quoted; quotes and backslashes escaped)."""
    return json.dumps(value, ensure_ascii=False)


def match_conditions(username: str | None) -> list[dict[str, str]]:
    """The ``matchConditions`` of an exempt webhook: none when the name is not trusted."""
    name = trusted_username(username)
    if name is None:
        return []
    return [{"name": NAME, "expression": f"request.userInfo.username != {cel_string(name)}"}]
