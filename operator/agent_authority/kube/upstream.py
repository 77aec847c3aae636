"""The session gateway's connection to the apiserver: raw HTTP with the operator's credential.

The gateway forwards requests byte for byte and streams responses, which the synchronous
Kubernetes client cannot do, so this module keeps one ``aiohttp`` client session built from the
same configuration as :mod:`agent_authority.kube.api` (server, CA, client certificate or bearer
token). Two kinds of call go through it:

- :meth:`Upstream.token_review`: who a bearer token belongs to, for the gateway's audience;
- :meth:`Upstream.forward`: a request made as the operator impersonating a session's
  ServiceAccount (``Impersonate-User``), with the response left open for streaming.

Responses are not decompressed (``Content-Encoding`` passes through), so the gateway never holds
more than one chunk of a body.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import multidict
import yarl
from kubernetes import client

from agent_authority.kube import api, errors

IMPERSONATE_USER = "Impersonate-User"
AUDIT_ID = "Audit-ID"
CREDENTIAL_REFRESH_SECONDS = 60.0
CONNECT_TIMEOUT = 5.0
REVIEW_TIMEOUT = 10.0
SYNCED = "SYNCED"
"""Pseudo event type of :func:`watch_events`: every listed object has been yielded."""


class Upstream:
    """One pooled HTTPS client to the apiserver, authenticated as the operator."""

    def __init__(self, configuration: client.Configuration, pool_size: int = 256) -> None:
        self._configuration = configuration
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._authorization: str | None = None
        self._refreshed = float("-inf")
        self.host = str(configuration.host).rstrip("/")

    @classmethod
    def from_kube(cls, kube: api.Kube) -> Upstream:
        return cls(kube.client.configuration)

    def _ssl(self) -> ssl.SSLContext | bool:
        c = self._configuration
        if not c.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=c.ssl_ca_cert or None)
        if c.cert_file:
            context.load_cert_chain(c.cert_file, c.key_file)
        return context

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=self._pool_size)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _credential(self) -> str | None:
        """The operator's ``Authorization`` header, refreshed (in-cluster tokens rotate)."""
        c = self._configuration
        now = time.monotonic()
        if now - self._refreshed > CREDENTIAL_REFRESH_SECONDS:
            hook: Any = getattr(c, "refresh_api_key_hook", None)
            if hook is not None:
                hook(c)
            # In-cluster and kubeconfig token loaders store it as BearerToken ("bearer <token>").
            value = c.get_api_key_with_prefix("authorization", alias="BearerToken")
            self._authorization = str(value) if value else None
            self._refreshed = now
        return self._authorization

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise errors.KubeError("the gateway's upstream connection is not open")
        return self._session

    async def token_review(self, token: str, audiences: Sequence[str]) -> api.Json:
        """The ``status`` of a TokenReview of ``token`` for ``audiences``."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": list(audiences)},
        }
        headers = {**self._operator_headers(), "Content-Type": "application/json"}
        try:
            async with self._client().post(
                f"{self.host}/apis/authentication.k8s.io/v1/tokenreviews",
                data=json.dumps(body),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=REVIEW_TIMEOUT),
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise errors.KubeError(f"TokenReview could not be sent: {e}") from e
        if response.status not in {200, 201}:
            raise errors.KubeError(f"TokenReview failed with HTTP {response.status}: {text}")
        status: api.Json = json.loads(text).get("status") or {}
        return status

    def _operator_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        credential = self._credential()
        if credential:
            headers["Authorization"] = credential
        return headers

    async def raw(self, method: str, path_and_query: str) -> aiohttp.ClientResponse:
        """A request as the operator itself (no impersonation); the caller releases it."""
        return await self._client().request(
            method,
            yarl.URL(f"{self.host}{path_and_query}", encoded=True),
            headers=self._operator_headers(),
        )

    async def get_json(self, path: str) -> api.Json:
        """GET ``path`` as the operator; the body as JSON."""
        response = await self.raw("GET", path)
        async with response:
            text = await response.text()
            if response.status != 200:
                raise errors.KubeError(f"GET {path}: HTTP {response.status}: {text[:300]}")
        body: api.Json = json.loads(text)
        return body

    async def forward(
        self,
        method: str,
        path_and_query: str,
        headers: multidict.CIMultiDict[str],
        body: bytes | None,
        *,
        impersonate: str,
        audit_id: str,
    ) -> aiohttp.ClientResponse:
        """Send the request as the operator impersonating ``impersonate``; the caller reads the
        response (streaming) and releases it."""
        out = multidict.CIMultiDict(headers)
        out[IMPERSONATE_USER] = impersonate
        out[AUDIT_ID] = audit_id
        credential = self._credential()
        if credential:
            out["Authorization"] = credential
        return await self._client().request(
            method,
            yarl.URL(f"{self.host}{path_and_query}", encoded=True),
            headers=out,
            data=body if body else None,
            allow_redirects=False,
        )


async def watch_events(
    upstream: Upstream, path: str, *, timeout_seconds: int = 300
) -> AsyncIterator[tuple[str | None, api.Json]]:
    """List ``path`` (a collection) and watch it from there, for ever: yields (type, object),
    type ``None`` for the listed objects and then ``(SYNCED, {})`` once the listing is complete.
    Relists when the watch expires (HTTP 410)."""
    while True:
        listing = await upstream.get_json(path)
        for item in listing.get("items") or []:
            yield None, item
        yield SYNCED, {}
        version = (listing.get("metadata") or {}).get("resourceVersion", "")
        while version:
            query = (
                f"?watch=true&allowWatchBookmarks=true&resourceVersion={version}"
                f"&timeoutSeconds={timeout_seconds}"
            )
            response = await upstream.raw("GET", path + query)
            try:
                if response.status == 410:
                    break
                if response.status != 200:
                    raise errors.KubeError(f"watch {path}: HTTP {response.status}")
                async for line in response.content:
                    event = json.loads(line)
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        version = ""
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if kind != "BOOKMARK":
                        yield kind, obj
            finally:
                response.release()
