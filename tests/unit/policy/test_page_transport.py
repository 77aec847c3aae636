"""Plain HTTP only on loopback or behind a proxy that says so: tokens are pasted into the page."""

from __future__ import annotations

import pytest

from agent_authority.policy import page_transport


@pytest.mark.parametrize(
    ("addr", "tls", "insecure", "refused"),
    [
        pytest.param("127.0.0.1", False, False, False, id="loopback-v4-plain-http"),
        pytest.param("::1", False, False, False, id="loopback-v6-plain-http"),
        pytest.param("localhost", False, False, False, id="localhost-plain-http"),
        pytest.param("0.0.0.0", False, False, True, id="every-address-plain-http-refused"),  # noqa: S104
        pytest.param("10.0.0.5", False, False, True, id="a-lan-address-plain-http-refused"),
        pytest.param("10.0.0.5", True, False, False, id="a-lan-address-with-tls"),
        pytest.param("0.0.0.0", False, True, False, id="behind-a-tls-proxy-by-choice"),  # noqa: S104
        pytest.param("web.internal", False, False, True, id="a-host-name-is-not-loopback"),
    ],
)
def test_listen_problem(addr: str, tls: bool, insecure: bool, refused: bool) -> None:
    problem = page_transport.listen_problem(addr, tls, insecure)
    assert (problem is not None) is refused
    if problem:
        assert addr in problem
        assert "--approvals-cert" in problem


@pytest.mark.parametrize(
    ("tls", "insecure", "secure"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_cookie_secure(tls: bool, insecure: bool, secure: bool) -> None:
    assert page_transport.cookie_secure(tls, insecure) is secure
