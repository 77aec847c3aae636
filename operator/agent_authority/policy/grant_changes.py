"""What a grant change or deletion does to a live session: keep it, narrow it, or revoke it.

:func:`reconcile` never widens a session. Its new rules are what the grant still allows for the
requested scopes, intersected with the rules the session holds now; a requested scope that left
the grant drops out, and a session left with nothing is revoked. The grant's subjects and incident
limits are checked again with the same checks (and wording) as admission in :mod:`sessions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from agent_authority.models import base, grant, session
from agent_authority.policy import rbac, sessions, wording

__all__ = ["Keep", "Narrow", "Revoke", "SessionVerdict", "reconcile"]


@dataclasses.dataclass(frozen=True)
class Keep:
    """The session keeps its rules."""


@dataclasses.dataclass(frozen=True)
class Narrow:
    """The session keeps running with fewer permissions."""

    rules: list[grant.PolicyRule]
    removed: list[rbac.Permission]
    message: str


@dataclasses.dataclass(frozen=True)
class Revoke:
    """The session ends now."""

    reason: sessions.Reason
    message: str


SessionVerdict = Keep | Narrow | Revoke


def reconcile(
    spec: session.IncidentSessionSpec,
    current_rules: Sequence[grant.PolicyRule],
    grant_spec: grant.AgentGrantSpec | None,
    grant_valid: bool,
    resolved: Mapping[str, Sequence[str]],
    requester: base.UserInfo | None,
) -> SessionVerdict:
    """What a grant's change (or deletion) does to a live session.

    Fails closed: a session never gains a permission here, even if the grant was widened; its new
    rules are the grant's current rules for the requested scopes intersected with ``current_rules``.
    A requested scope that left the grant simply drops out; when nothing is left, the session is
    revoked.
    """
    name = spec.grant_ref.name
    if grant_spec is None:
        return Revoke(
            sessions.Reason.GRANT_DELETED,
            f"spec.grantRef.name: grant '{name}' was deleted, and the session's authority came "
            "from it (allowed: a new session under an existing grant)",
        )
    if not grant_valid:
        return Revoke(
            sessions.Reason.GRANT_INVALID,
            f"spec.grantRef.name: grant '{name}' is no longer Valid "
            "(allowed: a new session once the grant's Valid condition is True again)",
        )
    failure = sessions.subject_failure(requester, grant_spec, name) or sessions.incident_failure(
        spec.incident, grant_spec, name
    )
    if failure:
        return Revoke(failure.reason, failure.message)
    recomputed = rbac.compile_rules(_remaining_scopes(spec.scopes, grant_spec, resolved), {})
    held = rbac.expand(current_rules)
    kept = rbac.intersection(recomputed, current_rules)
    if kept == held:
        return Keep()
    removed = sorted(held - kept)
    if not kept:
        return Revoke(
            sessions.Reason.NO_SCOPE_LEFT,
            f"spec.scopes: grant '{name}' no longer allows any of the session's "
            f"{len(held)} permission(s): {wording.listing(removed)} "
            "(allowed: a new session for what the grant allows now)",
        )
    rules = recomputed if rbac.expand(recomputed) == kept else rbac.compact(kept)
    return Narrow(
        rules=rules,
        removed=removed,
        message=(
            f"grant '{name}' changed: the session lost {len(removed)} permission(s): "
            f"{wording.listing(removed)}"
        ),
    )


def _remaining_scopes(
    requested: Sequence[session.SessionScope] | None,
    spec: grant.AgentGrantSpec,
    resolved: Mapping[str, Sequence[str]],
) -> list[grant.ReadScope]:
    """The requested scopes as the grant allows them now; whatever it no longer allows drops."""
    if requested is None:
        requested = [session.SessionScope(name=scope.name) for scope in spec.read]
    by_name = {scope.name: scope for scope in spec.read}
    scopes = []
    for wanted in requested:
        scope = by_name.get(wanted.name)
        if scope is None:
            continue
        allowed = rbac.scope_namespaces(scope, resolved)
        namespaces = [ns for ns in allowed if wanted.namespaces is None or ns in wanted.namespaces]
        if namespaces:
            scopes.append(sessions.narrowed(scope, namespaces))
    return scopes
