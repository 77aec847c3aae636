"""IncidentSession handlers: admit, mint, rotate, expire, end and revoke.

Level-triggered: every handler calls :func:`reconcile`, which reads the object and brings the
cluster to what its spec and phase say, idempotently. Phases: ``Pending`` (admitted, credentials
being created) → ``Active`` → ``Ended | Expired | Revoked``, or ``Denied`` at once.

Every phase transition happens once: under a per-session lock, on a fresh read, and as a status
patch conditional on the ``resourceVersion`` that was read (:mod:`session_state`); a terminal
phase never changes. So a
late denial cannot turn Ended into Revoked, and the resume handler and the TTL daemon cannot both
expire a session after a restart. Nothing that writes credentials (activation, rotation,
narrowing, own-reads) runs once a session is terminal.

Nothing here relies on kopf's diff base or progress annotations to notice an end or an expiry:
the daemon of an Active session checks ``spec.ended`` and the TTL on the live object every
second whatever else happened, and an event handler (no diff base) ends a session at once.

What a session may read of its own is kept up to date by :mod:`session_reads`.

The concurrent-session cap is decided under a per-grant lock, counting the grant's Active
sessions from the operator's index plus those this process is activating, so parallel creates
cannot overshoot it; the excess ones end Denied (``TooManySessions``).

Session TTL is enforced here (a daemon per active session). Tokens are minted for the session's
remaining life (at least the TokenRequest minimum of 600 s) and rotated before they expire while
the session lives, so with the operator down a token outlives its session by at most 600 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from typing import Any

import kopf

from agent_authority import indexes, metrics
from agent_authority.audit import trail
from agent_authority.controllers import handling, request_status, session_state
from agent_authority.kube import access, api, context, credentials, errors, readiness, resources
from agent_authority.models import GROUP, VERSION, base, grant, session
from agent_authority.notify import notices, outbox
from agent_authority.policy import conditions, grant_changes, rbac, reach, sessions
from agent_authority.policy import gateway as gateway_policy

PLURAL = "incidentsessions"
ACTIVE = session.SessionPhase.ACTIVE.value
TERMINAL = context.TERMINAL
NOT_TERMINAL: frozenset[str | None] = frozenset({None, session.SessionPhase.PENDING.value, ACTIVE})
NOT_STARTED: frozenset[str | None] = frozenset({None, session.SessionPhase.PENDING.value})
ENDED_POLL_SECONDS = 1.0
"""How often the daemon of an Active session re-checks ``spec.ended`` on the live object."""


@dataclasses.dataclass
class Settings:
    """Operator-wide knobs of the session controller (set by the runtime at start-up)."""

    token_seconds: int = 3600
    """Longest token lifetime asked for (a token lives for the session's remaining life, never
    below 600 s; the apiserver may shorten it further)."""
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
STATE = session_state.STATE
logger = logging.getLogger(__name__)


def _mint_seconds(expires_at: datetime.datetime | None) -> int:
    remaining = (expires_at - _now()).total_seconds() if expires_at else SETTINGS.token_seconds
    return credentials.token_seconds(remaining, SETTINGS.token_seconds)


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


def ref_of(body: api.Json) -> credentials.SessionRef:
    meta = body["metadata"]
    return credentials.SessionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def _status(body: api.Json) -> dict[str, Any]:
    return dict(body.get("status") or {})


@metrics.counts_failures(metrics.AUDIT_TRAIL_WRITE_FAILURES)
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


async def _recorded(
    kube: api.Kube, body: api.Json, event: trail.Event, reason: str, message: str
) -> None:
    """The record of a transition already committed to the status, then its digest."""
    await session_state.note_digest(kube, body, await _record(body, event, reason, message))


async def _record_opened(kube: api.Kube, body: api.Json) -> None:
    """``TokenMinted`` and ``SessionOpened`` of an Active session, from what its status says.

    Written right after the activation is committed; called again on resume, where the record
    ids make it a no-op unless a crash came between the status patch and the records."""
    status = _status(body)
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions", []) if c.get("type") == "Ready"), {}
    )
    incident = (body.get("spec") or {}).get("incident") or {}
    await _record(
        body,
        trail.Event.TOKEN_MINTED,
        "TokenMinted",
        f"valid until {status.get('tokenExpiresAt')}",
        serviceAccount=status.get("serviceAccountName"),
        accessMode=status.get("accessMode"),
    )
    digest = await _record(
        body,
        trail.Event.SESSION_OPENED,
        "Active",
        str(ready.get("message") or ""),
        incident=incident.get("id"),
        severity=incident.get("severity"),
        rules=[
            f"{r.get('namespace')}: {','.join(r.get('verbs', []))} "
            f"{','.join(r.get('resources', []))}"
            for r in status.get("effectiveRules", [])
        ],
    )
    if not status.get("auditDigest"):
        await session_state.note_digest(kube, body, digest)


_TERMINAL_EVENTS = {
    session.SessionPhase.DENIED.value: trail.Event.SESSION_DENIED,
    session.SessionPhase.ENDED.value: trail.Event.SESSION_ENDED,
    session.SessionPhase.EXPIRED.value: trail.Event.SESSION_EXPIRED,
    session.SessionPhase.REVOKED.value: trail.Event.SESSION_REVOKED,
}


async def _record_terminal(kube: api.Kube, body: api.Json) -> None:
    """On resume, the record of the terminal phase a session reached (a no-op when the trail
    holds it: one terminal record per session, whichever came first)."""
    status = _status(body)
    event = _TERMINAL_EVENTS.get(str(status.get("phase")))
    revocation = status.get("revocation") or {}
    if event is not None:
        reason = str(revocation.get("reason") or status.get("phase"))
        await _recorded(kube, body, event, reason, str(revocation.get("message") or ""))


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


# -- decisions applied ---------------------------------------------------------------------------


async def deny(kube: api.Kube, body: api.Json, reason: str, message: str) -> None:
    """Pending → Denied (only from a phase that has not started)."""
    event = trail.Event.SESSION_DENIED
    status = {
        "phase": session.SessionPhase.DENIED.value,
        "conditions": _condition(body, "Ready", False, reason, message),
        "revocation": {"reason": reason, "message": message, "time": _iso(_now())},
    }
    if await session_state.transition(kube, body, status, NOT_STARTED, event=event.value):
        await _recorded(kube, body, event, reason, message)
        handling.event(body, reason=reason, message=f"session refused: {message}", warning=True)


async def activate(
    kube: api.Kube,
    body: api.Json,
    logger: Any,
    by_grant: Any = None,
    active_index: Any = None,
    grants_index: Any = None,
) -> None:
    """Admit a new (or half-created) session and give it its credentials."""
    # The grant is read at the same time as the session (both fresh reads, one round trip
    # instead of two in a row); the decision is still made only on these reads.
    grant_name = str(body["spec"]["grantRef"]["name"])
    grant_read = asyncio.ensure_future(resources.get_grant(kube, grant_name))
    try:
        async with session_state.fresh(kube, body) as fresh:
            if fresh is None or _status(fresh).get("phase") not in NOT_STARTED:
                return
            ended = _is_ended(fresh)
            expired = not ended and await _activate(
                kube, fresh, logger, by_grant, active_index, grant_read
            )
            body.update(fresh)
    finally:
        _settle(grant_read)
    if ended:  # ended before it was ever activated: nothing to mint
        await revoke(kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended")
    elif expired:
        await revoke(kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed")
    elif _status(body).get("phase") == ACTIVE:
        await _grant_since_decision(kube, body, _result(grant_read), grants_index)


def _result(task: asyncio.Future[api.Json | None]) -> api.Json | None:
    """What a finished read returned; None when it did not finish or failed."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _settle(task: asyncio.Future[Any]) -> None:
    """Cancel a read nobody needed, or consume its error (so nothing is logged as lost)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


async def _activate(
    kube: api.Kube,
    body: api.Json,
    logger: Any,
    by_grant: Any,
    active_index: Any,
    grant_read: asyncio.Future[api.Json | None] | None = None,
) -> bool:
    """The activation itself, under the session's lock; whether the session is already past
    its TTL (the caller then expires it)."""
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
        return False
    created = _parse(meta.get("creationTimestamp")) or _now()
    grant_name = spec.grant_ref.name
    known_grant = await grant_read if grant_read is not None else None
    if known_grant is not None and known_grant["metadata"].get("name") != grant_name:
        known_grant = None  # read for another name: read it again
    # The reads (grant, selectors, parent, alert) are made before the per-grant lock, which
    # then covers only the count and the decision: the cap stays exact, and the sessions of one
    # grant no longer wait for each other's reads (50 at once waited ~5 s in all; issue 8).
    facts = await context.session_facts(
        kube,
        spec,
        namespace=meta["namespace"],
        name=meta["name"],
        created_at=created,
        siblings=indexes.siblings(by_grant, grant_name),
        active_sessions=0,  # counted under the lock below
        grant_body=known_grant,
    )
    async with STATE.grant_locks[grant_name]:
        occupied = session_state.occupied(active_index, grant_name, meta["uid"])
        facts = dataclasses.replace(
            facts, context=dataclasses.replace(facts.context, active_sessions=occupied)
        )
        decision = sessions.admit(spec.requester, spec, facts.context)
        if not decision.allowed:
            await deny(kube, body, decision.reason.value, decision.message)
            return False
        assert facts.grant_spec is not None  # admitted, so the grant exists
        choice = gateway_policy.choose_mode(
            facts.grant_spec.session.access_mode, SETTINGS.access_mode, SETTINGS.gateway is not None
        )
        if choice.mode is None:
            await deny(kube, body, "GatewayUnavailable", choice.message)
            return False
        STATE.admitted[grant_name].add(meta["uid"])
    # Outside the grant's lock (its SelfSubjectAccessReviews would serialize the grant's
    # sessions); the slot taken above is given back if the operator cannot provide the session.
    try:
        refused = await _operator_reach(kube, meta["namespace"], decision.rules, facts)
        if refused is not None:
            STATE.admitted[grant_name].discard(meta["uid"])
            await deny(kube, body, refused.reason.value, refused.message)
            return False
        return await _give_credentials(
            kube, body, logger, spec, facts, decision, choice.mode, created
        )
    except BaseException:
        STATE.admitted[grant_name].discard(meta["uid"])  # retried: admitted again then
        raise


async def _operator_reach(
    kube: api.Kube, namespace: str, rules: list[grant.PolicyRule], facts: context.Facts
) -> reach.Refusal | None:
    """Refuse, before anything is created, a session the operator may not give access to: its
    namespace lacks the session Role, or a namespace its rules read lacks the scope Role."""
    needed = reach.needed(namespace, {r.namespace for r in rules})
    missing = await access.own_missing(kube, needed)
    return reach.refusal(namespace, missing, facts.context.resolved)


async def _give_credentials(
    kube: api.Kube,
    body: api.Json,
    logger: Any,
    spec: session.IncidentSessionSpec,
    facts: context.Facts,
    decision: sessions.Admission,
    mode: grant.AccessMode,
    created: datetime.datetime,
) -> bool:
    meta = body["metadata"]
    assert spec.requester is not None
    assert facts.grant_spec is not None  # admitted, so the grant exists
    ttl = sessions.effective_ttl(spec, facts.grant_spec)
    expires_at = sessions.session_expiry(created, ttl, facts.context.parent)
    ref = ref_of(body)
    # Active means usable: the authorizer must serve the new RoleBindings (SubjectAccessReviews,
    # each binding's asked as soon as it is written, the rest after); if it does not in time,
    # the handler is retried and the session stays Pending.
    usable = readiness.Confirmation(kube, ref, decision.rules, spec.requester)
    # One shared function (the benchmark's floor calls it too), token minted for the session's
    # remaining life (gateway mode: for the gateway's audience only).
    token = await credentials.issue(
        kube,
        ref,
        decision.rules,
        spec.requester,
        _mint_seconds(expires_at),
        on_bound=usable.bound,
        **_token_options(mode.value),
    )
    metrics.TOKENS_MINTED.inc()
    await usable.rest()
    message = f"{len(decision.rules)} rule(s) in effect until {_iso(expires_at)}"
    opened = await session_state.transition(
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
            "effectiveRules": [r.to_api() for r in decision.rules],
            "accessMode": mode.value,
        },
        NOT_STARTED,
        event=trail.Event.SESSION_OPENED.value,
    )
    if not opened:
        STATE.admitted[spec.grant_ref.name].discard(meta["uid"])
        current = await resources.get_session(kube, meta["namespace"], meta["name"])
        if current is not None and _status(current).get("phase") == ACTIVE:
            # Another replica activated it first: these are the same (deterministically named)
            # credentials, now the session's, so they stay.
            return False
        await credentials.revoke(kube, ref)  # ended or denied meanwhile: take back what was made
        return False
    await _record_opened(kube, body)
    metrics.SESSION_READY_LATENCY.observe((_now() - created).total_seconds())
    session_state.count_in(spec.grant_ref.name, meta["uid"])
    handling.event(body, reason="Activated", message=f"token minted; {message}")
    logger.info("session %s/%s active: %s", meta["namespace"], meta["name"], message)
    return _now() >= expires_at


async def _grant_since_decision(
    kube: api.Kube, body: api.Json, decided_on: api.Json | None, grants_index: Any
) -> None:
    """A grant changed or deleted while the session was being activated found it not yet Active
    (the grant's handlers act on Active sessions only): now that it is, apply any change since
    the grant it was admitted under (``decided_on``) — narrow or revoke it.

    The operator's watched copy of the grant is enough to see that nothing changed: a change it
    does not show yet has not been handled yet either, and that handler, running later, reads
    this session fresh and finds it Active. Otherwise (a change, no copy, or the decision's grant
    unknown) the grant is read fresh and the change applied."""
    name = body["spec"]["grantRef"]["name"]
    if decided_on is not None and decided_on["metadata"].get("name") != name:
        decided_on = None  # not the grant the decision was made on
    watched = indexes.grant(grants_index, name)
    if (
        decided_on is not None
        and watched is not None
        and watched.get("spec") == decided_on.get("spec")
    ):
        return
    current = await resources.get_grant(kube, name)
    if current is None:
        await apply_grant_change(kube, body, None)
    elif decided_on is not None and current.get("spec") != decided_on.get("spec"):
        await apply_grant_change(kube, body, current)


async def revoke(
    kube: api.Kube,
    body: api.Json,
    phase: session.SessionPhase,
    reason: str,
    message: str,
) -> bool:
    """End a session, once: the status transition (only from a phase that is not terminal) and
    the deletion of its credentials (RoleBindings, Secret, ServiceAccount), then its sub-agent
    sessions.

    Which of the two comes first depends on the session's mode
    (:func:`policy.sessions.status_before_credentials`): direct mode deletes the credentials
    first (RBAC is the revocation there); gateway mode writes the terminal phase first, so every
    gateway replica refuses the session from that one watch event, and deletes the credentials
    after, recording in the condition ``CredentialsRevoked`` whether they are gone yet (a crash
    in between is finished by the resume handler and :func:`finish_revocation`).

    False when the session was already terminal (or gone): nothing is recorded or counted again,
    and the phase it reached first stays.
    """
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None:
            await credentials.revoke(kube, ref_of(body))
            return False
        if _status(fresh).get("phase") in TERMINAL:
            body.update(fresh)
            return False
        status_first = sessions.status_before_credentials(_status(fresh).get("accessMode"))
        started = time.monotonic()
        if not status_first:
            await credentials.revoke(kube, ref_of(fresh))
        latency = time.monotonic() - started
        event = {
            session.SessionPhase.ENDED: trail.Event.SESSION_ENDED,
            session.SessionPhase.EXPIRED: trail.Event.SESSION_EXPIRED,
        }.get(phase, trail.Event.SESSION_REVOKED)
        now = _now()
        ready = _condition(fresh, "Ready", False, reason, message)
        status = {
            "phase": phase.value,
            "conditions": _credentials_condition(fresh, ready, removed=not status_first),
            "revocation": {"reason": reason, "message": message, "time": _iso(now)},
        }
        expires = _parse(_status(fresh).get("expiresAt"))
        if expires is None or expires > now:
            status["expiresAt"] = _iso(now)  # access ended now: no future EXPIRES in kubectl
        if not await session_state.transition(kube, fresh, status, NOT_TERMINAL, event=event.value):
            body.update(fresh)
            return False
        if status_first:  # the gateways refuse it already; now the RBAC objects go too
            try:
                await _remove_credentials(kube, fresh)
            except errors.KubeError as e:  # CredentialsRevoked stays False: finish_revocation
                logger.warning(
                    "deleting the credentials of %s failed: %s", fresh["metadata"]["name"], e
                )
            latency = time.monotonic() - started
        await _recorded(kube, fresh, event, reason, message)
        body.update(fresh)
    metrics.REVOCATION_LATENCY.observe(latency)
    metrics.REVOCATIONS.labels(reason).inc()
    session_state.count_out(body["spec"]["grantRef"]["name"], body["metadata"]["uid"])
    handling.event(
        body,
        reason=reason,
        message=f"session {phase.value.lower()}: {message}; credentials revoked",
        warning=phase is session.SessionPhase.REVOKED,
    )
    if phase is session.SessionPhase.REVOKED:  # notifications: enqueued only, never waits
        outbox.OUTBOX.publish(notices.for_revoked_session(body, reason, message))
    await _end_children(kube, body)
    await _cancel_requests(kube, body, f"session {body['metadata']['name']!r} ended: {reason}")
    return True


def _credentials_condition(
    body: api.Json, conditions_now: list[dict[str, Any]], *, removed: bool
) -> list[dict[str, Any]]:
    """``conditions_now`` with ``CredentialsRevoked`` set: whether the RBAC objects are gone."""
    message = (
        "the session's RoleBindings, Secret and ServiceAccount are deleted"
        if removed
        else "refused by the session gateway; its RoleBindings, Secret and ServiceAccount "
        "are being deleted"
    )
    return conditions.set_condition(
        conditions_now,
        type_=sessions.CREDENTIALS_REVOKED,
        status=removed,
        reason="Deleted" if removed else "Deleting",
        message=message,
        now=_now(),
        generation=body["metadata"].get("generation"),
    )


def _credentials_pending(status: dict[str, Any]) -> bool:
    """A terminal session whose status says its RBAC objects may still exist."""
    return status.get("phase") in TERMINAL and any(
        c.get("type") == sessions.CREDENTIALS_REVOKED and c.get("status") != "True"
        for c in status.get("conditions") or []
    )


async def _remove_credentials(kube: api.Kube, body: api.Json) -> None:
    """Delete a terminal session's credentials, then say so in ``CredentialsRevoked``."""
    await credentials.revoke(kube, ref_of(body))
    if not _credentials_pending(_status(body)):
        return
    done = _credentials_condition(body, _status(body).get("conditions", []), removed=True)
    patched = await resources.patch_session_status(
        kube, body["metadata"]["namespace"], body["metadata"]["name"], {"conditions": done}
    )
    body["status"] = (patched or {}).get("status") or {**_status(body), "conditions": done}


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
        # Conditional on the request's resourceVersion, with truthful conditions (request_status).
        await request_status.cancel(kube, item, message)


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
    """A fresh token for an Active session, for its remaining life (never once it ended: minting
    recreates the ServiceAccount and Secret if they are gone); a gateway-mode session's token is
    minted for the gateway's audience again."""
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or _status(fresh).get("phase") != ACTIVE:
            return
        ref = ref_of(fresh)
        options = _token_options(_status(fresh).get("accessMode"))
        secret_uid = await credentials.ensure_identity(kube, ref)
        expires_at = _parse(_status(fresh).get("expiresAt"))
        token = await credentials.mint(kube, ref, secret_uid, _mint_seconds(expires_at), **options)
        metrics.TOKENS_ROTATED.inc()
        replaced = dict(_status(fresh))  # the record id names the rotation this one replaces
        status: dict[str, Any] = {
            "tokenExpiresAt": _iso(token.expires_at),
            "tokenRotatedAt": _iso(_now()),
        }
        event = trail.Event.TOKEN_ROTATED
        if not await session_state.transition(
            kube, fresh, status, frozenset({ACTIVE}), event=event.value
        ):
            await credentials.revoke(kube, ref)  # it ended meanwhile: the new token goes too
            return
        digest = await _record(
            {**fresh, "status": replaced},
            event,
            "TokenRotated",
            f"valid until {_iso(token.expires_at)}",
        )
        await session_state.note_digest(kube, fresh, digest)
        body.update(fresh)
    handling.event(body, reason="TokenRotated", message=f"valid until {_iso(token.expires_at)}")


async def apply_grant_change(kube: api.Kube, body: api.Json, grant_body: api.Json | None) -> None:
    """Keep, narrow or revoke an active session after its grant changed or went away."""
    spec = session.IncidentSessionSpec.model_validate(body["spec"])
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"]) if grant_body else None
    valid = grant_spec is not None and not rbac.validate_grant(grant_spec)
    resolved = await resources.resolve_selectors(kube, grant_spec.read) if grant_spec else {}
    revocation: grant_changes.Revoke | None = None
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or _status(fresh).get("phase") != ACTIVE:
            return
        current = [
            grant.PolicyRule.model_validate(r) for r in _status(fresh).get("effectiveRules", [])
        ]
        verdict = grant_changes.reconcile(
            spec, current, grant_spec, valid, resolved, spec.requester
        )
        if isinstance(verdict, grant_changes.Revoke):
            revocation = verdict
        elif isinstance(verdict, grant_changes.Narrow):
            assert spec.requester is not None
            await credentials.ensure_access(kube, ref_of(fresh), verdict.rules, spec.requester)
            narrowed = {"effectiveRules": [r.to_api() for r in verdict.rules]}
            if not await session_state.transition(kube, fresh, narrowed, frozenset({ACTIVE})):
                await credentials.revoke(kube, ref_of(fresh))
                return
            handling.event(fresh, reason="Narrowed", message=verdict.message, warning=True)
        body.update(fresh)
    if revocation is not None:
        await revoke(
            kube, body, session.SessionPhase.REVOKED, revocation.reason.value, revocation.message
        )


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


def _is_ended(body: api.Json) -> bool:
    return (body.get("spec") or {}).get("ended") is True


async def _ensure_access(kube: api.Kube, body: api.Json, requests: list[str] | None) -> None:
    """Make an Active session's Roles and bindings what its status says (after a crash)."""
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or _status(fresh).get("phase") != ACTIVE:
            return
        spec = session.IncidentSessionSpec.model_validate(fresh["spec"])
        rules = [
            grant.PolicyRule.model_validate(r) for r in _status(fresh).get("effectiveRules", [])
        ]
        requester = spec.requester or base.UserInfo(username="unknown")
        await credentials.ensure_access(kube, ref_of(fresh), rules, requester)
        if requests is not None:
            await credentials.ensure_own_reads(kube, ref_of(fresh), requests)
        body.update(fresh)


async def reconcile(
    kube: api.Kube,
    body: api.Json,
    logger: Any,
    by_grant: Any = None,
    active_index: Any = None,
    requests_index: Any = None,
    grants_index: Any = None,
) -> None:
    """Bring one session to what its spec and phase say (idempotent)."""
    phase = _status(body).get("phase")
    if phase in TERMINAL:
        await _remove_credentials(kube, body)  # leftovers of a crash mid-revocation
        await _record_terminal(kube, body)  # a crash between the status and its record
        return
    if _is_ended(body):
        await revoke(kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended")
        return
    if phase != ACTIVE:
        await activate(kube, body, logger, by_grant, active_index, grants_index)
        return
    session_state.count_in(body["spec"]["grantRef"]["name"], body["metadata"]["uid"])
    await _record_opened(kube, body)  # a crash between the status and its records
    left = _ttl_left(body)
    if left is not None and left <= 0:
        await revoke(kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed")
        return
    grant_body = await resources.get_grant(kube, body["spec"]["grantRef"]["name"])
    await apply_grant_change(kube, body, grant_body)
    if _status(body).get("phase") == ACTIVE:
        meta = body["metadata"]
        own = indexes.requests_of(requests_index, meta["namespace"], meta["name"])
        await _ensure_access(kube, body, own)
        due = _rotation_due_in(body)
        if due is None or due <= 0:
            await rotate(kube, body)


# -- kopf wiring ---------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@handling.translating
async def opened(
    body: kopf.Body,
    logger: Any,
    sessions_by_grant: Any = None,
    active_sessions_by_grant: Any = None,
    requests_by_session: Any = None,
    grants_by_name: Any = None,
    **_: Any,
) -> None:
    await reconcile(
        api.default(),
        handling.plain(body),
        logger,
        sessions_by_grant,
        active_sessions_by_grant,
        requests_by_session,
        grants_by_name,
    )


def _ending(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return spec.get("ended") is True and status.get("phase") not in TERMINAL


@kopf.on.event(GROUP, VERSION, PLURAL, when=_ending)
async def ended(body: kopf.Body, logger: Any, **_: Any) -> None:
    """End a session as soon as any event shows ``spec.ended: true`` (no diff base involved).

    A failure here is retried by the session's daemon within a second.
    """
    plain = handling.plain(body)
    if _status(plain).get("phase") not in {ACTIVE, session.SessionPhase.PENDING.value}:
        return  # not yet picked up: the create handler ends it
    try:
        await revoke(
            api.default(), plain, session.SessionPhase.ENDED, "Ended", "ended by spec.ended"
        )
    except Exception as e:  # the daemon retries
        logger.warning("ending the session failed, the daemon retries: %s", e)


@kopf.on.delete(GROUP, VERSION, PLURAL)
@handling.translating
async def deleted(body: kopf.Body, **_: Any) -> None:
    plain = handling.plain(body)
    kube = api.default()
    uid, grant_name = plain["metadata"]["uid"], plain["spec"]["grantRef"]["name"]
    async with STATE.session_locks[uid]:
        await credentials.revoke(kube, ref_of(plain))
        if uid not in STATE.released and _status(plain).get("phase") not in TERMINAL:
            metrics.REVOCATIONS.labels("Deleted").inc()
        session_state.count_out(grant_name, uid)
    await _end_children(kube, plain)
    STATE.session_locks.pop(uid, None)


def _shallow(body: kopf.Body) -> api.Json:
    """The top level of a kopf body as a plain dict; nested values are kopf's own (read only)."""
    return {key: body[key] for key in ("metadata", "spec", "status") if key in body}


def _revocation_unfinished(status: kopf.Status, **_: Any) -> bool:
    return _credentials_pending(dict(status))


@kopf.timer(GROUP, VERSION, PLURAL, interval=3.0, initial_delay=3.0, when=_revocation_unfinished)
@handling.translating
async def finish_revocation(body: kopf.Body, **_: Any) -> None:
    """A gateway-mode session that is terminal while ``CredentialsRevoked`` is not True (its
    deletion failed after the status write): delete its credentials until they are gone."""
    plain = handling.plain(body)
    async with STATE.session_locks[plain["metadata"]["uid"]]:
        await _remove_credentials(api.default(), plain)


def _is_active(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == ACTIVE


@kopf.daemon(GROUP, VERSION, PLURAL, when=_is_active, cancellation_timeout=5.0)
@handling.translating  # an outage at expiry retries in about a second, not kopf's 60 s
async def lifetime(body: kopf.Body, stopped: kopf.DaemonStopped, logger: Any, **_: Any) -> None:
    """While the session is Active: end it when ``spec.ended`` says so, expire it at its TTL,
    rotate its token when due; checked on the live object at least every second."""
    kube = api.default()
    while not stopped:
        # Decided on a shallow view of kopf's live body; the deep copy the actions need is made
        # only when one is due and never held across the wait (one per Active session, otherwise).
        view = _shallow(body)
        if _status(view).get("phase") != ACTIVE:
            return
        session_state.count_in(view["spec"]["grantRef"]["name"], view["metadata"]["uid"])
        left, due = _ttl_left(view), _rotation_due_in(view)
        ending = _is_ended(view)
        del view
        try:
            if ending:
                await revoke(
                    kube,
                    handling.plain(body),
                    session.SessionPhase.ENDED,
                    "Ended",
                    "ended by spec.ended",
                )
                return
            if left is not None and left <= 0:
                await revoke(
                    kube,
                    handling.plain(body),
                    session.SessionPhase.EXPIRED,
                    "Expired",
                    "TTL passed",
                )
                return
            if due is not None and due <= 0:
                await rotate(kube, handling.plain(body))
                continue
        except Exception as e:  # keep the daemon alive; the next loop retries
            logger.warning("session upkeep failed, retrying in 1 s: %s", e)
            await stopped.wait(1)
            continue
        waits = [w for w in (left, due) if w is not None]
        await stopped.wait(max(0.05, min([*waits, ENDED_POLL_SECONDS])))


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
