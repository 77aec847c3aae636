"""``rollback-deployment``: put a Deployment back on the pod template of an earlier revision.

As ``kubectl rollout undo``: the revisions are the ReplicaSets the Deployment controls, numbered by
their ``deployment.kubernetes.io/revision`` annotation. The current revision is the one whose pod
template is the Deployment's (ignoring the ``pod-template-hash`` label); the default target is the
highest other revision, or ``params.toRevision``. The target ReplicaSet's pod template, minus the
``pod-template-hash`` label, becomes the Deployment's template; the Deployment controller then
reuses that ReplicaSet and gives it the next revision number. A paused Deployment is refused.
Unlike kubectl, the ReplicaSet's annotations (``kubernetes.io/change-cause``) are not copied back.

- Facts: declared replicas, pods running now (all are replaced), whether the revision exists.
- Patch: JSON merge patch computed from the live template to the target template (removed keys
  become ``null``, lists are replaced whole), so the result equals the target template exactly;
  guarded: refused when the template changed since planning.
- Idempotency: when the template already equals the target nothing is written. Planning the same
  request again after it was applied finds the marker and plans no change; without the marker
  "the previous revision" would now mean a different one and the rollback would go one further.
- Inverse: ``rollback-deployment`` with ``toRevision`` = the revision current at plan time. That
  ReplicaSet keeps its number when the controller renumbers the one rolled back to, so the inverse
  stays valid until ``revisionHistoryLimit`` prunes it.
- Dry-run diff: the changed leaves of ``spec.template``, e.g.
  ``spec.template.spec.containers[name=app].image``.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import datetime

from agent_authority.actions import base, fields
from agent_authority.kube import api
from agent_authority.models import grant, request
from agent_authority.policy import blast

TYPES = frozenset({grant.ActionType.ROLLBACK_DEPLOYMENT})
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
PATH: fields.Path = ("spec", "template")


def revision_of(obj: api.Json) -> int | None:
    """The ``deployment.kubernetes.io/revision`` of a ReplicaSet; ``None`` when unset or bad."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def without_hash(template: api.Json) -> api.Json:
    """A copy of a ReplicaSet's pod template without the ``pod-template-hash`` label."""
    stripped = copy.deepcopy(template)
    labels = stripped.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return stripped


def history(
    replica_sets: collections.abc.Iterable[api.Json], owner_uid: str
) -> dict[int, api.Json]:
    """Revision -> pod template (without hash) of the ReplicaSets the Deployment controls."""
    found: dict[int, api.Json] = {}
    for rs in replica_sets:
        owners = rs.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == owner_uid and o.get("controller") for o in owners):
            continue
        revision = revision_of(rs)
        if revision is not None:
            found[revision] = without_hash(rs.get("spec", {}).get("template") or {})
    return found


def current_revision(
    revisions: collections.abc.Mapping[int, api.Json], template: api.Json
) -> int | None:
    """The highest revision whose template is ``template``."""
    matching = [r for r, t in revisions.items() if t == template]
    return max(matching) if matching else None


def choose(
    current: int, available: collections.abc.Collection[int], to_revision: int | None
) -> int | None:
    """The revision to go back to: ``to_revision`` if it exists, else the highest other one."""
    if to_revision is not None:
        return to_revision if to_revision in available else None
    others = [r for r in available if r != current]
    return max(others) if others else None


async def plan(
    kube: api.Kube,
    action: request.Action,
    *,
    request_uid: str,
    requested_at: datetime.datetime | None = None,
) -> base.Plan:
    base.check(action, TYPES)
    target = action.target
    with base.translating(target):
        live = await base.read(kube, target)
        replica_sets = await _replica_sets(kube, live)
    revisions = history(replica_sets, live["metadata"]["uid"])
    facts = base.workload_facts(target.kind, live)
    template = fields.get(live, PATH) or {}
    marker = base.resumed_marker(live, request_uid)
    if marker is not None:
        facts = dataclasses.replace(facts, previous_revision_exists=True)
        radius = blast.blast_radius(action, facts)
        return base.Plan(
            action=action,
            facts=facts,
            radius=radius,
            inverse=marker.inverse,
            description=f"{base.label(target)}: was rolled back by this request already",
            request_uid=request_uid,
            target_uid=live["metadata"]["uid"],
            changes=(base.Change(PATH, before=template, after=template, guarded=True),),
            resumed=True,
        )
    base.refuse_paused(action, live, facts)
    current = current_revision(revisions, template)
    if current is None:
        raise base.TargetChanged(
            f"{base.label(target)} has no ReplicaSet for its current pod template yet (its "
            "controller has not caught up with the last change): plan again shortly",
            facts=facts,
        )
    to_revision = (action.params or request.ActionParams()).to_revision
    chosen = choose(current, revisions, to_revision)
    if chosen is None:
        wanted = f"revision {to_revision}" if to_revision else "previous revision"
        known = ", ".join(str(r) for r in sorted(revisions))
        raise base.RevisionNotFound(
            f"{base.label(target)} has no {wanted} to roll back to (revisions: {known})",
            facts=dataclasses.replace(facts, previous_revision_exists=False),
        )
    facts = dataclasses.replace(facts, previous_revision_exists=True)
    if chosen == current:
        raise base.NotApplicable(
            f"{base.label(target)} is at revision {current} already: nothing to roll back",
            facts=facts,
            reason="AlreadyAtRevision",
        )
    radius = blast.blast_radius(action, facts)
    inverse = request.Inverse(
        action=request.Action(
            type=action.type, target=target, params=request.ActionParams(to_revision=current)
        ),
        description=f"roll {base.label(target)} forward again to revision {current}",
    )
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=inverse,
        description=(
            f"{base.label(target)}: roll back from revision {current} to revision {chosen}, "
            f"{blast.describe(action, facts, radius)}"
        ),
        request_uid=request_uid,
        target_uid=live["metadata"]["uid"],
        changes=(base.Change(PATH, before=template, after=revisions[chosen], guarded=True),),
    )


async def _replica_sets(kube: api.Kube, deployment: api.Json) -> list[api.Json]:
    match = (deployment.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
    namespace = deployment["metadata"]["namespace"]
    found = await api.call(
        kube.apps.list_namespaced_replica_set, namespace, label_selector=selector
    )
    items: list[api.Json] = found.get("items", [])
    return items


async def dry_run(kube: api.Kube, plan: base.Plan) -> list[request.FieldChange]:
    return (await base.converge(kube, plan, dry_run=True)).changes


async def apply(kube: api.Kube, plan: base.Plan) -> str:
    outcome = await base.converge(kube, plan, dry_run=False)
    if not outcome.written:
        return f"{base.label(plan.action.target)}: the pod template is in place, nothing to do"
    return f"applied: {plan.description}"
