"""``delete-pod``: delete one Pod, exactly the one that was planned on.

- Facts: the Pod exists (kind); one pod is affected. The description names its phase, node and
  controller, so an approver sees whether something will replace it.
- Write: ``DELETE`` with the precondition ``uid`` = the uid read at plan time, so a Pod that was
  recreated under the same name (a StatefulSet's, say) is never deleted in its place. ``dryRun``
  travels inside the DeleteOptions body: the apiserver reads the options from the body when there
  is one and then ignores the query parameters.
- Idempotency: applying again finds the Pod gone, recreated (another uid: the precondition fails)
  or already terminating, and does nothing. When ``requested_at`` is given, a Pod created after the
  request is not the one the request named (``TargetNotFound``), so planning again after a crash
  does not delete its replacement.
- Inverse: none; the action is irreversible (``policy.blast``).
- Dry-run diff: ``metadata.deletionTimestamp`` and ``metadata.deletionGracePeriodSeconds`` as the
  apiserver would set them (grace 0: the Pod would go at once, as unscheduled Pods do).
"""

from __future__ import annotations

import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api, errors
from agent_authority.models import grant, request
from agent_authority.policy import blast

TYPES = frozenset({grant.ActionType.DELETE_POD})
PATHS: tuple[fields.Path, ...] = (
    ("metadata", "deletionTimestamp"),
    ("metadata", "deletionGracePeriodSeconds"),
)


async def plan(
    kube: api.Kube,
    action: request.Action,
    *,
    request_uid: str,
    requested_at: datetime.datetime | None = None,
    pinned: request.Pinned | None = None,
) -> base.Plan:
    base.check(action, TYPES)
    with base.translating(action.target):
        live = await base.read(kube, action.target)
    meta = live["metadata"]
    created = datetime.datetime.fromisoformat(meta["creationTimestamp"])
    if requested_at is not None and requested_at.tzinfo is None:
        requested_at = requested_at.replace(tzinfo=datetime.UTC)
    if requested_at is not None and created > requested_at:
        raise base.TargetNotFound(
            f"{base.label(action.target)} was created at {meta['creationTimestamp']}, after the "
            f"request ({requested_at.isoformat()}): the pod the request named is gone"
        )
    facts = blast.TargetFacts(kind=action.target.kind)
    radius = blast.blast_radius(action, facts)
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=None,
        description=f"{base.label(action.target)}: delete ({_about(live)}), "
        f"{blast.describe(action, facts, radius)}",
        request_uid=request_uid,
        target_uid=meta["uid"],
    )


def _about(pod: api.Json) -> str:
    status, spec = pod.get("status") or {}, pod.get("spec") or {}
    node = spec.get("nodeName") or "no node"
    owners = [o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")]
    owner = (
        f"{owners[0]['kind']} {owners[0]['name']} will replace it"
        if owners
        else "no controller will replace it"
    )
    return f"uid {pod['metadata']['uid']}, {status.get('phase', 'Unknown')} on {node}; {owner}"


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    target = plan.action.target
    with base.translating(target):
        live = await _ours(kube, plan)
        if live is None:
            return []
        result = await _delete(kube, plan, dry_run=True)
    if result is None:
        return []
    return fields.field_changes(live, result, PATHS)


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    target = base.label(plan.action.target)
    with base.translating(plan.action.target):
        live = await _ours(kube, plan)
        if live is None:
            return f"{target} (uid {plan.target_uid}) is gone already, nothing to do"
        if live["metadata"].get("deletionTimestamp"):
            return f"{target} (uid {plan.target_uid}) is terminating already, nothing to do"
        result = await _delete(kube, plan, dry_run=False)
    if result is None:
        return f"{target} (uid {plan.target_uid}) is gone already, nothing to do"
    return f"{target} (uid {plan.target_uid}) deleted"


async def _ours(kube: api.Kube, plan: base.Plan) -> api.Json | None:
    """The live Pod if it still is the one planned on."""
    try:
        live = await base.read(kube, plan.action.target)
    except errors.NotFound:
        return None
    return live if live["metadata"]["uid"] == plan.target_uid else None


async def _delete(kube: api.Kube, plan: base.Plan, *, dry_run: bool) -> api.Json | None:
    """Delete with the uid precondition; ``None`` when that Pod is gone already."""
    target = plan.action.target
    options: api.Json = {"preconditions": {"uid": plan.target_uid}}
    if dry_run:
        options["dryRun"] = ["All"]
    try:
        return await api.call(
            kube.core.delete_namespaced_pod,
            target.name,
            target.namespace,
            body=options,
            dry_run="All" if dry_run else None,
        )
    except (errors.NotFound, errors.Conflict):
        return None
