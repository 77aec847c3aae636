"""What deciding a RemediationRequest reads: its session and grant, the phase its session counts
as, the namespaces the grant reads, and whether a rollback undoes what it claims to.

Moved out of :mod:`requests` unchanged (the names lost their leading underscore).
"""

from __future__ import annotations

from agent_authority.controllers import request_status
from agent_authority.kube import api, lineage, resources
from agent_authority.models import grant, request, session
from agent_authority.policy import rbac

P = request.RequestPhase


async def context(
    kube: api.Kube, body: api.Json
) -> tuple[api.Json | None, api.Json | None, str | None]:
    """The request's session and grant (None when missing) and why, if something is missing."""
    meta, spec = body["metadata"], body["spec"]
    session_body = await resources.get_session(kube, meta["namespace"], spec["sessionRef"]["name"])
    if session_body is None:
        return None, None, f"spec.sessionRef: session {spec['sessionRef']['name']!r} not found"
    grant_name = session_body["spec"]["grantRef"]["name"]
    grant_body = await resources.get_grant(kube, grant_name)
    if grant_body is None:
        return session_body, None, f"grant {grant_name!r} of the session no longer exists"
    return session_body, grant_body, None


async def rollback_problem(
    kube: api.Kube, body: api.Json, spec: request.RemediationRequestSpec
) -> str | None:
    assert spec.rollback_of is not None
    original = await resources.get_request(
        kube, body["metadata"]["namespace"], spec.rollback_of.name
    )
    if original is None:
        return f"spec.rollbackOf: request {spec.rollback_of.name!r} not found"
    if original["spec"]["sessionRef"]["name"] != spec.session_ref.name:
        return (
            f"spec.sessionRef: a rollback belongs to the session of the request it undoes "
            f"({original['spec']['sessionRef']['name']!r}), not {spec.session_ref.name!r}: it "
            "is judged under that session's grant and approval rules"
        )
    if request_status.phase(original) != P.SUCCEEDED.value:
        return (
            f"spec.rollbackOf: request {spec.rollback_of.name!r} is "
            f"{request_status.phase(original)}; only a Succeeded request can be rolled back"
        )
    inverse = request_status.status(original).get("inverse")
    if not inverse:
        return (
            f"spec.rollbackOf: request {spec.rollback_of.name!r} has no recorded inverse "
            "(status.inverse), so it cannot be undone"
        )
    if request.Action.model_validate(inverse["action"]) != spec.action:
        return (
            "spec.action: a rollback must carry exactly the recorded inverse of "
            f"{spec.rollback_of.name!r} (status.inverse.action)"
        )
    return None


def session_phase(
    spec: request.RemediationRequestSpec, session_body: api.Json
) -> session.SessionPhase:
    """The session's phase, as the policy sees it for this request.

    A person's rollback (its requester is neither the session's own identity nor whoever opened
    the session) undoes an applied change after the incident, usually when the session has ended:
    it is judged as if the session were Active, under the same grant. An agent's rollback is a
    request of its session like any other.
    """
    status = request_status.status(session_body)
    phase = session.SessionPhase(status.get("phase") or "Pending")
    account = status.get("serviceAccountName")
    ns = session_body["metadata"]["namespace"]
    agents = {
        f"{lineage.SA_PREFIX}{ns}:{account}" if account else "",
        str((session_body["spec"].get("requester") or {}).get("username", "")),
    } - {""}
    requester = spec.requester.username if spec.requester else None
    if spec.rollback_of is not None and requester is not None and requester not in agents:
        return session.SessionPhase.ACTIVE
    return phase


async def read_namespaces(kube: api.Kube, grant_spec: grant.AgentGrantSpec) -> list[str]:
    resolved = await resources.resolve_selectors(kube, grant_spec.read)
    return sorted({r.namespace for r in rbac.compile_rules(grant_spec.read, resolved)})
