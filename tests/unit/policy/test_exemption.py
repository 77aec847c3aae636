"""Which username the operator's webhooks may skip: one whole, real name, or nobody."""

from __future__ import annotations

import pytest

from agent_authority.policy import exemption

OPERATOR = "system:serviceaccount:agent-authority:agent-authority"


@pytest.mark.parametrize(
    ("username", "exempt"),
    [
        pytest.param(OPERATOR, True, id="the-operators-serviceaccount"),
        pytest.param("agent-authority-operator", True, id="a-client-certificate-user"),
        pytest.param("", False, id="empty-would-exempt-nobody-or-everybody"),
        pytest.param(None, False, id="unknown"),
        pytest.param("system:anonymous", False, id="anonymous-would-exempt-every-unauthenticated"),
        pytest.param(" agent-authority-operator", False, id="leading-blank"),
        pytest.param("agent-authority-operator\n", False, id="trailing-newline"),
        pytest.param("agent\x00authority", False, id="control-character"),
    ],
)
def test_only_a_whole_real_name_is_exempted(username: str | None, exempt: bool) -> None:
    conditions = exemption.match_conditions(username)
    assert bool(conditions) is exempt
    if exempt:
        assert conditions == [
            {
                "name": "not-the-operator",
                "expression": f'request.userInfo.username != "{username}"',
            }
        ]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        pytest.param("plain", '"plain"', id="plain"),
        pytest.param('a"b', '"a\\"b"', id="a-quote-cannot-end-the-string"),
        pytest.param("a\\b", '"a\\\\b"', id="a-backslash-is-escaped"),
        pytest.param("jürgen", '"jürgen"', id="non-ascii-as-is"),
    ],
)
def test_the_name_is_one_cel_string_literal(value: str, literal: str) -> None:
    assert exemption.cel_string(value) == literal


def test_a_quote_in_the_name_cannot_widen_the_condition() -> None:
    (condition,) = exemption.match_conditions('x" || true || "')
    assert condition["expression"] == 'request.userInfo.username != "x\\" || true || \\""'
