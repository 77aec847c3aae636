"""Suggestions for misspelt names, shared by grant lint and admission refusals."""

from __future__ import annotations

import pytest

from agent_authority.policy import suggestions

SCOPES = ["shop-workloads", "shop-apps", "shop-config"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        pytest.param("shop-workload", "; did you mean 'shop-workloads'?", id="missing-letter"),
        pytest.param("shop-aps", "; did you mean 'shop-apps'?", id="dropped-letter"),
        pytest.param("payments", "", id="nothing-close"),
        pytest.param("shop-apps", "", id="exact-is-no-typo"),
    ],
)
def test_did_you_mean(name: str, hint: str) -> None:
    assert suggestions.did_you_mean(name, SCOPES) == hint


def test_closest_of_nothing() -> None:
    assert suggestions.closest("x", []) is None


def test_a_misspelt_scope_is_refused_with_a_suggestion() -> None:
    from agent_authority.policy import sessions
    from tests.unit.policy.test_sessions import BOT, context, session_spec

    admission = sessions.admit(BOT, session_spec(scopes=[{"name": "pods-reed"}]), context())
    assert admission.reason.value == "UnknownScope"
    assert admission.message == (
        "spec.scopes[0].name: scope 'pods-reed' is not in grant 'checkout'; did you mean "
        "'pods-read'? (allowed: deploys, events, pods-read)"
    )
