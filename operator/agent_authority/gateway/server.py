"""The session gateway's HTTPS server: authenticate, check, forward, stream, record, cut off.

One request, in order:

1. **authenticate** the bearer (:mod:`authentication`): unknown tokens and sessions that ended,
   expired or were revoked get 401 at once;
2. **check** it against the session's effective rules (:func:`policy.gateway.decide`): a refusal
   is a Kubernetes ``Status`` (403 naming the rule that would be needed, 405, 413); refusals that
   are deviations are counted against the grant's ``maxDeniedRequests`` before the answer goes
   out, and the one that exceeds it stops the session in this replica at once (its revocation
   then runs in the background);
3. **forward** it as the operator impersonating the session's ServiceAccount, with the
   correlation id (session uid / request id) as the apiserver's ``Audit-ID``;
4. **stream** the response through chunk by chunk (watches, chunked lists, followed logs), each
   registered in the :class:`view.View` so a revocation can cut it; a 403 from the apiserver is a
   deviation too;
5. **record** it: one audit-trail record and the request metrics.

Memory: asyncio gives every TLS connection a 256 KiB read buffer, and a gateway stream holds two
(agent → gateway, gateway → apiserver), so an idle watch would cost half a MiB. The gateway lowers
that buffer to :data:`TLS_READ_BUFFER` (a process-wide asyncio setting; reads then return at most
that much at a time, two TLS records).

Latency: the gateway shares one interpreter with threads that hold the GIL for long stretches
(the audit records of :mod:`recording` are hashed and signed on a worker thread, the Kubernetes
client of the controllers decodes JSON on its threads). CPython hands the GIL back to a waiting
thread only every switch interval (5 ms by default), and the event loop gives it up at every
``select``: one request waits for it several times, so under load a GET gained tens of
milliseconds doing nothing. The gateway lowers the interval to :data:`SWITCH_INTERVAL_SECONDS`
(a process-wide interpreter setting), and freezes the objects alive once it has started
(``gc.freeze``) so that full garbage collections scan only what was made since, not the whole
heap of a long-running operator (full collections were the multi-10-ms pauses in the p99).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import gc
import json
import logging
import ssl
import sys
import time
import uuid
from asyncio import sslproto
from collections.abc import Coroutine
from typing import Any

import aiohttp
import multidict
from aiohttp import web

from agent_authority import metrics
from agent_authority.audit import trail
from agent_authority.controllers import deviations
from agent_authority.gateway import authentication, recording, view
from agent_authority.kube import api, resources, session_access, upstream
from agent_authority.models import grant
from agent_authority.policy import gateway

logger = logging.getLogger(__name__)

TLS_READ_BUFFER = 32 * 1024
SWITCH_INTERVAL_SECONDS = 0.0005
"""How long another thread may hold the GIL while the event loop waits for it (CPython's
default is 0.005 s): see the module docstring."""
DEADLINE_CHECK_SECONDS = 0.1
"""How often open streams are checked against their session's ``expiresAt``."""
WHOLE_BODY_BYTES = 64 * 1024
"""A response body of known length up to this is read whole and sent with its headers in one
write; longer ones, and every body of unknown length (watches, chunked lists, followed logs), are
streamed through chunk by chunk."""
ALPN_PROTOCOLS = ("http/1.1",)
"""What the gateway answers a TLS client's ALPN offer with. HTTP/1.1 only: aiohttp's server
does not speak HTTP/2, and saying ``http/1.1`` explicitly makes a client that offers ``h2`` first
(client-go, kubectl, httpx) settle on HTTP/1.1 in the handshake, with no guessing."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)
_NEVER_FORWARDED_PREFIXES = ("impersonate-", "x-remote-")
_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    502: "ServiceUnavailable",
    503: "ServiceUnavailable",
}


@dataclasses.dataclass(frozen=True)
class Config:
    addr: str
    port: int
    certfile: str
    keyfile: str
    audience: str


def own_rules(namespace: str) -> list[grant.PolicyRule]:
    """What every session may do in its own namespace (as its RBAC says: remediation requests)."""
    return [
        grant.PolicyRule(
            namespace=namespace,
            api_groups=list(r["apiGroups"]),
            resources=list(r["resources"]),
            verbs=list(r["verbs"]),
        )
        for r in session_access.agent_rules()
    ]


def _request_headers(headers: multidict.CIMultiDictProxy[str]) -> multidict.CIMultiDict[str]:
    out: multidict.CIMultiDict[str] = multidict.CIMultiDict()
    for key, value in headers.items():
        lower = key.lower()
        if lower in _HOP_BY_HOP or lower in {"authorization", "audit-id"}:
            continue
        if lower.startswith(_NEVER_FORWARDED_PREFIXES):
            continue
        out.add(key, value)
    return out


def _response_headers(headers: multidict.CIMultiDictProxy[str]) -> multidict.CIMultiDict[str]:
    out: multidict.CIMultiDict[str] = multidict.CIMultiDict()
    for key, value in headers.items():
        if key.lower() not in _HOP_BY_HOP:
            out.add(key, value)
    return out


def status_response(
    code: int, message: str, info: gateway.RequestInfo | None = None
) -> web.Response:
    reason = _REASONS.get(code, "Failure")
    body = gateway.status_body(code, reason, message, info)
    return web.Response(
        status=code, text=json.dumps(body), content_type="application/json", headers=_no_store()
    )


def _no_store() -> dict[str, str]:
    return {"Cache-Control": "no-store"}


class Gateway:
    """The server, its view of sessions and the work it does per request."""

    def __init__(self, kube: api.Kube, config: Config, log: trail.Trail | None = None) -> None:
        self.kube = kube
        self.config = config
        self.upstream = upstream.Upstream.from_kube(kube)
        self.view = view.View(own_rules)
        self.authn = authentication.Authenticator(self.upstream, config.audience, self.view)
        self.recorder = recording.Recorder(log or trail.TRAIL)
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.port = config.port

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        await self.upstream.open()
        self.recorder.start()
        self._spawn(self._cut_at_deadlines())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.certfile, self.config.keyfile)
        context.set_alpn_protocols(list(ALPN_PROTOCOLS))  # no h2: see ALPN_PROTOCOLS
        app = web.Application(client_max_size=gateway.MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.addr, self.config.port, ssl_context=context)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the bound port
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        gc.freeze()  # what start-up made lives on: later full collections leave it alone
        logger.info("session gateway listening on %s:%d", self.config.addr, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        for task in list(self._background):
            task.cancel()
        await self.recorder.close()
        await self.upstream.close()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("gateway background work failed", exc_info=task.exception())

    async def _cut_at_deadlines(self) -> None:
        """Cut the open streams of sessions whose ``expiresAt`` has passed, by this replica's
        clock, every :data:`DEADLINE_CHECK_SECONDS` (requests are checked on arrival)."""
        while True:
            await asyncio.sleep(DEADLINE_CHECK_SECONDS)
            cut = view.cut_all(self.view.expired(datetime.datetime.now(datetime.UTC)))
            if cut:
                metrics.GATEWAY_CUT_STREAMS.inc(cut)

    # -- the watch feeds this ----------------------------------------------------------------

    def observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        """One IncidentSession watch event: update the view, cut what lost access."""
        cut = view.cut_all(self.view.observe(event_type, body))
        if cut:
            metrics.GATEWAY_CUT_STREAMS.inc(cut)
        if event_type == "DELETED":
            self._locks.pop(str(body["metadata"]["uid"]), None)

    # -- requests ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        auth = await self.authn.authenticate(request.headers.get("Authorization"))
        if isinstance(auth, gateway.Refused):
            metrics.GATEWAY_REFUSALS.labels(auth.reason.value).inc()
            return status_response(auth.code, auth.message)
        entry = auth
        request_id = uuid.uuid4().hex
        if self.recorder.behind:
            metrics.GATEWAY_REFUSALS.labels("AuditBehind").inc()
            return status_response(
                503, "the audit trail is not keeping up; no call is forwarded unrecorded"
            )
        if request.raw_path.startswith("/"):
            info = gateway.classify(request.method, request.path, request.query)
        else:
            info = gateway.Refused(
                gateway.Refusal.NOT_AN_API_PATH,
                "the session gateway forwards origin-form Kubernetes API paths only; "
                f"{request.raw_path[:200]!r} names another server",
            )
        upgrade = bool(request.headers.get("Upgrade")) or (
            "upgrade" in request.headers.get("Connection", "").lower()
        )
        decision = gateway.decide(
            info, entry.rules, upgrade_header=upgrade, body_bytes=request.content_length
        )
        body: bytes | None = None
        if isinstance(decision, gateway.Allowed) and request.body_exists:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                decision = gateway.decide(info, entry.rules, body_bytes=gateway.MAX_BODY_BYTES + 1)
        if isinstance(decision, gateway.Refused):
            return await self._refuse(entry, decision, request_id, started)
        return await self._forward(request, entry, decision, body, request_id, started)

    def _correlation(self, entry: view.Entry, request_id: str) -> str:
        return f"{entry.uid}/{request_id}"

    def _record(
        self,
        entry: view.Entry,
        request_id: str,
        info: gateway.RequestInfo | None,
        code: int,
        sent: int,
        started: float,
        outcome: str,
    ) -> bool:
        seconds = time.monotonic() - started
        verb = info.verb if info else "unknown"
        metrics.GATEWAY_REQUESTS.labels(entry.grant_name, verb, str(code)).inc()
        what = gateway.describe(info) if info else "a request that is not an API call"
        return self.recorder.submit(
            recording.Call(
                session=entry.body,
                correlation_id=self._correlation(entry, request_id),
                actor=entry.username,
                reason=outcome,
                message=f"{what}: HTTP {code}",
                details={
                    "requestId": request_id,
                    "verb": verb,
                    "apiGroup": info.api_group if info else None,
                    "resource": info.full_resource if info else None,
                    "namespace": (info.namespace or None) if info else None,
                    "name": (info.name or None) if info else None,
                    "path": info.path if info else None,
                    "code": code,
                    "bytes": sent,
                    "durationMicros": round(seconds * 1_000_000),
                },
            )
        )

    async def _refuse(
        self, entry: view.Entry, refused: gateway.Refused, request_id: str, started: float
    ) -> web.StreamResponse:
        metrics.GATEWAY_REFUSALS.labels(refused.reason.value).inc()
        self._record(
            entry, request_id, refused.info, refused.code, 0, started, refused.reason.value
        )
        message = refused.message
        if refused.deviation:
            what = gateway.describe(refused.info) if refused.info else "a non-API request"
            revoked = await self._deviation(entry, what, source="gateway")
            if revoked:
                message += "; this was one denied request too many: the session is revoked"
        return status_response(refused.code, message, refused.info)

    async def _deviation(self, entry: view.Entry, what: str, *, source: str) -> bool:
        """Count a denied request of ``entry``'s session; True when that revoked it."""
        async with self._locks[entry.uid]:
            if self.view.stopped(entry.uid):
                return True
            try:
                # The session (its count, read fresh) and its grant (the allowance) in one
                # round trip: the grant is named by the watched spec, whose grantRef never
                # changes; the fresh session is checked to name the same grant.
                body, grant_body = await asyncio.gather(
                    resources.get_session(self.kube, entry.namespace, entry.name),
                    resources.get_grant(self.kube, entry.grant_name),
                )
                if (
                    body is None
                    or body["metadata"]["uid"] != entry.uid
                    or (body.get("status") or {}).get("phase") != view.ACTIVE
                ):
                    return False
                same_grant = body["spec"]["grantRef"]["name"] == entry.grant_name
                denial = await deviations.count_denied(
                    self.kube,
                    body,
                    what=what,
                    actor=entry.username,
                    source=source,
                    allowed=deviations.allowance(grant_body) if same_grant else None,
                )
            except Exception:
                # Fail closed: a denial that cannot be counted stops the session here.
                logger.exception("could not count a denied request of %s", entry.name)
                view.cut_all(self.view.stop(entry.uid, "its denied requests cannot be counted"))
                return True
            if not denial.exceeded:
                return False
            reason = f"session {entry.namespace}/{entry.name} was revoked (Deviation)"
            metrics.GATEWAY_CUT_STREAMS.inc(view.cut_all(self.view.stop(entry.uid, reason)))
            self._spawn(deviations.revoke_for_deviation(self.kube, body, denial))
            return True

    async def _whole_body(self, up: aiohttp.ClientResponse, stream: view.Stream) -> bytes | None:
        """A small body of known length, read whole (most GETs): it is then answered in one
        write, headers and body together, instead of two TLS records and two sends. None when
        the session was cut meanwhile."""
        assert up.content_length is not None
        try:
            return await up.content.readexactly(up.content_length)
        except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError):
            if stream.cut_reason is None:
                raise
            return None

    async def _forward(
        self,
        request: web.Request,
        entry: view.Entry,
        allowed: gateway.Allowed,
        body: bytes | None,
        request_id: str,
        started: float,
    ) -> web.StreamResponse:
        info = allowed.info
        try:
            up = await self.upstream.forward(
                request.method,
                request.raw_path,
                _request_headers(request.headers),
                body,
                impersonate=entry.username,
                audit_id=self._correlation(entry, request_id),
            )
        except (aiohttp.ClientError, TimeoutError) as e:
            self._record(entry, request_id, info, 502, 0, started, "UpstreamUnreachable")
            return status_response(502, f"the apiserver could not be reached: {e}", info)
        stream = view.Stream(entry.uid, info, up.close)
        self.view.add_stream(stream)
        metrics.GATEWAY_STREAMS.inc()
        sent, code, outcome = 0, up.status, "Forwarded"
        try:
            why = self.view.refusal(entry.uid)  # ended or revoked while it was upstream
            if why is not None:
                code, outcome = 401, "SessionNotActive"
                return status_response(401, f"{why}: its credentials are revoked", info)
            if (
                up.content_length is not None
                and up.content_length <= WHOLE_BODY_BYTES
                and request.method != "HEAD"
            ):
                data = await self._whole_body(up, stream)
                why = stream.cut_reason or self.view.refusal(entry.uid)
                if data is None or why is not None:
                    code, outcome = 401, "SessionNotActive"
                    return status_response(401, f"{why}: its credentials are revoked", info)
                sent = len(data)
                return web.Response(
                    status=up.status,
                    reason=up.reason,
                    headers=_response_headers(up.headers),
                    body=data,
                )
            response = web.StreamResponse(
                status=up.status, reason=up.reason, headers=_response_headers(up.headers)
            )
            if up.content_length is not None and request.method != "HEAD":
                response.content_length = up.content_length
            await response.prepare(request)
            try:
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
                    sent += len(chunk)
            except (aiohttp.ClientError, TimeoutError):
                if stream.cut_reason is None:
                    raise
            if stream.cut_reason is not None:
                outcome = "Cut"
                response.force_close()
                if request.transport is not None:
                    # A cut body must not look complete: no last chunk (chunked streams: watches,
                    # followed logs) and no full length, so the client reports an interrupted
                    # stream instead of a container that stopped logging or a watch that expired.
                    request.transport.close()
                    return response
            await response.write_eof()
        finally:
            if outcome == "Forwarded" and up.content.at_eof():
                up.release()
            else:
                up.close()
            self.view.remove_stream(stream)
            metrics.GATEWAY_STREAMS.dec()
            self._record(entry, request_id, info, code, sent, started, outcome)
        if up.status == 403 and allowed.needs_rule:
            await self._deviation(entry, gateway.describe(info), source="apiserver")
        return response
