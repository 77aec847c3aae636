"""Reversibility and blast radius of each action type: the pure half of the action catalog.

The modules in ``actions/`` plan, dry-run, apply and invert; this module only says, for an action
and the facts its caller read from the live target, how far the change reaches and whether the
operator can undo it. Nothing here reads the cluster or the clock.

Reversibility means the operator's recorded inverse restores the previous *declared* state:

======================  ==========  ==================================================
action                  reversible  why
======================  ==========  ==================================================
``restart-workload``    no          every pod is replaced; there is no prior state to restore
``scale-workload``      yes         the previous replica count is restored
``rollback-deployment`` yes         roll forward again to the revision before the rollback
``delete-pod``          no          the pod, its in-memory state and its local logs are gone
``cordon-node``         yes         uncordon
``uncordon-node``       yes         cordon
``suspend-cronjob``     yes         resume (or suspend) again
======================  ==========  ==================================================

Reversible does not mean that no pod is disturbed (scaling down stops pods): how many pods a change
touches is the blast radius, limited separately by each grant.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum

from agent_authority.models import grant, request

_A = grant.ActionType
_K = request.TargetKind


class RiskClass(enum.StrEnum):
    """The approval class of an action; a grant requires approvals per class."""

    REVERSIBLE = "reversible"
    IRREVERSIBLE = "irreversible"


REVERSIBLE: collections.abc.Mapping[grant.ActionType, bool] = {
    _A.RESTART_WORKLOAD: False,
    _A.SCALE_WORKLOAD: True,
    _A.ROLLBACK_DEPLOYMENT: True,
    _A.DELETE_POD: False,
    _A.CORDON_NODE: True,
    _A.UNCORDON_NODE: True,
    _A.SUSPEND_CRONJOB: True,
}
"""Whether the operator can restore the declared state an action changes (see module docstring)."""

ALLOWED_TARGET_KINDS: collections.abc.Mapping[grant.ActionType, frozenset[request.TargetKind]] = {
    _A.RESTART_WORKLOAD: frozenset({_K.DEPLOYMENT, _K.STATEFUL_SET, _K.DAEMON_SET}),
    _A.SCALE_WORKLOAD: frozenset({_K.DEPLOYMENT, _K.STATEFUL_SET}),
    _A.ROLLBACK_DEPLOYMENT: frozenset({_K.DEPLOYMENT}),
    _A.DELETE_POD: frozenset({_K.POD}),
    _A.CORDON_NODE: frozenset({_K.NODE}),
    _A.UNCORDON_NODE: frozenset({_K.NODE}),
    _A.SUSPEND_CRONJOB: frozenset({_K.CRON_JOB}),
}
"""The kinds of object each action type can act on."""

NODE_ACTIONS: frozenset[grant.ActionType] = frozenset({_A.CORDON_NODE, _A.UNCORDON_NODE})
"""Cluster-scoped actions: they act on a Node and ignore target namespaces."""

_PARAMS: collections.abc.Mapping[grant.ActionType, frozenset[str]] = {
    _A.SCALE_WORKLOAD: frozenset({"replicas"}),
    _A.ROLLBACK_DEPLOYMENT: frozenset({"to_revision"}),
    _A.SUSPEND_CRONJOB: frozenset({"suspend"}),
}
"""The parameters (python field names of ``ActionParams``) each action type accepts."""


@dataclasses.dataclass(frozen=True)
class TargetFacts:
    """What the caller read from the live target just before the decision.

    ``None`` means "not read" (or not applicable to the kind); a fact an action needs and that is
    ``None`` makes its blast radius unknown (see :func:`missing_facts`).
    """

    kind: request.TargetKind | None = None
    """The kind of the object found; ``None`` when the target does not exist."""
    current_replicas: int | None = None
    """Declared replicas (``spec.replicas``) of a Deployment or StatefulSet."""
    current_pods: int | None = None
    """Pods the workload runs now (``status.replicas``; a DaemonSet's scheduled pods)."""
    pods_on_node: int | None = None
    """Non-terminated pods on the target node (node actions; recorded, not evicted)."""
    previous_revision_exists: bool | None = None
    """rollback-deployment: whether the revision to go back to exists."""
    cronjob_suspended: bool | None = None
    """suspend-cronjob: ``spec.suspend`` as it is now."""


def is_reversible(action_type: grant.ActionType) -> bool:
    """Whether the operator's recorded inverse restores what ``action_type`` changes."""
    return REVERSIBLE[action_type]


def risk_class(action_type: grant.ActionType) -> RiskClass:
    """The approval class of ``action_type``."""
    return RiskClass.REVERSIBLE if is_reversible(action_type) else RiskClass.IRREVERSIBLE


def target_kind_problem(action: request.Action) -> str | None:
    """A message naming ``spec.action.target.kind`` when it does not fit the action type."""
    allowed = ALLOWED_TARGET_KINDS[action.type]
    if action.target.kind in allowed:
        return None
    return (
        f"spec.action.target.kind: {action.type} acts on {_or(sorted(allowed))}, "
        f"not on {action.target.kind}"
    )


def params_problem(action: request.Action) -> str | None:
    """A message naming the ``spec.action.params`` field that is missing or does not belong."""
    params = action.params or request.ActionParams()
    accepted = _PARAMS.get(action.type, frozenset())
    for field in request.ActionParams.model_fields:
        if getattr(params, field) is not None and field not in accepted:
            allowed = ", ".join(sorted(_wire(f) for f in accepted))
            return (
                f"spec.action.params.{_wire(field)}: not a parameter of {action.type} "
                f"(accepted: {allowed or 'none'})"
            )
    if action.type is _A.SCALE_WORKLOAD and params.replicas is None:
        return "spec.action.params.replicas: scale-workload needs the desired replica count"
    return None


def missing_facts(action_type: grant.ActionType, facts: TargetFacts) -> tuple[str, ...]:
    """The :class:`TargetFacts` fields ``action_type`` needs for its blast radius that are unset."""
    needed: tuple[str, ...] = ()
    if action_type is _A.SCALE_WORKLOAD:
        needed = ("current_replicas",)
    elif action_type in (_A.RESTART_WORKLOAD, _A.ROLLBACK_DEPLOYMENT):
        needed = ("current_pods",)
    return tuple(name for name in needed if getattr(facts, name) is None)


class MissingFactsError(ValueError):
    """Raised by :func:`blast_radius` when a fact it needs was not read (a caller's bug)."""


def blast_radius(action: request.Action, facts: TargetFacts) -> request.BlastRadius:
    """How far ``action`` reaches on the live target described by ``facts``.

    - scale-workload: ``replicasDelta`` = desired - current; pods affected = ``|delta|``.
    - restart-workload, rollback-deployment: every pod the workload runs now is replaced.
    - delete-pod: one pod.
    - cordon-node: no pod is evicted (cordoning only stops new scheduling), so 0; the pods still
      running there are reported by :func:`describe`. uncordon-node, suspend-cronjob: 0.

    Raises :class:`MissingFactsError` when :func:`missing_facts` is not empty.
    """
    missing = missing_facts(action.type, facts)
    if missing:
        raise MissingFactsError(f"{action.type}: blast radius needs {', '.join(missing)}")
    reversible = is_reversible(action.type)
    if action.type is _A.SCALE_WORKLOAD:
        desired = (action.params or request.ActionParams()).replicas
        current = facts.current_replicas
        if desired is None or current is None:  # params_problem / missing_facts catch these
            raise MissingFactsError("scale-workload: needs params.replicas and current_replicas")
        delta = desired - current
        return request.BlastRadius(
            pods_affected=abs(delta), replicas_delta=delta, reversible=reversible
        )
    if action.type in (_A.RESTART_WORKLOAD, _A.ROLLBACK_DEPLOYMENT):
        return request.BlastRadius(pods_affected=facts.current_pods or 0, reversible=reversible)
    if action.type is _A.DELETE_POD:
        return request.BlastRadius(pods_affected=1, reversible=reversible)
    return request.BlastRadius(pods_affected=0, reversible=reversible)


def describe(action: request.Action, facts: TargetFacts, radius: request.BlastRadius) -> str:
    """What the change does to the target, as a phrase: ``scales from 3 to 6 replicas (...)``."""
    noun = "pod" if radius.pods_affected == 1 else "pods"
    undo = "reversible" if radius.reversible else "irreversible"
    if action.type is _A.SCALE_WORKLOAD and facts.current_replicas is not None:
        desired = facts.current_replicas + radius.replicas_delta
        return (
            f"scales from {facts.current_replicas} to {desired} replicas "
            f"(delta {radius.replicas_delta:+d}, {radius.pods_affected} {noun} affected, {undo})"
        )
    if action.type is _A.CORDON_NODE:
        on_node = "an unknown number of" if facts.pods_on_node is None else str(facts.pods_on_node)
        return f"evicts no pods ({on_node} pods keep running on the node; {undo})"
    if action.type is _A.SUSPEND_CRONJOB:
        suspend = (action.params or request.ActionParams()).suspend is not False
        verb = "suspends" if suspend else "resumes"
        if facts.cronjob_suspended is suspend:
            state = "suspended" if suspend else "running"
            return f"{verb} the CronJob, which is already {state}: no change ({undo})"
        return f"{verb} the CronJob; running Jobs are not stopped (0 pods affected; {undo})"
    return f"affects {radius.pods_affected} {noun} ({undo})"


def _wire(field: str) -> str:
    """The wire (camelCase) name of an ``ActionParams`` field."""
    return request.ActionParams.model_fields[field].alias or field


def _or(items: collections.abc.Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"
