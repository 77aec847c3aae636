"""Bearer → session: TokenReview for the gateway's audience (cached, single-flight) + the view."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from typing import Any

import pytest

from agent_authority.gateway import authentication, server, view
from agent_authority.kube import errors
from agent_authority.policy import gateway

AUDIENCE = "agent-authority.io/gateway"
SA = "system:serviceaccount:agents:aa-triage-1"
LATER = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()


class FakeUpstream:
    """Answers TokenReviews from a table; counts them."""

    def __init__(self, answers: dict[str, dict[str, Any] | Exception]) -> None:
        self.answers = answers
        self.reviews = 0

    async def token_review(self, token: str, audiences: Sequence[str]) -> dict[str, Any]:
        self.reviews += 1
        await asyncio.sleep(0.01)
        answer = self.answers.get(token, {"authenticated": False, "error": "invalid token"})
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(username: str = SA, audiences: list[str] | None = None) -> dict[str, Any]:
    return {
        "authenticated": True,
        "user": {"username": username},
        "audiences": audiences if audiences is not None else [AUDIENCE],
    }


def session(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "u1", "namespace": "agents", "name": "triage"},
        "spec": {"grantRef": {"name": "sre"}, **spec},
        "status": {"phase": "Active", "serviceAccountName": "aa-triage-1", "expiresAt": LATER},
    }


def make(answers: dict[str, Any]) -> tuple[authentication.Authenticator, FakeUpstream, view.View]:
    fake = FakeUpstream(answers)
    sessions = view.View(server.own_rules)
    sessions.observe(None, session())
    return authentication.Authenticator(fake, AUDIENCE, sessions), fake, sessions  # type: ignore[arg-type]


CASES = [
    pytest.param(None, "no bearer token", id="no-header"),
    pytest.param("Basic abc", "no bearer token", id="not-bearer"),
    pytest.param("Bearer bad", "does not authenticate", id="invalid-token"),
    pytest.param("Bearer apiserver", "does not authenticate", id="other-audience"),
    pytest.param("Bearer person", "not a session identity", id="not-a-session-account"),
    pytest.param("Bearer stranger", "no session this gateway knows", id="unknown-session"),
    pytest.param("Bearer broken", "could not be reviewed", id="review-failed-fails-closed"),
]
ANSWERS = {
    "good": ok(),
    "apiserver": ok(audiences=["https://kubernetes.default.svc.cluster.local"]),
    "person": ok(username="alice"),
    "stranger": ok(username="system:serviceaccount:agents:aa-other-2"),
    "broken": errors.KubeError("connection refused"),
}


@pytest.mark.parametrize(("header", "why"), CASES)
def test_refusals_are_401(header: str | None, why: str) -> None:
    authn, _, _ = make(ANSWERS)
    result = asyncio.run(authn.authenticate(header))
    assert isinstance(result, gateway.Refused)
    assert result.code == 401
    assert not result.deviation
    assert why in result.message


def test_a_live_session_authenticates_and_is_cached() -> None:
    authn, fake, _ = make(ANSWERS)

    async def twice() -> list[Any]:
        return [await authn.authenticate("Bearer good") for _ in range(2)]

    results = asyncio.run(twice())
    assert all(isinstance(r, view.Entry) for r in results)
    assert fake.reviews == 1


def test_concurrent_requests_share_one_review() -> None:
    authn, fake, _ = make(ANSWERS)

    async def many() -> list[Any]:
        return await asyncio.gather(*(authn.authenticate("Bearer good") for _ in range(20)))

    assert all(isinstance(r, view.Entry) for r in asyncio.run(many()))
    assert fake.reviews == 1


def test_the_cache_never_delays_a_revocation() -> None:
    authn, _, sessions = make(ANSWERS)

    async def run() -> Any:
        assert isinstance(await authn.authenticate("Bearer good"), view.Entry)
        sessions.observe("MODIFIED", session(ended=True))
        return await authn.authenticate("Bearer good")  # still cached as a valid token

    refused = asyncio.run(run())
    assert isinstance(refused, gateway.Refused)
    assert refused.code == 401
    assert "has ended" in refused.message


def test_a_failed_review_is_not_cached() -> None:
    answers = dict(ANSWERS)
    answers["flaky"] = errors.KubeError("timeout")
    authn, fake, _ = make(answers)

    async def run() -> Any:
        assert isinstance(await authn.authenticate("Bearer flaky"), gateway.Refused)
        fake.answers["flaky"] = ok()
        return await authn.authenticate("Bearer flaky")

    assert isinstance(asyncio.run(run()), view.Entry)
    assert fake.reviews == 2


def test_a_cached_answer_is_renewed_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    authn, fake, _ = make(ANSWERS)
    clock = [1000.0]
    monkeypatch.setattr(authentication, "_clock", lambda: clock[0])

    async def run() -> None:
        assert isinstance(await authn.authenticate("Bearer good"), view.Entry)
        clock[0] += authentication.REFRESH_AFTER_SECONDS + 0.1
        # Served from the cache at once, while a renewal starts.
        assert isinstance(await authn.authenticate("Bearer good"), view.Entry)
        await asyncio.sleep(0.05)  # the renewal lands
        assert fake.reviews == 2
        clock[0] += authentication.CACHE_SECONDS - 1
        assert isinstance(await authn.authenticate("Bearer good"), view.Entry)
        assert fake.reviews == 2, "the renewed answer is fresh: no third review"

    asyncio.run(run())
