"""Activation: admit a new session (or deny it) and give it its credentials.

A session is admitted on fresh reads of itself and its grant; the concurrent-session cap is
decided under a per-grant lock, counting the grant's Active sessions from the operator's index
plus those this process is activating, so parallel creates cannot overshoot it (the excess ones
end Denied, ``TooManySessions``). ``Active`` is written only once the authorizer serves the new
RoleBindings (:mod:`kube.readiness`): Active means usable. A grant changed while the session was
being activated is applied once it is Active (:func:`_grant_since_decision`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from typing import Any

from agent_authority import indexes, metrics
from agent_authority.audit import trail
from agent_authority.controllers import (
    handling,
    session_fields,
    session_records,
    session_revocation,
    session_rotation,
    session_settings,
    session_state,
)
from agent_authority.kube import access, api, context, credentials, readiness, resources
from agent_authority.models import grant, session
from agent_authority.policy import gateway as gateway_policy
from agent_authority.policy import reach, sessions

ACTIVE = session_fields.ACTIVE
NOT_STARTED = session_fields.NOT_STARTED
STATE = session_state.STATE
logger = logging.getLogger(__name__)


async def deny(kube: api.Kube, body: api.Json, reason: str, message: str) -> None:
    """Pending → Denied (only from a phase that has not started)."""
    event = trail.Event.SESSION_DENIED
    status = {
        "phase": session.SessionPhase.DENIED.value,
        "conditions": session_fields.condition(body, "Ready", False, reason, message),
        "revocation": {
            "reason": reason,
            "message": message,
            "time": session_fields.iso(session_fields.now()),
        },
    }
    if await session_state.transition(kube, body, status, NOT_STARTED, event=event.value):
        await session_records.recorded(kube, body, event, reason, message)
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
            if fresh is None or session_fields.status_of(fresh).get("phase") not in NOT_STARTED:
                return
            ended = session_fields.is_ended(fresh)
            expired = not ended and await _activate(
                kube, fresh, logger, by_grant, active_index, grant_read
            )
            body.update(fresh)
    finally:
        _settle(grant_read)
    if ended:  # ended before it was ever activated: nothing to mint
        await session_revocation.revoke(
            kube, body, session.SessionPhase.ENDED, "Ended", "ended by spec.ended"
        )
    elif expired:
        await session_revocation.revoke(
            kube, body, session.SessionPhase.EXPIRED, "Expired", "TTL passed"
        )
    elif session_fields.status_of(body).get("phase") == ACTIVE:
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
    created = session_fields.parse(meta.get("creationTimestamp")) or session_fields.now()
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
            facts.grant_spec.session.access_mode,
            session_settings.SETTINGS.access_mode,
            session_settings.SETTINGS.gateway is not None,
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
    ref = session_fields.ref_of(body)
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
        session_settings.mint_seconds(expires_at),
        on_bound=usable.bound,
        **session_settings.token_options(mode.value),
    )
    metrics.TOKENS_MINTED.inc()
    await usable.rest()
    message = f"{len(decision.rules)} rule(s) in effect until {session_fields.iso(expires_at)}"
    opened = await session_state.transition(
        kube,
        body,
        {
            "phase": ACTIVE,
            "conditions": session_fields.condition(body, "Ready", True, "Active", message),
            "serviceAccountName": ref.service_account,
            "secretName": ref.secret,
            "expiresAt": session_fields.iso(expires_at),
            "tokenExpiresAt": session_fields.iso(token.expires_at),
            "tokenRotatedAt": session_fields.iso(session_fields.now()),
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
        if current is not None and session_fields.status_of(current).get("phase") == ACTIVE:
            # Another replica activated it first: these are the same (deterministically named)
            # credentials, now the session's, so they stay.
            return False
        await credentials.revoke(kube, ref)  # ended or denied meanwhile: take back what was made
        return False
    await session_records.record_opened(kube, body)
    metrics.SESSION_READY_LATENCY.observe((session_fields.now() - created).total_seconds())
    session_state.count_in(spec.grant_ref.name, meta["uid"])
    handling.event(body, reason="Activated", message=f"token minted; {message}")
    logger.info("session %s/%s active: %s", meta["namespace"], meta["name"], message)
    return session_fields.now() >= expires_at


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
        await session_rotation.apply_grant_change(kube, body, None)
    elif decided_on is not None and current.get("spec") != decided_on.get("spec"):
        await session_rotation.apply_grant_change(kube, body, current)
