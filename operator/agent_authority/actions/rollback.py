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
- Pinned: the revision gone back to is resolved once, when the request is evaluated, and recorded
  as :class:`request.Pinned` (its number and its ReplicaSet's uid) in the request's status. At
  apply time the controller passes it back and the plan goes to that ReplicaSet's template, not to
  whatever "the previous revision" means by then (a new rollout in between would otherwise turn an
  approved "back to web:1" into "back to web:2"). The uid survives the renumbering the controller
  does when it reuses the ReplicaSet; a pinned ReplicaSet that is gone is ``RevisionNotFound``.
- Idempotency: when the template already equals the target nothing is written; planning the same
  request again (pinned) after it was applied plans no change, instead of going one revision
  further.
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


def uids(replica_sets: collections.abc.Iterable[api.Json], owner_uid: str) -> dict[int, str]:
    """Revision -> ``metadata.uid`` of the ReplicaSets the Deployment controls."""
    found: dict[int, str] = {}
    for rs in replica_sets:
        owners = rs.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == owner_uid and o.get("controller") for o in owners):
            continue
        revision = revision_of(rs)
        if revision is not None:
            found[revision] = str(rs["metadata"].get("uid", ""))
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
    pinned: request.Pinned | None = None,
) -> base.Plan:
    base.check(action, TYPES)
    target = action.target
    with base.translating(target):
        live = await base.read(kube, target)
        replica_sets = await _replica_sets(kube, live)
    revisions = history(replica_sets, live["metadata"]["uid"])
    facts = base.workload_facts(target.kind, live)
    template = fields.get(live, PATH) or {}
    if pinned is not None and pinned.replica_set_uid:
        return _pinned_plan(action, live, replica_sets, facts, pinned, request_uid)
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
        pinned=request.Pinned(
            revision=chosen, replica_set_uid=uids(replica_sets, live["metadata"]["uid"])[chosen]
        ),
    )


def _pinned_plan(
    action: request.Action,
    live: api.Json,
    replica_sets: list[api.Json],
    facts: blast.TargetFacts,
    pinned: request.Pinned,
    request_uid: str,
) -> base.Plan:
    """The plan to the ReplicaSet resolved at evaluation (module docstring, *Pinned*)."""
    target = action.target
    owner = live["metadata"]["uid"]
    by_uid = {uid: revision for revision, uid in uids(replica_sets, owner).items()}
    revision = by_uid.get(pinned.replica_set_uid or "")
    if revision is None:
        raise base.RevisionNotFound(
            f"{base.label(target)}: the ReplicaSet of revision {pinned.revision} that was reviewed "
            f"for this request (uid {pinned.replica_set_uid}) no longer exists",
            facts=dataclasses.replace(facts, previous_revision_exists=False),
        )
    facts = dataclasses.replace(facts, previous_revision_exists=True)
    template = fields.get(live, PATH) or {}
    wanted = history(replica_sets, owner)[revision]
    radius = blast.blast_radius(action, facts)
    if template == wanted:
        what = f"on the template of revision {pinned.revision} already"
    else:
        base.refuse_paused(action, live, facts)
        what = f"roll back to revision {pinned.revision}, {blast.describe(action, facts, radius)}"
    return base.Plan(
        action=action,
        facts=facts,
        radius=radius,
        inverse=None,
        description=f"{base.label(target)}: {what}",
        request_uid=request_uid,
        target_uid=owner,
        changes=(base.Change(PATH, before=template, after=wanted, guarded=True),),
        pinned=pinned,
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
