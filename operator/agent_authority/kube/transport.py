"""The asyncio HTTP transport under :mod:`agent_authority.kube.api`: native async calls, each with
a timeout, cancelled for real when the awaiting task is.

The official client stays the one place that knows Kubernetes paths, query parameters, content
types and credentials (the kubeconfig or in-cluster loader, token refresh included): an API method
such as ``core.read_namespaced_secret`` is called as usual, but on a :class:`PreparingApiClient`
inside :func:`prepared` its last step, the HTTP request, is not made; the request it would have
made comes back as a :class:`Request`. :class:`Transport` sends that request over one aiohttp
session (aiohttp is the HTTP stack kopf already runs on), so no call occupies a worker thread and
a cancelled handler closes its connection instead of leaving a request running.

This module owns the request/response plumbing only; error translation stays in
:mod:`agent_authority.kube.errors` and the public helpers in :mod:`agent_authority.kube.api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import ssl
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from kubernetes import client
from kubernetes.client import exceptions

Timeout = float | tuple[float, float]

# How long an idle connection stays open for the next call: Go's HTTP client default, which
# client-go's controllers run with. aiohttp's own default (15 s) closed most of a burst's
# connections before the next burst, and every new one costs a TLS handshake on both sides
# (a run of 100 sessions in three bursts opened 471 connections to the apiserver).
IDLE_SECONDS = 90.0

_preparing: contextvars.ContextVar[bool] = contextvars.ContextVar("preparing", default=False)


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request as the official client would have sent it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: Timeout | None


class Prepared(Exception):
    """Raised out of an API method called inside :func:`prepared`; carries its :class:`Request`."""

    def __init__(self, request: Request) -> None:
        super().__init__(request.method, request.url)
        self.request = request


@contextlib.contextmanager
def prepared() -> Iterator[None]:
    """API methods of a :class:`PreparingApiClient` called in this block raise :class:`Prepared`."""
    token = _preparing.set(True)
    try:
        yield
    finally:
        _preparing.reset(token)


def _encode(headers: dict[str, str], body: Any) -> bytes | None:
    """The request body as the client's REST layer encodes it (JSON, or YAML given as JSON)."""
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    # No content type is JSON to the client's REST layer (and the apiserver): say so, or aiohttp
    # would label the bytes application/octet-stream, which the apiserver refuses.
    headers.setdefault("Content-Type", "application/json")
    if headers.get("Content-Type") == "application/json-patch+json" and not isinstance(body, list):
        # As the client does: an object (not a list of operations) patches by strategic merge.
        headers["Content-Type"] = "application/strategic-merge-patch+json"
    return json.dumps(body).encode()


class PreparingApiClient(client.ApiClient):
    """An ``ApiClient`` whose requests, inside :func:`prepared`, are handed back, not sent.

    Outside that block it is the ordinary synchronous client (the CLI's :func:`api.sync`)."""

    def __init__(self, configuration: client.Configuration, limit: int) -> None:
        super().__init__(configuration)
        self.transport = Transport(configuration, limit)

    def call_api(
        self,
        method: str,
        url: str,
        header_params: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Timeout | None = None,
    ) -> Any:
        if not _preparing.get():
            return super().call_api(method, url, header_params, body, post_params, _request_timeout)
        if post_params:
            raise ValueError("form posts are not supported by the async transport")
        headers = dict(header_params or {})
        data = _encode(headers, body)
        raise Prepared(Request(method, url, headers, data, _request_timeout))


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext | bool:
    """TLS as the configuration (kubeconfig or in-cluster) asks: its CA, client cert, key."""
    if not configuration.host.startswith("https:"):
        return False
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """``(connect, read)`` as the sync client reads it; one number bounds the whole call."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return aiohttp.ClientTimeout(total=connect + read, sock_connect=connect, sock_read=read)
    return aiohttp.ClientTimeout(total=timeout)


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    reason: str
    data: bytes


async def _close_at_shutdown(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    """Yields once; closes ``session`` when its loop shuts its async generators down."""
    try:
        yield
    finally:
        await session.close()


class Transport:
    """One aiohttp session per event loop (a process normally has one), ``limit`` connections."""

    def __init__(self, configuration: client.Configuration, limit: int) -> None:
        self._ssl = _ssl_context(configuration)
        self._server_name = configuration.tls_server_name or None
        self._limit = limit
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
            weakref.WeakKeyDictionary()
        )

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, ssl=self._ssl, keepalive_timeout=IDLE_SECONDS
            )
            session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
            self._sessions[loop] = session
            # Closed with its loop: the loop closes the async generators it has seen when it
            # shuts down (``asyncio.run`` does), so a short-lived loop (the CLI, a test's
            # ``asyncio.run``) leaves no connection open behind it.
            closer = _close_at_shutdown(session)
            self._closers[loop] = closer
            await anext(closer)
        return session

    async def send(self, request: Request, default_timeout: Timeout) -> Response:
        """Send ``request``; its response (any status). Raises aiohttp/timeout errors as-is."""
        timeout = client_timeout(request.timeout or default_timeout)
        extra: dict[str, Any] = {}
        if self._server_name:
            extra["server_hostname"] = self._server_name
        session = await self._session()
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=timeout,
            **extra,
        ) as response:
            data = await response.read()
            return Response(response.status, response.reason or "", data)

    async def close(self) -> None:
        """Close this loop's session (the operator's cleanup)."""
        with contextlib.suppress(RuntimeError):
            session = self._sessions.pop(asyncio.get_running_loop(), None)
            if session is not None:
                await session.close()


def api_exception(response: Response) -> exceptions.ApiException:
    """A non-2xx response as the client's ``ApiException`` (what :mod:`errors` translates)."""
    return exceptions.ApiException(
        status=response.status,
        reason=response.reason,
        body=response.data.decode("utf-8", "replace"),
    )
