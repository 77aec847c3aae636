"""The page over TLS sets a Secure cookie; plain HTTP off loopback never starts."""

from __future__ import annotations

import asyncio
import pathlib
import ssl
from typing import Any

import aiohttp
import pytest

from agent_authority import certs
from agent_authority.approvals import server

NO_CLUSTER: Any = object()  # these paths never reach the apiserver


def test_over_tls_the_sign_in_cookie_is_secure_httponly_and_strict(tmp_path: pathlib.Path) -> None:
    ca = certs.Authority.create(tmp_path, "page-ca")
    pair = ca.issue(
        tmp_path, "page", common_name="127.0.0.1", ip_addresses=["127.0.0.1"], server=True
    )

    async def scenario() -> None:
        page = server.PageServer(
            NO_CLUSTER,
            server.Settings(port=0, cert=str(pair.cert), key=str(pair.key)),
        )
        await page.start()
        try:
            assert page.url.startswith("https://127.0.0.1:")
            trust = ssl.create_default_context(cafile=str(ca.files.cert))
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{page.url}/login", ssl=trust) as answer,
            ):
                assert answer.status == 200
                cookie = answer.headers["Set-Cookie"]
            for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/login"):
                assert flag in cookie, cookie
            assert "script-src" not in answer.headers["Content-Security-Policy"]
        finally:
            await page.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        pytest.param(
            server.Settings(addr="0.0.0.0", port=0),  # noqa: S104
            "refusing plain HTTP",
            id="plain-http-on-every-address",
        ),
        pytest.param(
            server.Settings(port=0, cert="/some/cert.pem"), "both", id="a-cert-without-its-key"
        ),
    ],
)
def test_refused_settings_never_listen(settings: server.Settings, problem: str) -> None:
    with pytest.raises(server.ServeError, match=problem):
        asyncio.run(server.PageServer(NO_CLUSTER, settings).start())
