"""AgentGrant handlers: validate, compile to RBAC rules, report; narrow or revoke sessions.

The grant's status shows ``Valid`` (the spec passes policy validation), ``Ready`` (compiled), the
effective rules it compiles to (selector scopes resolved against the namespaces that exist now),
and how many sessions are active under it. When a grant changes, every active session under it
is re-checked and kept, narrowed or revoked; when it is deleted, they are revoked (a finalizer
holds the grant until that is done).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf

from agent_authority import indexes
from agent_authority.audit import trail
from agent_authority.controllers import handling, session_fields, session_rotation
from agent_authority.kube import api, resources
from agent_authority.models import GROUP, VERSION, grant
from agent_authority.policy import conditions, rbac

PLURAL = "agentgrants"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def compile_status(kube: api.Kube, body: api.Json, index: Any = None) -> dict[str, Any]:
    """The grant's status: validity, compiled rules, active sessions."""
    status = dict(body.get("status") or {})
    generation = body["metadata"].get("generation")
    spec = grant.AgentGrantSpec.model_validate(body["spec"])
    problems = rbac.validate_grant(spec)
    conds = status.get("conditions", [])
    if problems:
        message = "; ".join(str(p) for p in problems)
        conds = conditions.set_condition(
            conds,
            type_="Valid",
            status=False,
            reason="InvalidSpec",
            message=message,
            now=_now(),
            generation=generation,
        )
        conds = conditions.set_condition(
            conds,
            type_="Ready",
            status=False,
            reason="InvalidSpec",
            message="the grant is not valid; no session can be opened under it",
            now=_now(),
            generation=generation,
        )
        rules: list[grant.PolicyRule] = []
    else:
        resolved = await resources.resolve_selectors(kube, spec.read)
        rules = rbac.compile_rules(spec.read, resolved)
        conds = conditions.set_condition(
            conds,
            type_="Valid",
            status=True,
            reason="Valid",
            message="the spec passes policy",
            now=_now(),
            generation=generation,
        )
        conds = conditions.set_condition(
            conds,
            type_="Ready",
            status=True,
            reason="Compiled",
            message=f"{len(rules)} rule(s) across {len({r.namespace for r in rules})} namespace(s)",
            now=_now(),
            generation=generation,
        )
    active = await _active_sessions(kube, body["metadata"]["name"], index)
    return {
        "observedGeneration": generation,
        "conditions": conds,
        "effectiveRules": [r.to_api() for r in rules],
        "activeSessions": len(active),
    }


async def _active_sessions(kube: api.Kube, name: str, index: Any = None) -> list[api.Json]:
    """The grant's Active sessions, read fresh (their names come from the operator's index)."""
    known = indexes.siblings(index, name)
    if known is None:
        listed = await resources.list_sessions(kube)
        known = [
            (
                s["metadata"]["namespace"],
                s["metadata"]["name"],
                (s.get("status") or {}).get("phase"),
                "",
            )
            for s in listed
            if s["spec"]["grantRef"]["name"] == name
        ]
    # The index may lag a session that just became Active: read every live one fresh.
    active = [(ns, n) for ns, n, phase, _ in known if phase not in session_fields.TERMINAL]
    found = await asyncio.gather(*[resources.get_session(kube, ns, n) for ns, n in active])
    return [s for s in found if s and (s.get("status") or {}).get("phase") == session_fields.ACTIVE]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@handling.translating
async def compiled(body: kopf.Body, name: str, sessions_by_grant: Any = None, **_: Any) -> None:
    kube = api.default()
    plain = handling.plain(body)
    status = await compile_status(kube, plain, sessions_by_grant)
    await resources.patch_grant_status(kube, name, status)
    valid = conditions.is_true(status["conditions"], "Valid")
    await trail.TRAIL.arecord(
        trail.Event.GRANT_COMPILED if valid else trail.Event.GRANT_REJECTED,
        plain,
        correlation_id=plain["metadata"]["uid"],
        actor="agent-authority",
        reason="Compiled" if valid else "InvalidSpec",
        message=next(c["message"] for c in status["conditions"] if c["type"] == "Valid"),
        details={
            "rules": len(status["effectiveRules"]),
            "generation": status["observedGeneration"],
        },
    )
    if not valid:
        handling.event(
            plain,
            reason="InvalidSpec",
            message=next(c["message"] for c in status["conditions"] if c["type"] == "Valid"),
            warning=True,
        )
    # Re-check every live session under this grant: keep, narrow or revoke.
    active = await _active_sessions(kube, name, sessions_by_grant)
    await asyncio.gather(*[session_rotation.apply_grant_change(kube, s, plain) for s in active])


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
@handling.translating
async def deleted(name: str, sessions_by_grant: Any = None, **_: Any) -> None:
    """Revoke the grant's sessions. No finalizer is needed: if the operator is down when a grant
    is deleted, every session re-checks its grant when the operator resumes and is revoked then.
    """
    kube = api.default()
    active = await _active_sessions(kube, name, sessions_by_grant)
    await asyncio.gather(*[session_rotation.apply_grant_change(kube, s, None) for s in active])


@kopf.timer(GROUP, VERSION, PLURAL, interval=15, initial_delay=5, idle=5)
@handling.translating
async def counted(body: kopf.Body, name: str, sessions_by_grant: Any = None, **_: Any) -> None:
    """Keep ``status.activeSessions`` current.

    A displayed count, so it is read from the index of sessions by grant (each entry carries
    the session's phase as of its last watch event) instead of one GET per live session of the
    grant every 15 s, which at a burst of sessions took the apiserver and the operator from the
    sessions being activated. Grant changes and deletions still read every live session fresh
    (:func:`_active_sessions`).
    """
    kube = api.default()
    known = indexes.siblings(sessions_by_grant, name)
    if known is not None:
        count = sum(1 for _, _, phase, _ in known if phase == session_fields.ACTIVE)
    else:
        count = len(await _active_sessions(kube, name, sessions_by_grant))
    if (body.get("status") or {}).get("activeSessions") != count:
        await resources.patch_grant_status(kube, name, {"activeSessions": count})
