"""Which SubjectAccessReviews confirm a session usable, and how the confirmation retries.

The authorizer itself is exercised end to end in tests/e2e/test_active_usable.py; here the
apiserver is replaced by a table of answers (unit tests only).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_authority.kube import access, readiness, session_access, session_refs
from agent_authority.models import base, grant

REF = session_refs.SessionRef(namespace="agents", name="s1", uid="uid-1")
REQUESTER = base.UserInfo(username="alice", groups=["ai-agents"])


def rule(ns: str, resources: list[str], verbs: list[str], **kw: Any) -> grant.PolicyRule:
    groups = kw.pop("groups", [""])
    return grant.PolicyRule(namespace=ns, api_groups=groups, resources=resources, verbs=verbs, **kw)


def described(rules: list[grant.PolicyRule]) -> list[str]:
    return [c.describe() for c in readiness.checks(REF, rules, REQUESTER)]


SA = REF.username
CASES = [
    pytest.param(
        [],
        [
            f"{SA} create remediationrequests in agents",
            f"alice get secrets {REF.secret!r} in agents",
        ],
        id="no-read-rules-own-namespace-and-secret-only",
    ),
    pytest.param(
        [
            rule("shop", ["pods", "pods/log"], ["get", "list"]),
            rule("shop", ["configmaps"], ["get"]),
        ],
        [
            f"{SA} get pods in shop",
            f"{SA} create remediationrequests in agents",
            f"alice get secrets {REF.secret!r} in agents",
        ],
        id="one-check-per-rolebinding-not-per-rule",
    ),
    pytest.param(
        [rule("shop", ["pods/log"], ["get"]), rule("web", ["x"], ["get"], resource_names=["cm1"])],
        [
            f"{SA} get pods/log in shop",
            f"{SA} get x 'cm1' in web",
            f"{SA} create remediationrequests in agents",
            f"alice get secrets {REF.secret!r} in agents",
        ],
        id="subresource-and-resource-name-kept",
    ),
    pytest.param(
        [rule("agents", ["pods"], ["list"])],
        [
            f"{SA} list pods in agents",
            f"{SA} create remediationrequests in agents",
            f"alice get secrets {REF.secret!r} in agents",
        ],
        id="grant-rule-in-own-namespace-has-its-binding-beside-the-own-one",
    ),
]


@pytest.mark.parametrize(("rules", "want"), CASES)
def test_checks(rules: list[grant.PolicyRule], want: list[str]) -> None:
    assert described(rules) == want


def test_service_account_identity_has_the_groups_the_apiserver_gives_it() -> None:
    user = readiness.service_account_user(REF)
    assert user.username == "system:serviceaccount:agents:" + REF.service_account
    assert set(user.groups) == {
        "system:serviceaccounts",
        "system:serviceaccounts:agents",
        "system:authenticated",
    }


def test_retries_only_what_was_refused_until_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    refusals = {"secrets": 2}  # the requester's binding is served after two refusals

    async def allowed(_kube: Any, user: base.UserInfo, **attrs: str) -> bool:
        asked.append(attrs["resource"])
        if refusals.get(attrs["resource"], 0) > 0:
            refusals[attrs["resource"]] -= 1
            return False
        return True

    monkeypatch.setattr(access, "allowed", allowed)
    rounds = asyncio.run(readiness.confirm_usable(None, REF, [], REQUESTER))  # type: ignore[arg-type]
    assert rounds == 3
    assert asked == ["remediationrequests", "secrets", "secrets", "secrets"]


def test_fails_closed_naming_what_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(_kube: Any, user: base.UserInfo, **attrs: str) -> bool:
        return attrs["resource"] != "pods"

    monkeypatch.setattr(access, "allowed", never)
    with pytest.raises(readiness.NotYetUsable, match="get pods in shop"):
        asyncio.run(
            readiness.confirm_usable(
                None,  # type: ignore[arg-type]
                REF,
                [rule("shop", ["pods"], ["get"])],
                REQUESTER,
                within=0.1,
            )
        )


def test_each_check_names_the_binding_it_confirms() -> None:
    found = {
        c.describe(): c.binding
        for c in readiness.checks(REF, [rule("shop", ["pods"], ["get"])], REQUESTER)
    }
    assert found == {
        f"{SA} get pods in shop": ("shop", REF.base_name),
        f"{SA} create remediationrequests in agents": ("agents", session_access.own_name(REF)),
        f"alice get secrets {REF.secret!r} in agents": ("agents", session_access.reader_name(REF)),
    }


def _asking(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    async def allowed(_kube: Any, user: base.UserInfo, **attrs: str) -> bool:
        asked.append(f"{attrs['resource']} in {attrs['namespace']}")
        return True

    monkeypatch.setattr(access, "allowed", allowed)
    return asked


def test_confirmation_asks_a_bindings_checks_when_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _asking(monkeypatch)
    usable = readiness.Confirmation(None, REF, [rule("shop", ["pods"], ["get"])], REQUESTER)  # type: ignore[arg-type]

    async def run() -> None:
        await usable.bound("shop", REF.base_name)
        assert asked == ["pods in shop"]
        await usable.bound("shop", REF.base_name)  # reported twice: asked once
        await usable.bound("elsewhere", "not-a-session-binding")
        assert asked == ["pods in shop"]
        await usable.rest()

    asyncio.run(run())
    assert asked == ["pods in shop", "remediationrequests in agents", "secrets in agents"]


def test_confirmation_rest_fails_closed_for_a_binding_never_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never_secrets(_kube: Any, user: base.UserInfo, **attrs: str) -> bool:
        return attrs["resource"] != "secrets"

    monkeypatch.setattr(access, "allowed", never_secrets)
    usable = readiness.Confirmation(None, REF, [], REQUESTER, within=0.1)  # type: ignore[arg-type]
    with pytest.raises(readiness.NotYetUsable, match="get secrets"):
        asyncio.run(usable.rest())
