"""Sign-in records: the cookie is signed, short-lived and names a login held only server-side."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.approvals import logins
from agent_authority.models import base

ALICE = base.UserInfo(username="alice")


class FakeClient:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeKube:
    def __init__(self) -> None:
        self.client = FakeClient()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _logins(seconds: int = 900) -> tuple[logins.Logins, Clock]:
    clock = Clock()
    return logins.Logins(seconds, clock=clock), clock


def _create(store: logins.Logins) -> tuple[logins.Login, str, Any]:
    kube: Any = FakeKube()
    login, cookie = store.create(ALICE, {}, kube)
    return login, cookie, kube


def test_a_cookie_finds_its_login_until_it_expires() -> None:
    store, clock = _logins(900)
    login, cookie, kube = _create(store)
    assert store.find(cookie) is login
    assert login.user.username == "alice"
    clock.now += 901
    assert store.find(cookie) is None
    assert kube.client.closed  # the person's client is released


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"), id="mac-changed"),
        pytest.param(
            lambda c: ".".join(
                [c.split(".")[0], str(int(c.split(".")[1]) + 3600), c.split(".")[2]]
            ),
            id="expiry-extended",
        ),
        pytest.param(lambda c: "x" + c, id="another-id"),
        pytest.param(lambda c: c.split(".")[0], id="id-alone"),
        pytest.param(lambda c: "", id="empty"),
    ],
)
def test_a_tampered_cookie_finds_nobody(tamper: Any) -> None:
    store, _ = _logins()
    _, cookie, _ = _create(store)
    assert store.find(tamper(cookie)) is None


def test_a_cookie_of_another_server_finds_nobody() -> None:
    one, _ = _logins()
    other, _ = _logins()
    _, cookie, _ = _create(one)
    assert other.find(cookie) is None


def test_sign_out_drops_the_login() -> None:
    store, _ = _logins()
    login, cookie, kube = _create(store)
    store.drop(login.id)
    assert store.find(cookie) is None
    assert kube.client.closed


@pytest.mark.parametrize(("asked", "kept"), [(10, 60), (900, 900), (86400, logins.MAX_SECONDS)])
def test_login_lifetime_is_bounded(asked: int, kept: int) -> None:
    assert logins.Logins(asked).seconds == kept


def test_each_login_has_its_own_csrf_token() -> None:
    store, _ = _logins()
    first, _, _ = _create(store)
    second, _, _ = _create(store)
    assert first.csrf != second.csrf
    assert logins.same(first.csrf, first.csrf)
    assert not logins.same(second.csrf, first.csrf)
    assert not logins.same("", first.csrf)
    assert not logins.same(None, first.csrf)


@pytest.mark.parametrize(
    ("pasted", "token"),
    [
        pytest.param("  eyJ.a.b \n", "eyJ.a.b", id="raw-token-trimmed"),
        pytest.param("Bearer eyJ.a.b", "eyJ.a.b", id="header-value"),
        pytest.param("bearer   eyJ.a.b ", "eyJ.a.b", id="any-case-any-space"),
        pytest.param("Bearer", "Bearer", id="only-the-word-is-left-alone"),
        pytest.param("Bearerx eyJ", "Bearerx eyJ", id="other-scheme-left-alone"),
        pytest.param("", "", id="empty"),
    ],
)
def test_a_pasted_bearer_prefix_is_removed(pasted: str, token: str) -> None:
    assert logins.pasted_token(pasted) == token
