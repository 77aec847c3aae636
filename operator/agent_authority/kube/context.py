"""Read what a session decision needs from the cluster (grant, siblings, parent, namespaces).

Shared by the admission webhook and the session controller so both decide on the same facts.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable

from agent_authority.kube import alertmanager, api, resources
from agent_authority.models import grant, session
from agent_authority.policy import rbac, sessions

TERMINAL = {p.value for p in session.TERMINAL_PHASES}


@dataclasses.dataclass(frozen=True)
class Facts:
    context: sessions.SessionContext
    grant_spec: grant.AgentGrantSpec | None


async def session_facts(
    kube: api.Kube,
    spec: session.IncidentSessionSpec,
    *,
    namespace: str,
    name: str | None,
    created_at: datetime.datetime | None,
    siblings: Iterable[tuple[str, str, str | None, str]] | None = None,
    active_sessions: int | None = None,
    grant_body: api.Json | None = None,
) -> Facts:
    """Facts for admitting ``spec``; ``name``/``created_at`` are None for a not-yet-created one.

    Concurrency counts sessions under the same grant that are not terminal and were created
    before this one, so that simultaneous creations are admitted in creation order.
    ``siblings`` (namespace, name, phase, creationTimestamp) come from the operator's index of
    sessions by grant; without it they are listed from the apiserver. ``active_sessions``, when
    given, is the count the caller made itself (the controller, under its per-grant lock).
    ``grant_body``, when given, is the grant as the caller already read it (the controller: a
    fresh GET made beside the session's; the webhook: the operator's watched copy, see
    :mod:`agent_authority.webhooks.sessions`); otherwise it is read here.
    """
    grant_name = spec.grant_ref.name
    if grant_body is None:
        grant_body = await resources.get_grant(kube, grant_name)
    if grant_body is None:
        return Facts(
            sessions.SessionContext(
                grant=None, grant_name=grant_name, grant_valid=False, active_sessions=0
            ),
            None,
        )
    grant_spec = grant.AgentGrantSpec.model_validate(grant_body["spec"])
    valid = not rbac.validate_grant(grant_spec)
    resolved = await resources.resolve_selectors(kube, grant_spec.read)
    if siblings is None and active_sessions is None:
        listed = await resources.list_sessions(kube)
        siblings = [
            (
                s["metadata"]["namespace"],
                s["metadata"]["name"],
                (s.get("status") or {}).get("phase"),
                s["metadata"].get("creationTimestamp") or "9999",
            )
            for s in listed
            if s["spec"]["grantRef"]["name"] == grant_name
        ]
    me = (created_at.isoformat().replace("+00:00", "Z"), name or "") if created_at else ("9999", "")
    active = (
        active_sessions
        if active_sessions is not None
        else sum(
            1
            for sib_namespace, sib_name, phase, created in siblings or []
            if phase not in TERMINAL
            and not (sib_namespace == namespace and sib_name == name)
            and (created_at is None or (created, sib_name) < me)
        )
    )
    parent = None
    if spec.parent_session:
        parent_body = await resources.get_session(kube, namespace, spec.parent_session)
        if parent_body is not None:
            parent = parent_info(parent_body)
    binding = grant_spec.incidents.alertmanager
    alert = None if binding is None else await alertmanager.lookup(binding, spec.incident.id)
    return Facts(
        sessions.SessionContext(
            grant=grant_spec,
            grant_name=grant_name,
            grant_valid=valid,
            active_sessions=active,
            resolved=resolved,
            parent=parent,
            alert=alert,
        ),
        grant_spec,
    )


def parent_info(body: api.Json) -> sessions.ParentInfo:
    status = body.get("status") or {}
    phase = status.get("phase")
    expires = status.get("expiresAt")
    account = status.get("serviceAccountName")
    requester = (body["spec"].get("requester") or {}).get("username")
    namespace = body["metadata"].get("namespace", "")
    return sessions.ParentInfo(
        name=body["metadata"]["name"],
        grant_name=body["spec"]["grantRef"]["name"],
        phase=session.SessionPhase(phase) if phase else None,
        depth=int(status.get("depth") or 0),
        effective_rules=[
            grant.PolicyRule.model_validate(r) for r in status.get("effectiveRules", [])
        ],
        expires_at=datetime.datetime.fromisoformat(expires) if expires else None,
        requester=str(requester) if requester else None,
        identity=f"system:serviceaccount:{namespace}:{account}" if account else None,
    )
