"""``restart-workload``: a rollout restart of a Deployment, StatefulSet or DaemonSet.

As ``kubectl rollout restart``: the pod template annotation ``kubectl.kubernetes.io/restartedAt``
is set to the time of planning, so the workload's controller replaces every pod by its own rollout
strategy. A paused Deployment is refused (the restart would not roll out until resumed).

- Facts: declared replicas and pods running now (``status.replicas``; a DaemonSet's
  ``status.currentNumberScheduled``): every one of them is replaced.
- Patch: JSON merge patch of ``spec.template.metadata.annotations``, plus the marker.
- Idempotency: the timestamp is the request's creation time (``requested_at``), so every plan of
  the same request writes the same value: applying again, or planning again after a crash, finds
  it in place and writes nothing (a second rollout would replace every pod again).
- Inverse: none. The action is irreversible (``policy.blast``): the replaced pods are gone, and
  restoring the previous annotation value would only start one more rollout.
- Dry-run diff: ``spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]``.
"""

from __future__ import annotations

import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api
from agent_authority.models import grant, request
from agent_authority.policy import blast

TYPES = frozenset({grant.ActionType.RESTART_WORKLOAD})
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
PATH: fields.Path = ("spec", "template", "metadata", "annotations", RESTARTED_AT)


REVISION = "deployment.kubernetes.io/revision"


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
    base.refuse_paused(action, live, facts)
    radius = blast.blast_radius(action, facts)
    current = fields.get(live, PATH)
    stamp = (requested_at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    after = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    resumed = current == after
    what = "was restarted by this request already" if resumed else "rollout restart"
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=_inverse(action, live),
        description=(
            f"{base.label(action.target)}: {what}, {blast.describe(action, facts, radius)}"
        ),
        request_uid=request_uid,
        target_uid=live["metadata"]["uid"],
        live=live,
        changes=(base.Change(PATH, before=current, after=after),),
    )


def _inverse(action: request.Action, live: api.Json) -> request.Inverse | None:
    """A Deployment's restart is undone by rolling back to the revision current before it (the
    restored template rolls the pods once more: the pods that were replaced cannot come back).
    StatefulSets and DaemonSets keep no revision history this catalog can roll back to."""
    revision = (live["metadata"].get("annotations") or {}).get(REVISION)
    if action.target.kind is not request.TargetKind.DEPLOYMENT or not revision:
        return None
    back = request.Action(
        type=grant.ActionType.ROLLBACK_DEPLOYMENT,
        target=action.target,
        params=request.ActionParams(to_revision=int(revision)),
    )
    return request.Inverse(
        action=back,
        description=f"roll {base.label(action.target)} back to revision {revision}, the "
        "template before the restart",
    )


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    return (await base.converge(kube, plan, dry_run=True)).changes


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    outcome = await base.converge(kube, plan, dry_run=False)
    target = base.label(plan.action.target)
    if not outcome.written:
        return f"{target}: already restarted at {fields.get(outcome.obj, PATH)}, nothing to do"
    return (
        f"{target}: rollout restart started ({RESTARTED_AT}={plan.changes[0].after}; "
        f"{plan.radius.pods_affected} pods to be replaced)"
    )
