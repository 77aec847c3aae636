"""The operator's own-permission check: positive answers are kept a while, refusals never."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agent_authority.kube import access
from agent_authority.policy import rbac


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class Authz:
    """Answers SelfSubjectAccessReviews from a set of allowed verbs, counting the questions."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[str] = []

    def create_self_subject_access_review(self, body: dict[str, Any], **_: Any) -> Response:
        verb = body["spec"]["resourceAttributes"]["verb"]
        self.asked.append(verb)
        return Response({"status": {"allowed": verb in self.allowed}})


class FakeKube:
    def __init__(self, allowed: set[str]) -> None:
        self.authz = Authz(allowed)


CREATE = rbac.Permission("shop", "rbac.authorization.k8s.io", "roles", "create")
DELETE = rbac.Permission("shop", "rbac.authorization.k8s.io", "roles", "delete")


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    access._own_allowed.clear()
    access._own_asking.clear()


def _missing(kube: FakeKube) -> list[rbac.Permission]:
    return asyncio.run(access.own_missing(kube, [CREATE, DELETE]))  # type: ignore[arg-type]


def test_a_held_permission_is_not_asked_again_within_the_window() -> None:
    kube = FakeKube({"create", "delete"})
    assert _missing(kube) == []
    assert _missing(kube) == []
    assert sorted(kube.authz.asked) == ["create", "delete"]


def test_a_refused_permission_is_asked_every_time() -> None:
    kube = FakeKube({"create"})
    assert _missing(kube) == [DELETE]
    assert _missing(kube) == [DELETE]
    assert sorted(kube.authz.asked) == ["create", "delete", "delete"]


def test_a_permission_is_asked_again_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube({"create", "delete"})
    monkeypatch.setattr(access, "OWN_ALLOWED_SECONDS", 0.0)
    assert _missing(kube) == []
    kube.authz.allowed = {"create"}
    assert _missing(kube) == [DELETE]


class SlowAuthz(Authz):
    """Answers as :class:`Authz`, from a worker thread, after a pause (a loaded apiserver)."""

    def create_self_subject_access_review(self, body: dict[str, Any], **_: Any) -> Response:
        import time

        time.sleep(0.05)
        return super().create_self_subject_access_review(body)


def test_callers_asking_at_the_same_time_share_one_review_each() -> None:
    kube = FakeKube({"create"})
    kube.authz = SlowAuthz({"create"})

    async def fifty() -> list[list[rbac.Permission]]:
        return list(
            await asyncio.gather(*[access.own_missing(kube, [CREATE, DELETE]) for _ in range(50)])  # type: ignore[arg-type]
        )

    assert asyncio.run(fifty()) == [[DELETE]] * 50
    assert sorted(kube.authz.asked) == ["create", "delete"]
    assert access._own_asking == {}  # nothing left behind
    assert _missing(kube) == [DELETE]  # a refusal is asked again next time
    assert sorted(kube.authz.asked) == ["create", "delete", "delete"]


def test_a_cancelled_caller_does_not_cancel_the_shared_review() -> None:
    kube = FakeKube({"create", "delete"})
    kube.authz = SlowAuthz({"create", "delete"})

    async def run() -> list[rbac.Permission]:
        first = asyncio.ensure_future(access.own_missing(kube, [CREATE]))  # type: ignore[arg-type]
        second = asyncio.ensure_future(access.own_missing(kube, [CREATE]))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        first.cancel()
        return await second

    assert asyncio.run(run()) == []
    assert kube.authz.asked == ["create"]
