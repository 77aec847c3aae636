"""Start and stop the approval page (in the operator, or alone with ``approvals serve``)."""

from __future__ import annotations

import dataclasses
import ssl

from aiohttp import web

from agent_authority.approvals import app, logins
from agent_authority.kube import api
from agent_authority.policy import page_transport


class ServeError(RuntimeError):
    """The page cannot be served as configured (the message says why and what would do)."""


@dataclasses.dataclass
class Settings:
    addr: str = "127.0.0.1"
    port: int = 8443
    cert: str | None = None
    key: str | None = None
    insecure_http: bool = False
    """Plain HTTP on a non-loopback address: only behind a TLS-terminating proxy."""
    login_seconds: int = logins.DEFAULT_SECONDS
    operator_username: str = ""
    """The operator's identity, never offered a button (the webhook refuses it too)."""


class PageServer:
    def __init__(self, kube: api.Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.logins = logins.Logins(settings.login_seconds)
        self._runner: web.AppRunner | None = None
        self.port = settings.port

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.cert else "http"
        return f"{scheme}://{self.settings.addr}:{self.port}"

    async def start(self) -> None:
        s = self.settings
        tls = bool(s.cert and s.key)
        if bool(s.cert) != bool(s.key):
            raise ServeError("approvals page: give both a certificate and its key, or neither")
        problem = page_transport.listen_problem(s.addr, tls, s.insecure_http)
        if problem is not None:
            raise ServeError(problem)
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(s.cert), str(s.key))
        application = app.build(
            app.Context(
                kube=self.kube,
                logins=self.logins,
                operator_username=s.operator_username,
                secure_cookies=page_transport.cookie_secure(tls, s.insecure_http),
            )
        )
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.addr, s.port, ssl_context=context)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.logins.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
