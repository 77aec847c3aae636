"""Session admission for alert-bound grants: the incident comes from Alertmanager, not the agent.

Called by the IncidentSession mutating webhook (``webhooks.sessions.stamp``) on CREATE: for a
grant with ``spec.incidents.alertmanager``, the alert named by ``spec.incident.id`` (its
fingerprint) is read from Alertmanager; a refusal (unreachable, not firing, not matched, a
declared severity or class that disagrees) is returned at once with the reason, and a severity or
class the spec left out is filled in from the alert's labels. The validating webhook and the
controller check the same again through ``policy.sessions.admit``.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.kube import alertmanager, api, resources
from agent_authority.models import grant
from agent_authority.policy import incidents


async def bind(spec: kopf.Spec, patch: kopf.Patch, grant_body: api.Json | None = None) -> None:
    """Refuse or complete ``spec.incident`` from the alert, for an alert-bound grant
    (``grant_body``: the grant as the caller already has it; otherwise it is read here)."""
    if grant_body is None:
        grant_body = await resources.get_grant(
            api.default(), str(spec.get("grantRef", {}).get("name"))
        )
    if grant_body is None:
        return  # validation refuses with GrantNotFound
    try:
        binding = grant.AgentGrantSpec.model_validate(grant_body["spec"]).incidents.alertmanager
    except ValueError:
        return  # validation refuses with GrantInvalid
    if binding is None:
        return
    incident: dict[str, Any] = dict(spec.get("incident") or {})
    lookup = await alertmanager.lookup(binding, str(incident.get("id", "")))
    refused = incidents.refusal(
        binding,
        lookup,
        fingerprint=str(incident.get("id", "")),
        severity=str(incident["severity"]) if incident.get("severity") else None,
        class_=str(incident["class"]) if incident.get("class") else None,
    )
    if refused is not None:
        raise kopf.AdmissionError(f"{refused.reason.value}: {refused.message}", code=403)
    values = incidents.filled(binding, lookup, incident)
    if values:
        patch.spec["incident"] = {**incident, **values}
