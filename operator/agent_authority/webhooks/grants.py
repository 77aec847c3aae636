"""AgentGrant admission: policy validation and the escalation check.

Whoever creates or edits a grant must already hold every permission the grant hands out — the
reads of its scopes and the writes its remediations delegate to the operator — as RBAC's own
escalation rule: one SubjectAccessReview of the author per permission. Scopes chosen by a
``namespaceSelector`` can grow as namespaces are labelled later, so for them the author must hold
the permission in every namespace. The refusal lists what is missing.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.kube import access, api
from agent_authority.models import GROUP, VERSION, grant
from agent_authority.policy import delegation, rbac
from agent_authority.webhooks import identity, refusals

PLURAL = "agentgrants"
LISTED = 10


def required(spec: grant.AgentGrantSpec) -> list[rbac.Permission]:
    """What the author must hold: what the read scopes hand out and what the remediations
    delegate. Selector scopes count in every namespace (``""``)."""
    every_namespace = {s.name: [""] for s in spec.read if s.namespace_selector is not None}
    reads = rbac.required_permissions(spec, every_namespace)
    read_namespaces = sorted({p.namespace for p in reads})
    writes = delegation.remediation_permissions(spec, read_namespaces)
    return sorted(set(reads) | set(writes))


def _describe(p: rbac.Permission) -> str:
    if p.namespace:
        where = f"namespace {p.namespace}"
    else:
        where = "the cluster" if p.resource == "nodes" else "every namespace"
    group = f".{p.api_group}" if p.api_group else ""
    return f"{p.verb} {p.resource}{group} in {where}"


@kopf.on.validate(
    GROUP, VERSION, PLURAL, operations=["CREATE", "UPDATE"], id="grant-escalation", persistent=True
)
@refusals.counted("AgentGrant")
async def validate(
    spec: kopf.Spec, userinfo: Any, old: Any = None, operation: str = "", **_: Any
) -> None:
    if operation == "UPDATE" and dict((old or {}).get("spec") or {}) == dict(spec):
        return  # metadata-only change (finalizers, annotations): nothing is handed out anew
    try:
        model = grant.AgentGrantSpec.model_validate(dict(spec))
    except ValueError as e:
        raise kopf.AdmissionError(f"spec is not a valid AgentGrant spec: {e}", code=422) from e
    problems = rbac.validate_grant(model)
    if problems:
        raise kopf.AdmissionError("; ".join(str(p) for p in problems), code=422)
    author = identity.from_userinfo(userinfo)
    lacking = await access.missing(
        api.default(), author, required(model), extra=identity.extra_of(userinfo)
    )
    if lacking:
        shown = ", ".join(_describe(p) for p in lacking[:LISTED])
        more = f" and {len(lacking) - LISTED} more" if len(lacking) > LISTED else ""
        raise kopf.AdmissionError(
            f"escalation refused: {author.username} would hand out permissions they do not "
            f"hold: {shown}{more}. A grant may only give what its author already has "
            "(ask someone who holds these permissions to apply it, or narrow spec.read)",
            code=403,
        )
