"""``scale-workload``: set ``spec.replicas`` of a Deployment or StatefulSet.

- Facts: declared replicas (``spec.replicas``) and pods running now (``status.replicas``); the
  blast radius is the replica delta.
- Patch: JSON merge patch of ``spec.replicas`` on the object itself rather than the ``/scale``
  subresource, so the new count and the marker land in one write; guarded: the write is refused
  (``TargetChanged``) when the live count is neither the planned starting count nor the target,
  e.g. an autoscaler moved it after the delta was approved.
- Idempotency: when ``spec.replicas`` already is the target nothing is written.
- Inverse: ``scale-workload`` back to the replicas read at plan time (the controller records the
  inverse of the evaluation in the request's status: a plan made after the apply sees the new
  count).
- Dry-run diff: ``spec.replicas``.
"""

from __future__ import annotations

import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api
from agent_authority.models import grant, request
from agent_authority.policy import blast

TYPES = frozenset({grant.ActionType.SCALE_WORKLOAD})
PATH: fields.Path = ("spec", "replicas")


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
    facts = base.workload_facts(action.target.kind, live)
    radius = blast.blast_radius(action, facts)
    current = fields.get(live, PATH)
    desired = (action.params or request.ActionParams()).replicas
    inverse = request.Inverse(
        action=request.Action(
            type=action.type, target=action.target, params=request.ActionParams(replicas=current)
        ),
        description=f"scale {base.label(action.target)} back to {current} replicas",
    )
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=inverse,
        description=f"{base.label(action.target)}: {blast.describe(action, facts, radius)}",
        request_uid=request_uid,
        target_uid=live["metadata"]["uid"],
        live=live,
        changes=(base.Change(PATH, before=current, after=desired, guarded=True),),
    )


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    return (await base.converge(kube, plan, dry_run=True)).changes


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    outcome = await base.converge(kube, plan, dry_run=False)
    target = base.label(plan.action.target)
    change = plan.changes[0]
    if not outcome.written:
        return f"{target}: already at {change.after} replicas, nothing to do"
    return f"{target}: scaled from {change.before} to {change.after} replicas"
