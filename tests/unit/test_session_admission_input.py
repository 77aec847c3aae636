"""The session webhooks on malformed input, and how long session tokens are asked to live."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pydantic
import pytest

from agent_authority.kube import tokens
from agent_authority.models import base, session
from agent_authority.webhooks import sessions as webhooks

GOOD: dict[str, Any] = {
    "grantRef": {"name": "sre-bot"},
    "incident": {"id": "INC-1", "severity": "SEV2", "class": "latency"},
    "purpose": "p99",
    "ttlSeconds": 600,
}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"grantRef": "fz"},
            "spec.grantRef: must be an object {name: <AgentGrant>}, got a string 'fz'",
        ),
        ({"grantRef": None}, "spec.grantRef: must be an object"),
        (
            {"grantRef": {"name": 7}},
            "spec.grantRef.name: must be a non-empty string, got a number 7",
        ),
        ({"grantRef": {"name": ""}}, "spec.grantRef.name: must be a non-empty string"),
        (
            {"parentSession": 3},
            "spec.parentSession: must be a session name (a string), got a number 3",
        ),
        ({"parentSession": ""}, "spec.parentSession: must be a session name"),
        ({"ttlSeconds": 0}, "spec.ttlSeconds: 0 is below the minimum of 10 seconds"),
        ({"ttlSeconds": -5}, "spec.ttlSeconds: -5 is below the minimum"),
        ({"ttlSeconds": ""}, "spec.ttlSeconds: must be a whole number of seconds, got a string ''"),
        ({"ttlSeconds": []}, "spec.ttlSeconds: must be a whole number of seconds, got a list"),
        (
            {"ttlSeconds": False},
            "spec.ttlSeconds: must be a whole number of seconds, got a boolean",
        ),
        (
            {"ttlSeconds": {"s": 1}},
            "spec.ttlSeconds: must be a whole number of seconds, got an object",
        ),
        (
            {"ttlSeconds": 1.5},
            "spec.ttlSeconds: must be a whole number of seconds, got a number 1.5",
        ),
    ],
    ids=[
        "grantRef-a-string",
        "grantRef-null",
        "grantRef-name-a-number",
        "grantRef-name-empty",
        "parentSession-a-number",
        "parentSession-empty",
        "ttl-zero-is-not-the-grant-maximum",
        "ttl-negative",
        "ttl-empty-string",
        "ttl-a-list",
        "ttl-false",
        "ttl-an-object",
        "ttl-a-fraction",
    ],
)
def test_shape_problem_names_the_field(fields: dict[str, Any], says: str) -> None:
    problem = webhooks.shape_problem({**GOOD, **fields})
    assert problem is not None
    assert problem.startswith(says)


@pytest.mark.parametrize(
    "fields",
    [{}, {"ttlSeconds": 10}, {"parentSession": "root"}],
    ids=["well-formed", "ttl-at-the-minimum", "with-a-parent"],
)
def test_shape_problem_passes_well_formed_specs(fields: dict[str, Any]) -> None:
    assert webhooks.shape_problem({**GOOD, **fields}) is None


def test_a_left_out_ttl_is_no_problem() -> None:
    spec = {k: v for k, v in GOOD.items() if k != "ttlSeconds"}
    assert webhooks.shape_problem(spec) is None
    assert webhooks.shape_problem({**spec, "ttlSeconds": None}) is None


def test_the_mutating_webhook_refuses_instead_of_crashing() -> None:
    with pytest.raises(kopf.AdmissionError) as refused:
        asyncio.run(
            webhooks.stamp(
                spec={**GOOD, "grantRef": "fz"},
                meta={},
                userinfo={"username": "alice"},
                patch=kopf.Patch(),
            )
        )
    assert "spec.grantRef" in str(refused.value)
    assert refused.value.code == 422


def test_schema_errors_name_the_field() -> None:
    with pytest.raises(pydantic.ValidationError) as error:
        session.IncidentSessionSpec.model_validate(
            {**GOOD, "incident": {"id": "", "severity": "SEV9"}}
        )
    described = webhooks.describe_errors(error.value)
    assert "spec.incident.id:" in described
    assert "spec.incident.severity:" in described


@pytest.mark.parametrize(
    ("remaining", "ceiling", "expected"),
    [
        (20, 3600, 600),
        (-5, 3600, 600),
        (599.2, 3600, 600),
        (900, 3600, 901),
        (3606, 3600, 3600),
        (3605.5, 7200, 3606),
        (3606.4, 7200, 3606),
        (86400, 3600, 3600),
        (900, 300, 600),
    ],
    ids=[
        "short-session-gets-the-tokenrequest-minimum",
        "expired-session-gets-the-minimum",
        "just-under-the-minimum",
        "remaining-life-rounded-up",
        "capped-at-the-ceiling",
        "just-under-the-legacy-3607-passes",
        "never-exactly-the-legacy-3607",
        "long-session-capped",
        "ceiling-below-the-minimum-still-asks-for-the-minimum",
    ],
)
def test_token_seconds(remaining: float, ceiling: int, expected: int) -> None:
    assert tokens.token_seconds(remaining, ceiling) == expected


class _Memo:
    operator = base.UserInfo(username="agent-authority-operator")


UPDATED: dict[str, Any] = {
    "metadata": {"name": "s", "namespace": "agents", "finalizers": ["agentauthority.io/finalizer"]},
    "spec": {**GOOD, "requester": {"username": "alice"}},
}


def test_the_operator_may_write_what_it_owns() -> None:
    stripped = {**UPDATED, "metadata": {**UPDATED["metadata"], "finalizers": []}}
    asyncio.run(
        webhooks.guard(
            userinfo={"username": "agent-authority-operator"},
            memo=_Memo(),
            old=UPDATED,
            new=stripped,
        )
    )


def test_anyone_else_is_refused_naming_the_field() -> None:
    rewritten = {**UPDATED, "spec": {**UPDATED["spec"], "purpose": "mine"}}
    with pytest.raises(kopf.AdmissionError) as refused:
        asyncio.run(
            webhooks.guard_status(
                userinfo={"username": "alice"}, memo=_Memo(), old=UPDATED, new=rewritten
            )
        )
    assert str(refused.value).startswith("SpecImmutable: spec.purpose:")
    assert refused.value.code == 403
