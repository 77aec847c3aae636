"""``suspend-cronjob``: set ``spec.suspend`` of a CronJob (``params.suspend``, default true).

Suspending stops new Jobs from being created; Jobs already running are not stopped.

- Facts: ``spec.suspend`` as it is now.
- Patch: JSON merge patch ``spec.suspend``.
- Idempotency: when ``spec.suspend`` already has the wanted value nothing is written.
- Inverse: ``suspend-cronjob`` with ``suspend`` = the value read at plan time (recorded in the
  marker).
- Dry-run diff: ``spec.suspend``.
"""

from __future__ import annotations

import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api
from agent_authority.models import grant, request
from agent_authority.policy import blast

TYPES = frozenset({grant.ActionType.SUSPEND_CRONJOB})
PATH: fields.Path = ("spec", "suspend")


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
    current = fields.get(live, PATH)
    facts = blast.TargetFacts(kind=target.kind, cronjob_suspended=bool(current))
    radius = blast.blast_radius(action, facts)
    desired = (action.params or request.ActionParams()).suspend is not False
    verb = "suspend" if current else "resume"
    inverse = request.Inverse(
        action=request.Action(
            type=action.type, target=target, params=request.ActionParams(suspend=bool(current))
        ),
        description=f"{verb} {base.label(target)} again, as it was before",
    )
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=inverse,
        description=f"{base.label(target)}: {blast.describe(action, facts, radius)}",
        request_uid=request_uid,
        target_uid=live["metadata"]["uid"],
        live=live,
        changes=(base.Change(PATH, before=current, after=desired),),
    )


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    return (await base.converge(kube, plan, dry_run=True)).changes


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    outcome = await base.converge(kube, plan, dry_run=False)
    target = base.label(plan.action.target)
    state = "suspended" if plan.changes[0].after else "resumed"
    if not outcome.written:
        return f"{target}: {state} already, nothing to do"
    return f"{target}: {state} (Jobs already running are not stopped)"
