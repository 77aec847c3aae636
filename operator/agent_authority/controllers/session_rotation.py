"""An Active session's credentials kept current: token rotation and grant changes.

:func:`rotate` mints a fresh token for the session's remaining life (never once it ended);
:func:`apply_grant_change` keeps, narrows or revokes the session after its grant changed or went
away (decided by :func:`policy.grant_changes.reconcile`); :func:`ensure_access` makes its Roles
and bindings what its status says again after a crash. Each acts under the session's lock on a
fresh read and only while it is Active, so nothing here gives anything back to an ended session.
"""

from __future__ import annotations

from typing import Any

from agent_authority import metrics
from agent_authority.audit import trail
from agent_authority.controllers import (
    handling,
    session_fields,
    session_records,
    session_revocation,
    session_settings,
    session_state,
)
from agent_authority.kube import api, credentials, resources, session_access, tokens
from agent_authority.models import base, grant, session
from agent_authority.policy import grant_changes, rbac

ACTIVE = session_fields.ACTIVE


async def rotate(kube: api.Kube, body: api.Json) -> None:
    """A fresh token for an Active session, for its remaining life (never once it ended: minting
    recreates the ServiceAccount and Secret if they are gone); a gateway-mode session's token is
    minted for the gateway's audience again."""
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or session_fields.status_of(fresh).get("phase") != ACTIVE:
            return
        ref = session_fields.ref_of(fresh)
        options = session_settings.token_options(session_fields.status_of(fresh).get("accessMode"))
        secret_uid = await tokens.ensure_identity(kube, ref)
        expires_at = session_fields.parse(session_fields.status_of(fresh).get("expiresAt"))
        token = await tokens.mint(
            kube, ref, secret_uid, session_settings.mint_seconds(expires_at), **options
        )
        metrics.TOKENS_ROTATED.inc()
        # The record id names the rotation this one replaces.
        replaced = dict(session_fields.status_of(fresh))
        status: dict[str, Any] = {
            "tokenExpiresAt": session_fields.iso(token.expires_at),
            "tokenRotatedAt": session_fields.iso(session_fields.now()),
        }
        event = trail.Event.TOKEN_ROTATED
        if not await session_state.transition(
            kube, fresh, status, frozenset({ACTIVE}), event=event.value
        ):
            await credentials.revoke(kube, ref)  # it ended meanwhile: the new token goes too
            return
        digest = await session_records.record(
            {**fresh, "status": replaced},
            event,
            "TokenRotated",
            f"valid until {session_fields.iso(token.expires_at)}",
        )
        await session_state.note_digest(kube, fresh, digest)
        body.update(fresh)
    handling.event(
        body, reason="TokenRotated", message=f"valid until {session_fields.iso(token.expires_at)}"
    )


async def apply_grant_change(kube: api.Kube, body: api.Json, grant_body: api.Json | None) -> None:
    """Keep, narrow or revoke an active session after its grant changed or went away."""
    spec = session.IncidentSessionSpec.model_validate(body["spec"])
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"]) if grant_body else None
    valid = grant_spec is not None and not rbac.validate_grant(grant_spec)
    resolved = await resources.resolve_selectors(kube, grant_spec.read) if grant_spec else {}
    revocation: grant_changes.Revoke | None = None
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or session_fields.status_of(fresh).get("phase") != ACTIVE:
            return
        current = [
            grant.PolicyRule.model_validate(r)
            for r in session_fields.status_of(fresh).get("effectiveRules", [])
        ]
        verdict = grant_changes.reconcile(
            spec, current, grant_spec, valid, resolved, spec.requester
        )
        if isinstance(verdict, grant_changes.Revoke):
            revocation = verdict
        elif isinstance(verdict, grant_changes.Narrow):
            assert spec.requester is not None
            await session_access.ensure_access(
                kube, session_fields.ref_of(fresh), verdict.rules, spec.requester
            )
            narrowed = {"effectiveRules": [r.to_api() for r in verdict.rules]}
            if not await session_state.transition(kube, fresh, narrowed, frozenset({ACTIVE})):
                await credentials.revoke(kube, session_fields.ref_of(fresh))
                return
            handling.event(fresh, reason="Narrowed", message=verdict.message, warning=True)
        body.update(fresh)
    if revocation is not None:
        await session_revocation.revoke(
            kube, body, session.SessionPhase.REVOKED, revocation.reason.value, revocation.message
        )


async def ensure_access(kube: api.Kube, body: api.Json, requests: list[str] | None) -> None:
    """Make an Active session's Roles and bindings what its status says (after a crash)."""
    async with session_state.fresh(kube, body) as fresh:
        if fresh is None or session_fields.status_of(fresh).get("phase") != ACTIVE:
            return
        spec = session.IncidentSessionSpec.model_validate(fresh["spec"])
        rules = [
            grant.PolicyRule.model_validate(r)
            for r in session_fields.status_of(fresh).get("effectiveRules", [])
        ]
        requester = spec.requester or base.UserInfo(username="unknown")
        await session_access.ensure_access(
            kube, session_fields.ref_of(fresh), rules, requester, requests=requests
        )
        body.update(fresh)
