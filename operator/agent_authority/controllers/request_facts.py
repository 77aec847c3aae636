"""What deciding a RemediationRequest reads: its session and grant, the phase its session counts
as, the namespaces the grant reads, and whether a rollback undoes what it claims to.

:func:`read` is each drive's fresh read: the request, its session and the session's grant at
once. A request's ``spec.sessionRef`` and a session's ``spec.grantRef`` never change after
creation (CEL rules and the session webhook), so the session named by the request as it was seen
and the grant the session named when it was last read can be read beside the request itself;
the reads are still checked against what they were guessed from (the fresh request's
``sessionRef``, the fresh session's ``grantRef``), and read again one after the other when they
differ.
"""

from __future__ import annotations

import asyncio
import collections.abc
from typing import Any

from agent_authority.controllers import request_status
from agent_authority.kube import api, errors, lineage, resources
from agent_authority.models import GROUP, grant, request, session
from agent_authority.policy import rbac

P = request.RequestPhase

Context = tuple[api.Json | None, api.Json | None, str | None]
"""A request's session and grant (``None`` when missing) and why, if something is missing."""

_grant_names: dict[tuple[str, str], str] = {}
"""``(namespace, session)`` -> the grant its last read named: only a guess to read beside it."""
GRANT_NAMES_MAX = 4096


async def _get_grant(kube: api.Kube, name: str | None) -> api.Json | BaseException | None:
    if name is None:
        return None
    try:
        return await resources.get_grant(kube, name)
    except errors.KubeError as e:
        return e


async def read(
    kube: api.Kube, namespace: str, name: str, session_name: str | None, *, group: str = GROUP
) -> tuple[api.Json | None, Context | None]:
    """The request as stored now and, read at the same time, its context (``None`` when the
    request is gone or names another session than ``session_name``: read it then with
    :func:`context`)."""
    if session_name is None:
        return await resources.get_request(kube, namespace, name, group=group), None
    guess = _grant_names.get((namespace, session_name))
    body, session_body, grant_read = await asyncio.gather(
        resources.get_request(kube, namespace, name, group=group),
        resources.get_session(kube, namespace, session_name),
        _get_grant(kube, guess),
    )
    if body is None or session_of(body) != session_name:
        return body, None
    return body, await _complete(kube, session_body, guess, grant_read)


async def _complete(
    kube: api.Kube,
    session_body: api.Json | None,
    guess: str | None,
    grant_read: api.Json | BaseException | None,
) -> Context:
    if session_body is None:
        return None, None, None
    meta = session_body["metadata"]
    grant_name = session_body["spec"]["grantRef"]["name"]
    if len(_grant_names) >= GRANT_NAMES_MAX:
        _grant_names.clear()
    _grant_names[(meta["namespace"], meta["name"])] = grant_name
    if grant_name != guess:
        grant_read = await resources.get_grant(kube, grant_name)
    elif isinstance(grant_read, BaseException):
        raise grant_read
    if grant_read is None:
        return session_body, None, f"grant {grant_name!r} of the session no longer exists"
    return session_body, grant_read, None


def session_of(body: collections.abc.Mapping[str, Any]) -> str | None:
    """``spec.sessionRef.name`` of a request, ``None`` when unreadable."""
    spec = body.get("spec")
    ref = spec.get("sessionRef") if isinstance(spec, collections.abc.Mapping) else None
    name = ref.get("name") if isinstance(ref, collections.abc.Mapping) else None
    return name if isinstance(name, str) and name else None


def missing_session(body: api.Json) -> str:
    return f"spec.sessionRef: session {body['spec']['sessionRef']['name']!r} not found"


async def context(kube: api.Kube, body: api.Json, known: Context | None = None) -> Context:
    """The request's session and grant (None when missing) and why, if something is missing;
    ``known`` when :func:`read` read them with the request."""
    if known is not None:
        session_body, grant_body, missing = known
        if session_body is None:
            return None, None, missing_session(body)
        return session_body, grant_body, missing
    meta, spec = body["metadata"], body["spec"]
    session_body = await resources.get_session(kube, meta["namespace"], spec["sessionRef"]["name"])
    if session_body is None:
        return None, None, missing_session(body)
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
        kube,
        body["metadata"]["namespace"],
        spec.rollback_of.name,
        group=request_status.group_of(body),
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
