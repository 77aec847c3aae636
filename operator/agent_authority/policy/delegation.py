"""What a grant's remediations delegate: the writes the operator makes on an agent's behalf.

An agent never holds these permissions — the operator applies approved changes itself — but a
grant that lets an agent *ask* for them, possibly with ``autonomy: auto``, delegates them all
the same. So, as for read scopes, the grant's author must already hold every one of them (RBAC's
escalation rule; the admission webhook runs one SubjectAccessReview each). Entries with
``autonomy: never`` delegate nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent_authority.models import grant
from agent_authority.policy import blast, rbac

_A = grant.ActionType

ACTION_PERMISSIONS: Mapping[grant.ActionType, tuple[tuple[str, str, str], ...]] = {
    _A.SCALE_WORKLOAD: (("apps", "deployments", "patch"), ("apps", "statefulsets", "patch")),
    _A.RESTART_WORKLOAD: (
        ("apps", "deployments", "patch"),
        ("apps", "statefulsets", "patch"),
        ("apps", "daemonsets", "patch"),
    ),
    _A.ROLLBACK_DEPLOYMENT: (("apps", "deployments", "patch"),),
    _A.DELETE_POD: (("", "pods", "delete"),),
    _A.CORDON_NODE: (("", "nodes", "patch"),),
    _A.UNCORDON_NODE: (("", "nodes", "patch"),),
    _A.SUSPEND_CRONJOB: (("batch", "cronjobs", "patch"),),
}
"""(API group, resource, verb) the operator uses to perform each action (what its catalog does)."""


def remediation_permissions(
    spec: grant.AgentGrantSpec, read_namespaces: Sequence[str]
) -> list[rbac.Permission]:
    """Every write the grant's remediations delegate, sorted.

    ``read_namespaces`` are the namespaces of the grant's read scopes (``""`` for every
    namespace, e.g. a selector scope that may grow): the target namespaces of entries that list
    none. Node actions are cluster-scoped (``""``).
    """
    found: set[rbac.Permission] = set()
    for entry in spec.remediations:
        if entry.autonomy is grant.Autonomy.NEVER:
            continue
        if entry.action in blast.NODE_ACTIONS:
            namespaces: Sequence[str] = [""]
        else:
            namespaces = entry.namespaces or read_namespaces
        for namespace in namespaces:
            for group, resource, verb in ACTION_PERMISSIONS[entry.action]:
                found.add(rbac.Permission(namespace, group, resource, verb))
    return sorted(found)
