"""Deviation detection from the apiserver's audit webhook: denied requests revoke sessions.

The apiserver posts batches of audit events (``audit.k8s.io/v1`` EventList) to ``/audit``. An
event whose user is a session's ServiceAccount and whose annotation
``authorization.k8s.io/decision`` is ``forbid`` is a denied request of that session: it is counted
in ``status.deniedRequests``, and once the count exceeds the grant's ``maxDeniedRequests`` (default
0: the first denial) the session is revoked with reason ``Deviation``.

This is after the fact and cannot block anything: RBAC already refused the request.

Who may post: the receiver does not start without a client CA, and it trusts that CA only (never
the system's CA store). A certificate of that CA is not enough either: the cluster CA signs every
user's client certificate, so the peer's subject common name must also be one of the configured
audit client names (the apiserver's audit client identity, ``--audit-client-name``). Anyone else
gets 403 and their events are never read. It listens on the configured address (127.0.0.1 unless
told otherwise).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import ssl
from typing import Any

from aiohttp import web

from agent_authority import metrics
from agent_authority.audit import trail
from agent_authority.controllers import handling, session_fields, session_revocation
from agent_authority.kube import api, errors, resources
from agent_authority.models import session
from agent_authority.policy import session_changes
from agent_authority.policy import sessions as session_policy

SA_PREFIX = "system:serviceaccount:"
DEFAULT_CLIENT_NAME = "system:kube-apiserver-audit"
"""The common name of the apiserver's audit client certificate unless configured otherwise."""
FORBID = "forbid"
SEEN = 10000
logger = logging.getLogger(__name__)


def denied_session_account(event: dict[str, Any]) -> tuple[str, str] | None:
    """(namespace, ServiceAccount) of a session whose request was forbidden, else None."""
    username = str((event.get("user") or {}).get("username") or "")
    decision = (event.get("annotations") or {}).get("authorization.k8s.io/decision")
    if decision != FORBID or not username.startswith(SA_PREFIX):
        return None
    namespace, _, name = username[len(SA_PREFIX) :].partition(":")
    if not name.startswith("aa-"):
        return None
    return namespace, name


class ReceiverError(Exception):
    """The receiver cannot start as configured (no client CA, no allowed client name)."""


def peer_common_names(peercert: Any) -> list[str]:
    """The subject common names of a verified peer certificate (``SSLSocket.getpeercert()``)."""
    names: list[str] = []
    for rdn in (peercert or {}).get("subject", ()):
        names.extend(str(value) for key, value in rdn if key == "commonName")
    return names


def client_allowed(peercert: Any, allowed: frozenset[str]) -> bool:
    """Whether a verified peer certificate names exactly one common name, and an allowed one."""
    names = peer_common_names(peercert)
    return len(names) == 1 and names[0] in allowed


def describe(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", event.get("requestURI", "?"))
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    where = f" in namespace {ref['namespace']}" if ref.get("namespace") else ""
    return f"{event.get('verb', '?')} {resource}{where}"


class Receiver:
    """The ``/audit`` endpoint and what it does with denied requests."""

    def __init__(self, kube: api.Kube, client_names: frozenset[str] | None = None) -> None:
        self.kube = kube
        self.client_names = client_names or frozenset({DEFAULT_CLIENT_NAME})
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._runner: web.AppRunner | None = None

    async def start(
        self, *, host: str, port: int, certfile: str, keyfile: str, client_ca: str | None
    ) -> None:
        if not client_ca:
            raise ReceiverError(
                "the /audit receiver needs --audit-client-ca (the CA of the apiserver's audit "
                "client certificate): without it anyone who reaches the port could revoke "
                "sessions. Set it, or turn the receiver off with --audit-port=0"
            )
        if not self.client_names:
            raise ReceiverError("the /audit receiver needs at least one --audit-client-name")
        # A server context that trusts the given CA only: create_default_context would also load
        # the system's CA store and accept any publicly issued client certificate.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile, keyfile)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
        app = web.Application()
        app.router.add_post("/audit", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        if not client_allowed(peercert, self.client_names):
            names = ", ".join(peer_common_names(peercert)) or "none"
            logger.warning("refused audit events from a client named %s", names)
            return web.Response(
                status=403,
                text=f"client certificate common name {names} is not an audit client "
                f"(allowed: {', '.join(sorted(self.client_names))})",
            )
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="the body is not JSON (an audit EventList)")
        if not isinstance(payload, dict):
            return web.Response(status=400, text="the body is not an audit EventList object")
        for event in payload.get("items") or []:
            if not isinstance(event, dict):
                continue
            metrics.observe_audit_lag(event)
            account = denied_session_account(event)
            if account is None or self._duplicate(str(event.get("auditID", ""))):
                continue
            try:
                await self.record(account, event)
            except Exception:
                logger.exception("could not record a denied request of %s/%s", *account)
        return web.Response(status=200)

    def _duplicate(self, audit_id: str) -> bool:
        if not audit_id:
            return False
        if audit_id in self._seen:
            return True
        self._seen[audit_id] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        return False

    async def record(self, account: tuple[str, str], event: dict[str, Any]) -> None:
        namespace, service_account = account
        owner = await self._session_of(namespace, service_account)
        if owner is None:
            return
        name, uid = owner
        async with self._locks[uid]:
            body = await resources.get_session(self.kube, namespace, name)
            if (
                body is None
                or body["metadata"]["uid"] != uid
                or (body.get("status") or {}).get("phase") != session_fields.ACTIVE
            ):
                return
            if await self._own_read(body, event):
                return
            await self._count(body, event)

    async def _own_read(self, body: api.Json, event: dict[str, Any]) -> bool:
        """A denied ``get`` of the session's own object or request is not a deviation."""
        ref = event.get("objectRef") or {}
        attempt = session_changes.ReadAttempt(
            verb=str(event.get("verb") or ""),
            api_group=str(ref.get("apiGroup") or ""),
            resource=str(ref.get("resource") or ""),
            namespace=str(ref.get("namespace") or ""),
            name=str(ref.get("name") or ""),
            subresource=str(ref.get("subresource") or ""),
        )
        meta = body["metadata"]
        request_session = None
        if attempt.resource == "remediationrequests" and attempt.verb == "get" and attempt.name:
            asked = await resources.get_request(self.kube, meta["namespace"], attempt.name)
            ref_of = ((asked or {}).get("spec") or {}).get("sessionRef") or {}
            name = ref_of.get("name") if isinstance(ref_of, dict) else None
            request_session = name if isinstance(name, str) else None
        own = session_changes.is_own_read(
            attempt,
            session_namespace=meta["namespace"],
            session_name=meta["name"],
            request_session=request_session,
        )
        if own:
            logger.info(
                "session %s/%s read its own (%s): not a deviation",
                meta["namespace"],
                meta["name"],
                describe(event),
            )
        return own

    async def _session_of(self, namespace: str, service_account: str) -> tuple[str, str] | None:
        """(name, uid) of the session owning a ServiceAccount: one small read, whatever the
        number of sessions (listing them grew with every session in the namespace)."""
        try:
            account = await api.call(
                self.kube.core.read_namespaced_service_account, service_account, namespace
            )
        except errors.NotFound:
            return None  # revoked already: its remaining denials no longer matter
        for ref in account["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "IncidentSession":
                return str(ref["name"]), str(ref["uid"])
        return None

    async def _count(self, body: api.Json, event: dict[str, Any]) -> None:
        what = describe(event)
        actor = str((event.get("user") or {}).get("username", "unknown"))
        audit_id = str(event.get("auditID", ""))
        denial = await count_denied(
            self.kube, body, what=what, actor=actor, source="audit", auditID=audit_id
        )
        if denial.exceeded:
            await revoke_for_deviation(self.kube, body, denial)


@dataclasses.dataclass(frozen=True)
class Denial:
    """One counted denied request: the session's count, the grant's allowance, and what."""

    denied: int
    allowed: int
    what: str

    @property
    def exceeded(self) -> bool:
        return session_policy.deviation_exceeded(self.denied, self.allowed)


def allowance(grant_body: api.Json | None) -> int:
    """The grant's ``maxDeniedRequests`` (0 when unset, or when the grant is gone: fail closed,
    the first denial revokes)."""
    spec = (grant_body or {}).get("spec") or {}
    return int((spec.get("session") or {}).get("maxDeniedRequests", 0))


async def count_denied(
    kube: api.Kube,
    body: api.Json,
    *,
    what: str,
    actor: str,
    source: str,
    allowed: int | None = None,
    **details: Any,
) -> Denial:
    """Count one denied request of the active session ``body`` (read fresh, under the caller's
    lock): status, audit record, Event. When the result ``exceeded`` the grant's
    ``maxDeniedRequests``, the caller revokes with :func:`revoke_for_deviation`. Shared by the
    audit webhook receiver (direct mode) and the session gateway.

    ``allowed`` is the grant's :func:`allowance` when the caller read the grant already (the
    gateway reads it beside the session, in one round trip); None reads it here. The audit
    record and the status patch are written concurrently: neither needs the other, and a
    denial that revokes waits for both before the revocation starts."""
    status = body.get("status") or {}
    denied = int(status.get("deniedRequests") or 0) + 1
    if allowed is None:
        allowed = allowance(await resources.get_grant(kube, body["spec"]["grantRef"]["name"]))
    metrics.DEVIATIONS.labels(source).inc()
    await asyncio.gather(
        trail.TRAIL.arecord(
            trail.Event.DEVIATION_DETECTED,
            body,
            correlation_id=body["metadata"]["uid"],
            actor=actor,
            reason="RequestForbidden",
            message=f"{what} was forbidden",
            details={"deniedRequests": denied, "allowed": allowed, "source": source, **details},
        ),
        resources.patch_session_status(
            kube,
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            {"deniedRequests": denied},
        ),
    )
    body.setdefault("status", {})["deniedRequests"] = denied
    handling.event(
        body,
        reason="RequestDenied",
        message=f"{what} was forbidden ({denied} denied, {allowed} allowed by the grant)",
        warning=True,
    )
    return Denial(denied, allowed, what)


async def revoke_for_deviation(kube: api.Kube, body: api.Json, denial: Denial) -> None:
    """Revoke a session whose denied requests exceeded its grant's allowance."""
    await session_revocation.revoke(
        kube,
        body,
        session.SessionPhase.REVOKED,
        "Deviation",
        f"{denial.denied} denied request(s), more than the grant's maxDeniedRequests "
        f"({denial.allowed}); last: {denial.what}",
    )
