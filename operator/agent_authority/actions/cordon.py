"""``cordon-node`` / ``uncordon-node``: set or clear ``spec.unschedulable`` of a Node.

As ``kubectl cordon``/``uncordon``: nothing is evicted; cordoning only stops new pods from being
scheduled there. Uncordoning removes the field (the apiserver never stores ``false``).

- Facts: the pods still running on the node (non-terminated pods with ``spec.nodeName``),
  reported, not evicted.
- Patch: JSON merge patch ``spec.unschedulable: true`` (cordon) or ``null`` (uncordon).
- Idempotency: when the node already is (un)schedulable as wanted nothing is written.
- Inverse: the action that restores the value read at plan time: ``uncordon-node`` after
  cordoning a schedulable node, ``cordon-node`` when it was cordoned already (a no-op, so rolling
  back never uncordons a node someone else cordoned). Recorded in the request's status at
  evaluation.
- Dry-run diff: ``spec.unschedulable``.
"""

from __future__ import annotations

import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api
from agent_authority.models import grant, request
from agent_authority.policy import blast

_A = grant.ActionType
TYPES = frozenset({_A.CORDON_NODE, _A.UNCORDON_NODE})
PATH: fields.Path = ("spec", "unschedulable")


async def plan(
    kube: api.Kube,
    action: request.Action,
    *,
    request_uid: str,
    requested_at: datetime.datetime | None = None,
    pinned: request.Pinned | None = None,
) -> base.Plan:
    base.check(action, TYPES)
    target = action.target
    with base.translating(target):
        live = await base.read(kube, target)
        pods = await api.call(
            kube.core.list_pod_for_all_namespaces,
            field_selector=(
                f"spec.nodeName={target.name},status.phase!=Succeeded,status.phase!=Failed"
            ),
        )
    facts = blast.TargetFacts(kind=target.kind, pods_on_node=len(pods.get("items", [])))
    radius = blast.blast_radius(action, facts)
    current = True if fields.get(live, PATH) else None
    restore = _A.CORDON_NODE if current else _A.UNCORDON_NODE
    inverse = request.Inverse(
        action=request.Action(type=restore, target=target),
        description=f"{restore} {target.name}: it was "
        f"{'unschedulable' if current else 'schedulable'} before",
    )
    after = True if action.type is _A.CORDON_NODE else None
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=inverse,
        description=f"{base.label(target)}: {action.type}, {blast.describe(action, facts, radius)}",
        request_uid=request_uid,
        target_uid=live["metadata"]["uid"],
        live=live,
        changes=(base.Change(PATH, before=current, after=after),),
    )


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    return (await base.converge(kube, plan, dry_run=True)).changes


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    outcome = await base.converge(kube, plan, dry_run=False)
    target = base.label(plan.action.target)
    state = "cordoned" if plan.action.type is _A.CORDON_NODE else "schedulable"
    if not outcome.written:
        return f"{target}: {state} already, nothing to do"
    return f"{target}: {state} ({plan.facts.pods_on_node} pods keep running there)"
