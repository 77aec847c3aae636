"""The operator's read ceiling: what it may read, so what a grant may hand out.

The operator's ClusterRole (``config/rbac/operator-clusterrole.yaml``) lists its reads one by one,
never ``*``: a wildcard would include ``nodes/proxy`` (which reaches the kubelet under verb
``get``), every Secret of the cluster, and every CRD installed later. RBAC's escalation rule means
the operator can only hand out what it holds, so a grant scope that reads a resource outside
:data:`READS` could never be compiled into working RBAC: it is refused up front, naming the
resource and what is readable. Secrets are not in the list (the operator never reads Secrets
cluster-wide), so no grant hands them out.

A unit test keeps this table and the ClusterRole's read rule identical.
"""

from __future__ import annotations

from agent_authority.models import grant

READ_GROUPS: tuple[str, ...] = (
    "",
    "apps",
    "autoscaling",
    "batch",
    "policy",
    "networking.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "metrics.k8s.io",
    "apiextensions.k8s.io",
    "rbac.authorization.k8s.io",
    "agentauthority.io",
)
READ_RESOURCES: tuple[str, ...] = (
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "nodes/status",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "pods/log",
    "pods/status",
    "replicationcontrollers",
    "resourcequotas",
    "serviceaccounts",
    "services",
    "controllerrevisions",
    "daemonsets",
    "daemonsets/status",
    "deployments",
    "deployments/scale",
    "deployments/status",
    "replicasets",
    "replicasets/scale",
    "replicasets/status",
    "statefulsets",
    "statefulsets/scale",
    "statefulsets/status",
    "horizontalpodautoscalers",
    "cronjobs",
    "cronjobs/status",
    "jobs",
    "jobs/status",
    "poddisruptionbudgets",
    "ingresses",
    "networkpolicies",
    "endpointslices",
    "customresourcedefinitions",
    "roles",
    "rolebindings",
    "agentgrants",
    "incidentsessions",
    "remediationrequests",
)
"""The operator's whole read access: get/list/watch on every group x resource here (one RBAC
rule, as RBAC writes it; pairs that name no real resource grant nothing). Never ``*``, never
``secrets``, never ``nodes/proxy`` or any other connect subresource."""

NOT_HANDED_OUT = frozenset({"roles", "rolebindings"})
"""Reads the operator needs for itself (finding session RBAC) but never hands out."""


def readable(api_group: str, resource: str) -> bool:
    """Whether a grant may hand out reads of ``resource`` in ``api_group``."""
    if resource in NOT_HANDED_OUT:
        return False
    return api_group in READ_GROUPS and resource in READ_RESOURCES


def scope_problems(path: str, scope: grant.ReadScope) -> list[tuple[str, str]]:
    """(field path, message) for each resource of ``scope`` the operator cannot read in one of
    the scope's groups (RBAC grants every group x resource pair of a rule)."""
    problems: list[tuple[str, str]] = []
    for j, resource in enumerate(scope.resources):
        if "*" in resource:
            continue  # refused as a wildcard already
        groups = [g for g in scope.api_groups if "*" not in g and not readable(g, resource)]
        if not groups:
            continue
        named = ", ".join(f"'{g}'" if g else "'' (core)" for g in groups)
        why = " (the operator never reads Secrets)" if resource == "secrets" else ""
        problems.append(
            (
                f"{path}.resources[{j}]",
                f"resource '{resource}' in API group(s) {named} is refused: it is outside the "
                f"operator's read ceiling{why}, so no session could be given it "
                "(config/rbac/operator-clusterrole.yaml; allowed groups: "
                f"{', '.join(repr(g) for g in READ_GROUPS)}; resources: "
                f"{', '.join(r for r in READ_RESOURCES if r not in NOT_HANDED_OUT)})",
            )
        )
    return problems
