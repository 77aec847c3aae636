"""IncidentSession admission: stamp the real requester, then refuse what policy refuses.

- mutating, CREATE: ``spec.requester`` is overwritten with the authenticated caller (client values
  are ignored), ``spec.ttlSeconds`` defaults to the grant's ``maxTtlSeconds``, and the labels the
  operator indexes by (grant, parent) are set;
- validating, CREATE: the same :func:`policy.sessions.admit` the controller runs, so a refusal
  comes back to ``kubectl`` at once, naming the field and what would be allowed;
- validating, UPDATE: only the operator may change those labels. This guard is soft
  (``failurePolicy: Ignore``, removed on shutdown) so that ending a session never depends on the
  operator being up; the labels only serve counting, and nothing is authorized by them.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.kube import api, context, resources
from agent_authority.models import GROUP, VERSION, grant, session
from agent_authority.policy import sessions
from agent_authority.webhooks import identity

PLURAL = "incidentsessions"
LABELS = (resources.GRANT_LABEL, resources.PARENT_LABEL)


@kopf.on.mutate(GROUP, VERSION, PLURAL, operation="CREATE", id="stamp-requester", persistent=True)
async def stamp(spec: kopf.Spec, userinfo: Any, patch: kopf.Patch, **_: Any) -> None:
    requester = identity.from_userinfo(userinfo)
    if not spec.get("ttlSeconds"):
        grant_body = await resources.get_grant(
            api.default(), str(spec.get("grantRef", {}).get("name"))
        )
        if grant_body is not None:
            limits = grant.AgentGrantSpec.model_validate(grant_body["spec"]).session
            patch.spec["ttlSeconds"] = limits.max_ttl_seconds
    patch.spec["requester"] = requester.to_api()
    patch.metadata.labels[resources.GRANT_LABEL] = str(spec.get("grantRef", {}).get("name", ""))
    if spec.get("parentSession"):
        patch.metadata.labels[resources.PARENT_LABEL] = str(spec["parentSession"])


@kopf.on.validate(GROUP, VERSION, PLURAL, operation="CREATE", id="admit-session", persistent=True)
async def admit(spec: kopf.Spec, namespace: str | None, userinfo: Any, **_: Any) -> None:
    body = dict(spec)
    body["requester"] = identity.from_userinfo(userinfo).to_api()
    try:
        model = session.IncidentSessionSpec.model_validate(body)
    except ValueError as e:
        raise kopf.AdmissionError(f"spec is not a valid IncidentSession spec: {e}", code=422) from e
    assert model.requester is not None
    facts = await context.session_facts(
        api.default(), model, namespace=namespace or "", name=None, created_at=None
    )
    decision = sessions.admit(model.requester, model, facts.context)
    if not decision.allowed:
        raise kopf.AdmissionError(f"{decision.reason.value}: {decision.message}", code=403)


@kopf.on.validate(
    GROUP, VERSION, PLURAL, operation="UPDATE", id="guard-session-labels", ignore_failures=True
)
def guard_labels(userinfo: Any, memo: Any, old: Any = None, new: Any = None, **_: Any) -> None:
    if identity.is_operator(userinfo, memo):
        return
    before = (old or {}).get("metadata", {}).get("labels") or {}
    after = (new or {}).get("metadata", {}).get("labels") or {}
    for label in LABELS:
        if before.get(label) != after.get(label):
            raise kopf.AdmissionError(
                f"metadata.labels[{label}] is set by the operator and cannot be changed", code=403
            )
