"""IncidentSession handlers: admit, mint, rotate, expire, end and revoke.

Level-triggered: every handler calls :func:`reconcile`, which reads the object and brings the
cluster to what its spec and phase say, idempotently. Phases: ``Pending`` (admitted, credentials
being created) → ``Active`` → ``Ended | Expired | Revoked``, or ``Denied`` at once.

Session TTL is enforced here (a daemon per active session), not by token expiry: tokens cannot be
shorter than 600 s and are rotated before they expire while the session lives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from typing import Any

import kopf

from agent_authority import indexes, metrics
from agent_authority.audit import trail
from agent_authority.controllers import handling
from agent_authority.kube import api, context, credentials, resources
from agent_authority.models import GROUP, VERSION, base, grant, session
from agent_authority.policy import conditions, grant_changes, rbac, sessions
from agent_authority.policy import gateway as gateway_policy

PLURAL = "incidentsessions"
ACTIVE = session.SessionPhase.ACTIVE.value
TERMINAL = context.TERMINAL


@dataclasses.dataclass
class Settings:
    """Operator-wide knobs of the session controller (set by the runtime at start-up)."""

    token_seconds: int = 3600
    """Requested token lifetime (the apiserver may shorten it; never below 600 s)."""
    rotate_after: float = 0.8
    """Rotate when this fraction of the token's lifetime has passed (or after N s if > 1)."""
    access_mode: grant.AccessMode = grant.AccessMode.DIRECT
    """Mode of sessions whose grant does not choose one (``--session-mode``)."""
    gateway: GatewayTarget | None = None
    """The session gateway, when this operator runs one (gateway mode needs it)."""


@dataclasses.dataclass(frozen=True)
class GatewayTarget:
    """What a gateway-mode token is minted for and what its kubeconfig points at."""

    audience: str
    server: str
    ca_pem: str


SETTINGS = Settings()


def _token_options(mode: str | None) -> dict[str, Any]:
    """``mint`` arguments for a session of ``mode`` (gateway: the gateway's audience only)."""
    if mode != grant.AccessMode.GATEWAY.value:
        return {}
    target = SETTINGS.gateway
    if target is None:  # never fall back to an apiserver token: that would widen the session
        raise kopf.TemporaryError("gateway-mode session, but this operator runs no gateway", 10)
    return {
        "audiences": [target.audience],
        "extra": {"server": target.server, "ca.crt": target.ca_pem},
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def _ref(body: api.Json) -> credentials.SessionRef:
    meta = body["metadata"]
    return credentials.SessionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def _status(body: api.Json) -> dict[str, Any]:
    return dict(body.get("status") or {})


async def _record(
    body: api.Json, event: trail.Event, reason: str, message: str, **details: Any
) -> str | None:
    """Append an audit record about the session; its hash (the session's audit digest)."""
    requester = (body.get("spec") or {}).get("requester") or {}
    record = await trail.TRAIL.arecord(
        event,
        body,
        correlation_id=body["metadata"]["uid"],
        actor=str(requester.get("username") or "unknown"),
        reason=reason,
        message=message,
        details={"grant": (body.get("spec") or {}).get("grantRef", {}).get("name"), **details},
    )
    return record.hash if record else None


def _condition(
    body: api.Json, type_: str, ok: bool, reason: str, message: str
) -> list[dict[str, Any]]:
    return conditions.set_condition(
        _status(body).get("conditions", []),
        type_=type_,
        status=ok,
        reason=reason,
        message=message,
        now=_now(),
        generation=body["metadata"].get("generation"),
    )


async def _patch(kube: api.Kube, body: api.Json, status: dict[str, Any]) -> api.Json:
    meta = body["metadata"]
    status.setdefault("observedGeneration", meta.get("generation"))
    patched = await resources.patch_session_status(kube, meta["namespace"], meta["name"], status)
    body["status"] = patched.get("status", status)
    return patched


# -- decisions applied ---------------------------------------------------------------------------


async def deny(kube: api.Kube, body: api.Json, reason: str, message: str) -> None:
    digest = await _record(body, trail.Event.SESSION_DENIED, reason, message)
    await _patch(
        kube,
        body,
        {
            "auditDigest": digest,
            "phase": session.SessionPhase.DENIED.value,
            "conditions": _condition(body, "Ready", False, reason, message),
            "revocation": {"reason": reason, "message": message, "time": _iso(_now())},
        },
    )
    handling.event(body, reason=reason, message=f"session refused: {message}", warning=True)


async def activate(kube: api.Kube, body: api.Json, logger: Any, by_grant: Any = None) -> None:
    """Admit a new (or half-created) session and give it its credentials."""
    meta = body["metadata"]
    spec = session.IncidentSessionSpec.model_validate(body["spec"])
    if spec.requester is None:
        await deny(
            kube,
            body,
            "NoAuthenticatedRequester",
            "spec.requester was not stamped by the admission webhook, so the session cannot be "
            "attributed to an authenticated identity; create it while the operator is running",
        )
        return
    created = _parse(meta.get("creationTimestamp")) or _now()
    facts = await context.session_facts(
        kube,
        spec,
        namespace=meta["namespace"],
        name=meta["name"],
        created_at=created,
        siblings=indexes.siblings(by_grant, spec.grant_ref.name),
    )
    decision = sessions.admit(spec.requester, spec, facts.context)
    if not decision.allowed:
        await deny(kube, body, decision.reason.value, decision.message)
        return
    assert facts.grant_spec is not None  # admitted, so the grant exists
    choice = gateway_policy.choose_mode(
        facts.grant_spec.session.access_mode, SETTINGS.access_mode, SETTINGS.gateway is not None
    )
    if choice.mode is None:
        await deny(kube, body, "GatewayUnavailable", choice.message)
        return
    ref = _ref(body)
    # Identity and Roles at once; then bindings while the token is minted (a brand-new session
    # has nothing to prune). Bindings need their Roles; the token needs the ServiceAccount.
    secret_uid, namespaces = await asyncio.gather(
        credentials.ensure_identity(kube, ref),
        credentials.ensure_roles(kube, ref, decision.rules),
    )
    _, token = await asyncio.gather(
        credentials.ensure_bindings(kube, ref, namespaces, spec.requester),
        credentials.mint(
            kube, ref, secret_uid, SETTINGS.token_seconds, **_token_options(choice.mode.value)
        ),
    )
    metrics.TOKENS_MINTED.inc()
    ttl = sessions.effective_ttl(spec, facts.grant_spec)
    expires_at = sessions.session_expiry(created, ttl, facts.context.parent)
    message = f"{len(decision.rules)} rule(s) in effect until {_iso(expires_at)}"
    await _record(
        body,
        trail.Event.TOKEN_MINTED,
        "TokenMinted",
        f"valid until {_iso(token.expires_at)}",
        serviceAccount=ref.service_account,
        accessMode=choice.mode.value,
    )
    digest = await _record(
        body,
        trail.Event.SESSION_OPENED,
        "Active",
        message,
        incident=spec.incident.id,
        severity=spec.incident.severity.value,
        rules=[
            f"{r.namespace}: {','.join(r.verbs)} {','.join(r.resources)}" for r in decision.rules
        ],
    )
    await _patch(
        kube,
        body,
        {
            "phase": ACTIVE,
            "conditions": _condition(body, "Ready", True, "Active", message),
            "serviceAccountName": ref.service_account,
            "secretName": ref.secret,
            "expiresAt": _iso(expires_at),
            "tokenExpiresAt": _iso(token.expires_at),
            "tokenRotatedAt": _iso(_now()),
            "depth": decision.depth,
            "auditDigest": digest,
            "effectiveRules": [r.to_api() for r in decision.rules],
            "accessMode": choice.mode.value,
        },
    )
    metrics.SESSION_READY_LATENCY.observe((_now() - created).total_seconds())
    metrics.ACTIVE_SESSIONS.labels(spec.grant_ref.name).inc()
    handling.event(body, reason="Activated", message=f"token minted; {message}")
    logger.info("session %s/%s active: %s", meta["namespace"], meta["name"], message)
    if _now() >= expires_at:
        await revoke(kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed")


async def revoke(
    kube: api.Kube,
    body: api.Json,
    phase: session.SessionPhase,
    reason: str,
    message: str,
) -> None:
    """End a session: credentials first (RoleBindings, Secret, ServiceAccount), then status,
    then its sub-agent sessions."""
    started = time.monotonic()
    was_active = _status(body).get("phase") == ACTIVE
    await credentials.revoke(kube, _ref(body))
    metrics.REVOCATION_LATENCY.observe(time.monotonic() - started)
    metrics.REVOCATIONS.labels(reason).inc()
    if was_active:
        metrics.ACTIVE_SESSIONS.labels(body["spec"]["grantRef"]["name"]).dec()
    event = {
        session.SessionPhase.ENDED: trail.Event.SESSION_ENDED,
        session.SessionPhase.EXPIRED: trail.Event.SESSION_EXPIRED,
    }.get(phase, trail.Event.SESSION_REVOKED)
    digest = await _record(body, event, reason, message)
    await _patch(
        kube,
        body,
        {
            "auditDigest": digest,
            "phase": phase.value,
            "conditions": _condition(body, "Ready", False, reason, message),
            "revocation": {"reason": reason, "message": message, "time": _iso(_now())},
        },
    )
    handling.event(
        body,
        reason=reason,
        message=f"session {phase.value.lower()}: {message}; credentials revoked",
        warning=phase is session.SessionPhase.REVOKED,
    )
    await _end_children(kube, body)
    await _cancel_requests(kube, body, f"session {body['metadata']['name']!r} ended: {reason}")


OPEN_REQUESTS = {"Pending", "AwaitingApproval", "Approved"}


async def _cancel_requests(kube: api.Kube, body: api.Json, message: str) -> None:
    """A session that ends takes its undecided remediation requests with it."""
    meta = body["metadata"]
    pending = [
        r
        for r in await resources.list_requests(kube, meta["namespace"])
        if r["spec"]["sessionRef"]["name"] == meta["name"]
        and (r.get("status") or {}).get("phase", "Pending") in OPEN_REQUESTS
    ]
    for item in pending:
        await resources.patch_request_status(
            kube,
            meta["namespace"],
            item["metadata"]["name"],
            {"phase": "Cancelled", "reason": "SessionEnded"},
        )
        handling.event(item, reason="Cancelled", message=message, warning=True)


async def _end_children(kube: api.Kube, parent: api.Json) -> None:
    meta = parent["metadata"]
    siblings = await resources.list_sessions(kube, namespace=meta["namespace"])
    children = [
        s
        for s in siblings
        if s["spec"].get("parentSession") == meta["name"]
        and _status(s).get("phase") not in TERMINAL
    ]
    await asyncio.gather(
        *[
            revoke(
                kube,
                child,
                session.SessionPhase.REVOKED,
                "ParentEnded",
                f"parent session {meta['name']!r} ended",
            )
            for child in children
        ]
    )


async def rotate(kube: api.Kube, body: api.Json) -> None:
    ref = _ref(body)
    secret_uid = await credentials.ensure_identity(kube, ref)
    options = _token_options(_status(body).get("accessMode"))
    token = await credentials.mint(kube, ref, secret_uid, SETTINGS.token_seconds, **options)
    metrics.TOKENS_ROTATED.inc()
    digest = await _record(
        body, trail.Event.TOKEN_ROTATED, "TokenRotated", f"valid until {_iso(token.expires_at)}"
    )
    status: dict[str, Any] = {
        "tokenExpiresAt": _iso(token.expires_at),
        "tokenRotatedAt": _iso(_now()),
    }
    if digest:
        status["auditDigest"] = digest
    await _patch(kube, body, status)
    handling.event(body, reason="TokenRotated", message=f"valid until {_iso(token.expires_at)}")


async def apply_grant_change(kube: api.Kube, body: api.Json, grant_body: api.Json | None) -> None:
    """Keep, narrow or revoke an active session after its grant changed or went away."""
    spec = session.IncidentSessionSpec.model_validate(body["spec"])
    current = [grant.PolicyRule.model_validate(r) for r in _status(body).get("effectiveRules", [])]
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"]) if grant_body else None
    valid = grant_spec is not None and not rbac.validate_grant(grant_spec)
    resolved = await resources.resolve_selectors(kube, grant_spec.read) if grant_spec else {}
    verdict = grant_changes.reconcile(spec, current, grant_spec, valid, resolved, spec.requester)
    if isinstance(verdict, grant_changes.Revoke):
        await revoke(
            kube, body, session.SessionPhase.REVOKED, verdict.reason.value, verdict.message
        )
    elif isinstance(verdict, grant_changes.Narrow):
        assert spec.requester is not None
        await credentials.ensure_access(kube, _ref(body), verdict.rules, spec.requester)
        await _patch(kube, body, {"effectiveRules": [r.to_api() for r in verdict.rules]})
        handling.event(body, reason="Narrowed", message=verdict.message, warning=True)


def _ttl_left(body: api.Json) -> float | None:
    expires = _parse(_status(body).get("expiresAt"))
    return None if expires is None else (expires - _now()).total_seconds()


def _rotation_due_in(body: api.Json) -> float | None:
    status = _status(body)
    rotated, expires = _parse(status.get("tokenRotatedAt")), _parse(status.get("tokenExpiresAt"))
    if rotated is None or expires is None:
        return None
    lifetime = (expires - rotated).total_seconds()
    after = SETTINGS.rotate_after if SETTINGS.rotate_after > 1 else lifetime * SETTINGS.rotate_after
    return (rotated - _now()).total_seconds() + after


async def reconcile(kube: api.Kube, body: api.Json, logger: Any, by_grant: Any = None) -> None:
    """Bring one session to what its spec and phase say (idempotent)."""
    phase = _status(body).get("phase")
    if phase in TERMINAL:
        await credentials.revoke(kube, _ref(body))  # leftovers of a crash mid-revocation
        return
    if body["spec"].get("ended"):
        await revoke(kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended")
        return
    if phase != ACTIVE:
        await activate(kube, body, logger, by_grant)
        return
    left = _ttl_left(body)
    if left is not None and left <= 0:
        await revoke(kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed")
        return
    grant_body = await resources.get_grant(kube, body["spec"]["grantRef"]["name"])
    await apply_grant_change(kube, body, grant_body)
    if _status(body).get("phase") == ACTIVE:
        spec = session.IncidentSessionSpec.model_validate(body["spec"])
        rules = [
            grant.PolicyRule.model_validate(r) for r in _status(body).get("effectiveRules", [])
        ]
        requester = spec.requester or base.UserInfo(username="unknown")
        await credentials.ensure_access(kube, _ref(body), rules, requester)
        due = _rotation_due_in(body)
        if due is None or due <= 0:
            await rotate(kube, body)


# -- kopf wiring ---------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def opened(body: kopf.Body, logger: Any, sessions_by_grant: Any = None, **_: Any) -> None:
    await reconcile(api.default(), handling.plain(body), logger, sessions_by_grant)


@kopf.on.field(GROUP, VERSION, PLURAL, field="spec.ended", new=True)
@handling.translating
async def ended(body: kopf.Body, logger: Any, **_: Any) -> None:
    await reconcile(api.default(), handling.plain(body), logger)


@kopf.on.delete(GROUP, VERSION, PLURAL)
@handling.translating
async def deleted(body: kopf.Body, **_: Any) -> None:
    plain = handling.plain(body)
    if _status(plain).get("phase") not in TERMINAL:
        await credentials.revoke(api.default(), _ref(plain))
        metrics.REVOCATIONS.labels("Deleted").inc()
        if _status(plain).get("phase") == ACTIVE:
            metrics.ACTIVE_SESSIONS.labels(plain["spec"]["grantRef"]["name"]).dec()
    else:
        await credentials.revoke(api.default(), _ref(plain))
    kube = api.default()
    await _end_children(kube, plain)


def _is_active(status: kopf.Status, spec: kopf.Spec, **_: Any) -> bool:
    return status.get("phase") == ACTIVE and not spec.get("ended")


@kopf.daemon(GROUP, VERSION, PLURAL, when=_is_active, cancellation_timeout=5.0)
async def lifetime(body: kopf.Body, stopped: kopf.DaemonStopped, logger: Any, **_: Any) -> None:
    """Sleep until the session expires or its token is due for rotation; act; repeat."""
    kube = api.default()
    while not stopped:
        plain = handling.plain(body)
        left = _ttl_left(plain)
        if left is not None and left <= 0:
            fresh = await resources.get_session(
                kube, plain["metadata"]["namespace"], plain["metadata"]["name"]
            )
            if fresh and _status(fresh).get("phase") == ACTIVE:
                await revoke(kube, fresh, session.SessionPhase.EXPIRED, "Expired", "TTL passed")
            return
        due = _rotation_due_in(plain)
        if due is not None and due <= 0:
            try:
                await rotate(kube, plain)
            except Exception as e:  # keep the daemon alive; the next loop retries
                logger.warning("token rotation failed, retrying in 5 s: %s", e)
                await stopped.wait(5)
            continue
        waits = [w for w in (left, due) if w is not None]
        await stopped.wait(max(0.05, min(waits)) if waits else 60)


async def sweep_orphans(kube: api.Kube, logger: Any) -> int:
    """At start-up: delete every session credential whose session is gone or has ended.

    Runs before the operator starts watching, so no handler is creating credentials meanwhile.
    Returns how many objects were deleted.
    """
    live = {
        s["metadata"]["uid"]
        for s in await resources.list_sessions(kube)
        if _status(s).get("phase") not in TERMINAL
    }
    leftovers = await credentials.leftovers(kube)
    doomed = [obj for uid, objects in leftovers.items() if uid not in live for obj in objects]
    if doomed:
        await credentials.delete_leftovers(kube, doomed)
        logger.warning("removed %d credential object(s) of ended or deleted sessions", len(doomed))
    return len(doomed)
