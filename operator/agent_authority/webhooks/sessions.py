"""IncidentSession admission: stamp the real requester, refuse what policy refuses, and guard
every later change.

- mutating, CREATE: wrongly typed fields the webhook reads (``grantRef``, ``parentSession``,
  ``ttlSeconds``) are refused naming the field, before anything else looks at them;
  ``spec.requester`` is overwritten with the authenticated caller (client values are ignored),
  ``spec.ttlSeconds`` defaults to the grant's ``maxTtlSeconds`` only when it is left out, and the
  labels the operator indexes by (grant, parent) are set;
- validating, CREATE: the same :func:`policy.sessions.admit` the controller runs, so a refusal
  comes back to ``kubectl`` at once, naming the field and what would be allowed;
- validating, UPDATE (the object and its ``status``): anyone but the operator may only set
  ``spec.ended`` from false to true — and only the requester or a holder of the RBAC verb
  ``end``; a session identity changes nothing — and never touch the operator's annotations,
  labels, finalizer or status
  (:func:`policy.session_changes.update_failure`). kopf keeps its progress and diff base in those
  annotations, so this is what keeps an agent from steering the operator's handlers.
The labels are informational (``kubectl get -l``): nothing is counted or authorized by them.

Both CREATE webhooks read the grant from the operator's watched copy (:mod:`indexes`,
``grants_by_name``) instead of GETting it twice per create. That is safe because neither decides
anything on it: the TTL default never widens a session (the controller refuses a TTL above the
grant's maximum on its fresh read), an admission on the copy is only an early answer (the
controller admits or denies on fresh reads), and a refusal is given only after the same
decision on a fresh GET, so a grant changed a moment ago is never refused on its old copy.
The operator's finalizer is added here too, so kopf does not have to patch it in (one write and
one watch round-trip less before a session's credentials are minted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
import pydantic

from agent_authority import indexes
from agent_authority.kube import access, api, context, resources
from agent_authority.models import FINALIZER, GROUP, VERSION, grant, session
from agent_authority.policy import session_changes, sessions
from agent_authority.webhooks import identity, incidents, refusals

PLURAL = "incidentsessions"


def shape_problem(spec: Mapping[str, Any]) -> str | None:
    """Why the fields this webhook reads have the wrong type (naming the field), or None.

    The mutating webhook runs before the schema is checked, so it must not trust types; the
    schema then checks everything else.
    """
    ref = spec.get("grantRef")
    if not isinstance(ref, Mapping):
        return f"spec.grantRef: must be an object {{name: <AgentGrant>}}, got {_kind(ref)}"
    if not isinstance(ref.get("name"), str) or not ref.get("name"):
        return f"spec.grantRef.name: must be a non-empty string, got {_kind(ref.get('name'))}"
    parent = spec.get("parentSession")
    if parent is not None and (not isinstance(parent, str) or not parent):
        return f"spec.parentSession: must be a session name (a string), got {_kind(parent)}"
    ttl = spec.get("ttlSeconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
        return (
            f"spec.ttlSeconds: must be a whole number of seconds, got {_kind(ttl)} "
            "(leave it out for the grant's maxTtlSeconds)"
        )
    if isinstance(ttl, int) and ttl < session.MIN_TTL_SECONDS:
        return (
            f"spec.ttlSeconds: {ttl} is below the minimum of {session.MIN_TTL_SECONDS} seconds "
            "(leave it out for the grant's maxTtlSeconds)"
        )
    return None


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    described = names.get(type(value), type(value).__name__)
    return f"{described} {value!r}" if isinstance(value, str | int | float) else described


def describe_errors(e: pydantic.ValidationError) -> str:
    """Pydantic's errors as ``spec.<path>: <message>``, one per field."""
    parts = []
    for error in e.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        parts.append(f"spec{path}: {error['msg']}")
    return "; ".join(parts)


@kopf.on.mutate(GROUP, VERSION, PLURAL, operation="CREATE", id="stamp-requester", persistent=True)
async def stamp(
    spec: kopf.Spec,
    meta: kopf.Meta,
    userinfo: Any,
    patch: kopf.Patch,
    grants_by_name: Any = None,
    **_: Any,
) -> None:
    problem = shape_problem(spec)
    if problem:
        raise kopf.AdmissionError(problem, code=422)
    requester = identity.from_userinfo(userinfo)
    grant_name = str(spec["grantRef"]["name"])
    watched = indexes.grant(grants_by_name, grant_name)
    grant_body = watched or await resources.get_grant(api.default(), grant_name)
    if spec.get("ttlSeconds") is None and grant_body is not None:
        limits = grant.AgentGrantSpec.model_validate(grant_body["spec"]).session
        patch.spec["ttlSeconds"] = limits.max_ttl_seconds
    patch.spec["requester"] = requester.to_api()
    try:  # alert-bound grants: the incident comes from the alert
        await incidents.bind(spec, patch, grant_body)
    except kopf.AdmissionError:
        if watched is None:
            raise
        await incidents.bind(spec, patch, None)  # refuse only on a fresh read
    patch.metadata["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
    patch.metadata.labels[resources.GRANT_LABEL] = grant_name
    if spec.get("parentSession"):
        patch.metadata.labels[resources.PARENT_LABEL] = str(spec["parentSession"])


@kopf.on.validate(GROUP, VERSION, PLURAL, operation="CREATE", id="admit-session", persistent=True)
@refusals.counted("IncidentSession")
async def admit(
    spec: kopf.Spec,
    namespace: str | None,
    userinfo: Any,
    sessions_by_grant: Any = None,
    grants_by_name: Any = None,
    **_: Any,
) -> None:
    problem = shape_problem(spec)
    if problem:
        raise kopf.AdmissionError(problem, code=422)
    body = dict(spec)
    body["requester"] = identity.from_userinfo(userinfo).to_api()
    try:
        model = session.IncidentSessionSpec.model_validate(body)
    except pydantic.ValidationError as e:
        raise kopf.AdmissionError(describe_errors(e), code=422) from e
    assert model.requester is not None
    watched = indexes.grant(grants_by_name, model.grant_ref.name)
    decision = await _decide(model, namespace or "", sessions_by_grant, watched)
    if not decision.allowed and watched is not None:  # refuse only on a fresh read
        decision = await _decide(model, namespace or "", sessions_by_grant, None)
    if not decision.allowed:
        raise kopf.AdmissionError(f"{decision.reason.value}: {decision.message}", code=403)


async def _decide(
    model: session.IncidentSessionSpec,
    namespace: str,
    sessions_by_grant: Any,
    grant_body: api.Json | None,
) -> sessions.Admission:
    """The admission decision on ``grant_body`` (None: the grant is read fresh)."""
    assert model.requester is not None
    facts = await context.session_facts(
        api.default(),
        model,
        namespace=namespace,
        name=None,
        created_at=None,
        siblings=indexes.siblings(sessions_by_grant, model.grant_ref.name),
        grant_body=grant_body,
    )
    return sessions.admit(model.requester, model, facts.context)


async def _review_update(old: Any, new: Any, userinfo: Any, memo: Any) -> None:
    if identity.is_operator(userinfo, memo):
        return
    if old is None or new is None:
        raise kopf.AdmissionError("the update carries no old or new object", code=400)
    before, after = dict(old), dict(new)
    caller = identity.from_userinfo(userinfo)
    holds_end = False
    if session_changes.ending_needs_the_end_verb(before, after, caller):
        meta = before.get("metadata") or {}
        holds_end = await access.allowed(
            api.default(),
            caller,
            verb=session_changes.END_VERB,
            group=GROUP,
            resource=PLURAL,
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            extra=identity.extra_of(userinfo),
        )
    failure = session_changes.update_failure(before, after, caller, holds_end_verb=holds_end)
    if failure is not None:
        raise kopf.AdmissionError(f"{failure.reason.value}: {failure.message}", code=403)


@kopf.on.validate(GROUP, VERSION, PLURAL, operation="UPDATE", id="guard-session", persistent=True)
async def guard(userinfo: Any, memo: Any, old: Any = None, new: Any = None, **_: Any) -> None:
    await _review_update(old, new, userinfo, memo)


@kopf.on.validate(
    GROUP,
    VERSION,
    PLURAL,
    operation="UPDATE",
    subresource="status",
    id="guard-session-status",
    persistent=True,
)
async def guard_status(
    userinfo: Any, memo: Any, old: Any = None, new: Any = None, **_: Any
) -> None:
    await _review_update(old, new, userinfo, memo)
