"""IncidentSession admission: stamp the real requester, then refuse what policy refuses.

- mutating, CREATE: ``spec.requester`` is overwritten with the authenticated caller (client values
  are ignored), ``spec.ttlSeconds`` defaults to the grant's ``maxTtlSeconds``, and the labels the
  operator indexes by (grant, parent) are set;
- validating, CREATE: the same :func:`policy.sessions.admit` the controller runs, so a refusal
  comes back to ``kubectl`` at once, naming the field and what would be allowed;
The labels are informational (``kubectl get -l``): nothing is counted or authorized by them.
The operator's finalizer is added here too, so kopf does not have to patch it in (one write and
one watch round-trip less before a session's credentials are minted).
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority import indexes
from agent_authority.kube import api, context, resources
from agent_authority.models import FINALIZER, GROUP, VERSION, grant, session
from agent_authority.policy import sessions
from agent_authority.webhooks import identity, refusals

PLURAL = "incidentsessions"


@kopf.on.mutate(GROUP, VERSION, PLURAL, operation="CREATE", id="stamp-requester", persistent=True)
async def stamp(
    spec: kopf.Spec, meta: kopf.Meta, userinfo: Any, patch: kopf.Patch, **_: Any
) -> None:
    requester = identity.from_userinfo(userinfo)
    if not spec.get("ttlSeconds"):
        grant_body = await resources.get_grant(
            api.default(), str(spec.get("grantRef", {}).get("name"))
        )
        if grant_body is not None:
            limits = grant.AgentGrantSpec.model_validate(grant_body["spec"]).session
            patch.spec["ttlSeconds"] = limits.max_ttl_seconds
    patch.spec["requester"] = requester.to_api()
    patch.metadata["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
    patch.metadata.labels[resources.GRANT_LABEL] = str(spec.get("grantRef", {}).get("name", ""))
    if spec.get("parentSession"):
        patch.metadata.labels[resources.PARENT_LABEL] = str(spec["parentSession"])


@kopf.on.validate(GROUP, VERSION, PLURAL, operation="CREATE", id="admit-session", persistent=True)
@refusals.counted("IncidentSession")
async def admit(
    spec: kopf.Spec,
    namespace: str | None,
    userinfo: Any,
    sessions_by_grant: Any = None,
    **_: Any,
) -> None:
    body = dict(spec)
    body["requester"] = identity.from_userinfo(userinfo).to_api()
    try:
        model = session.IncidentSessionSpec.model_validate(body)
    except ValueError as e:
        raise kopf.AdmissionError(f"spec is not a valid IncidentSession spec: {e}", code=422) from e
    assert model.requester is not None
    facts = await context.session_facts(
        api.default(),
        model,
        namespace=namespace or "",
        name=None,
        created_at=None,
        siblings=indexes.siblings(sessions_by_grant, model.grant_ref.name),
    )
    decision = sessions.admit(model.requester, model, facts.context)
    if not decision.allowed:
        raise kopf.AdmissionError(f"{decision.reason.value}: {decision.message}", code=403)
