"""Grant read scopes: validation, compilation to namespaced RBAC rules, and permission tuples.

What a read scope may hand out
------------------------------
Scopes name their API groups and resources one by one; ``*`` is refused everywhere, so a grant never
covers a resource its author did not write down (including a CRD installed later). That is also
why ``secrets`` is allowed: with no wildcards, a scope reads secrets only when it lists
``secrets`` by name, which makes it an explicit, reviewable choice of the cluster admin.

A subresource is refused unless it is known to be read-only under ``get``/``list``/``watch``
(:data:`READABLE_SUBRESOURCES`): ``pods/log``, and ``<resource>/status`` and ``<resource>/scale`` of
any resource. Some subresources are dangerous even with read verbs (:data:`DANGEROUS_SUBRESOURCES`):
connect requests made with HTTP GET (WebSocket upgrades) are authorized as verb ``get``, so
``get pods/exec`` runs commands and ``get nodes/proxy`` reaches the kubelet;
``serviceaccounts/token`` mints credentials. Those are refused with their own reason; any other
subresource (``pods/eviction``, ``pods/ephemeralcontainers``, ...) is refused as not on the
read-only list.

Permissions
-----------
A :class:`grant.PolicyRule` stands for the cross product of its groups, resources, verbs (and
resource names). :func:`expand` flattens rules into :class:`Permission` tuples, which is the unit of
the escalation check (one SubjectAccessReview of the grant author per permission) and of sub-agent
narrowing (:func:`is_subset`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from agent_authority.models import grant
from agent_authority.policy import ceiling

__all__ = [
    "DANGEROUS_SUBRESOURCES",
    "READABLE_SUBRESOURCES",
    "Permission",
    "Problem",
    "compact",
    "compile_rules",
    "expand",
    "intersection",
    "is_subset",
    "required_permissions",
    "scope_namespaces",
    "validate_grant",
]

DANGEROUS_SUBRESOURCES: Mapping[str, str] = {
    "pods/exec": "it runs commands inside containers",
    "pods/attach": "it attaches to the console of a running container",
    "pods/portforward": "it opens network tunnels into pods",
    "pods/proxy": "it proxies arbitrary HTTP requests to pods",
    "services/proxy": "it proxies arbitrary HTTP requests to services",
    "nodes/proxy": "it reaches the kubelet API, which can run commands in any pod on the node",
    "serviceaccounts/token": "it mints tokens for other identities",
}
"""Subresources refused by name, with why: each one gives more than read access."""

READABLE_SUBRESOURCES = ("pods/log", "<resource>/status", "<resource>/scale")
"""The subresources a read scope may list (as shown in refusal messages)."""

_ANY_RESOURCE_SUBRESOURCES = frozenset({"status", "scale"})
_NAMED_SUBRESOURCES = frozenset({"pods/log"})


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason a grant is refused: the field path and what is wrong there."""

    field: str
    """Path of the offending field, as ``spec.read[0].resources[2]``."""
    message: str
    """What was refused, why, and what would be allowed."""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclasses.dataclass(frozen=True, order=True)
class Permission:
    """One RBAC permission in one namespace: the unit a SubjectAccessReview checks."""

    namespace: str
    api_group: str
    resource: str
    """Resource with its subresource, if any: ``pods`` or ``pods/log``."""
    verb: str
    resource_name: str = ""
    """One object name, or ``""`` for every object of the resource (as in a SAR)."""

    @property
    def base_resource(self) -> str:
        """The resource without subresource: ``pods`` for ``pods/log``."""
        return self.resource.partition("/")[0]

    @property
    def subresource(self) -> str:
        """The subresource, or ``""``: ``log`` for ``pods/log``."""
        return self.resource.partition("/")[2]

    def __str__(self) -> str:
        kind = f"{self.resource}.{self.api_group}" if self.api_group else self.resource
        name = f" '{self.resource_name}'" if self.resource_name else ""
        return f"{self.verb} {kind}{name} in {self.namespace}"


# Validation -------------------------------------------------------------------------------------


def validate_grant(spec: grant.AgentGrantSpec) -> list[Problem]:
    """Every problem of a grant that its schema cannot catch; empty means valid.

    Also repeats the grant's CEL rules (a scope sets exactly one of ``namespaces`` and
    ``namespaceSelector``; only ServiceAccount subjects have a namespace), so a grant can be linted
    offline with the same messages.
    """
    problems: list[Problem] = []
    problems += _subject_problems(spec.subjects)
    for i, scope in enumerate(spec.read):
        problems += _scope_problems(f"spec.read[{i}]", scope)
    problems += _duplicates(
        [scope.name for scope in spec.read], "spec.read[{}].name", "scope name", "scope names"
    )
    problems += _duplicates(
        [str(policy.action) for policy in spec.remediations],
        "spec.remediations[{}].action",
        "remediation action",
        "one entry per action type",
    )
    return problems


def _subject_problems(subjects: Sequence[grant.Subject]) -> list[Problem]:
    problems = []
    for i, subject in enumerate(subjects):
        is_sa = subject.kind == grant.SubjectKind.SERVICE_ACCOUNT
        if is_sa and not subject.namespace:
            problems.append(
                Problem(
                    f"spec.subjects[{i}].namespace",
                    f"ServiceAccount '{subject.name}' has no namespace, so it can match no one "
                    "(allowed: the ServiceAccount's namespace)",
                )
            )
        elif not is_sa and subject.namespace:
            problems.append(
                Problem(
                    f"spec.subjects[{i}].namespace",
                    f"{subject.kind} '{subject.name}' has a namespace, which only ServiceAccount "
                    "subjects have (allowed: leave namespace unset)",
                )
            )
    return problems


def _scope_problems(path: str, scope: grant.ReadScope) -> list[Problem]:
    problems = []
    if (scope.namespaces is None) == (scope.namespace_selector is None):
        problems.append(
            Problem(
                path,
                f"scope '{scope.name}' must set exactly one of namespaces or namespaceSelector "
                "(allowed: a list of namespace names, or a label selector)",
            )
        )
    for j, group in enumerate(scope.api_groups):
        if "*" in group:
            problems.append(
                Problem(
                    f"{path}.apiGroups[{j}]",
                    f"API group '{group}' is refused: wildcards would cover groups nobody "
                    "reviewed (allowed: each group by name, '' for the core group)",
                )
            )
    for j, resource in enumerate(scope.resources):
        message = _resource_problem(resource)
        if message:
            problems.append(Problem(f"{path}.resources[{j}]", message))
    refused = {p.field for p in problems}
    problems += [
        Problem(field, message)
        for field, message in ceiling.scope_problems(path, scope)
        if field not in refused  # one reason per field: the more specific one above
    ]
    return problems


def _resource_problem(resource: str) -> str:
    """Why a resource may not appear in a read scope, or ``""`` when it may."""
    allowed = f"allowed: resources by name, subresources {', '.join(READABLE_SUBRESOURCES)}"
    if "*" in resource:
        return (
            f"resource '{resource}' is refused: wildcards would cover resources nobody "
            f"reviewed ({allowed})"
        )
    if resource in DANGEROUS_SUBRESOURCES:
        return (
            f"resource '{resource}' is refused: {DANGEROUS_SUBRESOURCES[resource]}, "
            f"which is not read-only ({allowed})"
        )
    base, _, sub = resource.partition("/")
    if sub and sub not in _ANY_RESOURCE_SUBRESOURCES and resource not in _NAMED_SUBRESOURCES:
        return (
            f"resource '{resource}' is refused: subresource '{sub}' of '{base}' is not known "
            f"to be read-only ({allowed})"
        )
    return ""


def _duplicates(values: Sequence[str], path: str, what: str, allowed: str) -> list[Problem]:
    first_index: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in first_index:
            problems.append(
                Problem(
                    path.format(i),
                    f"{what} '{value}' is refused: it repeats {path.format(first_index[value])} "
                    f"(allowed: unique {allowed})",
                )
            )
        else:
            first_index[value] = i
    return problems


# Compilation ------------------------------------------------------------------------------------


def scope_namespaces(scope: grant.ReadScope, resolved: Mapping[str, Sequence[str]]) -> list[str]:
    """A scope's namespaces, sorted: its explicit list, else what the caller resolved its
    ``namespaceSelector`` to (``resolved[scope.name]``; missing means none)."""
    if scope.namespaces is not None:
        return sorted(set(scope.namespaces))
    return sorted(set(resolved.get(scope.name, ())))


def compile_rules(
    scopes: Sequence[grant.ReadScope], resolved: Mapping[str, Sequence[str]]
) -> list[grant.PolicyRule]:
    """The namespaced RBAC rules of some read scopes, deterministic and sorted.

    One rule per namespace and scope, with the verbs exactly as listed (``watch`` only when a scope
    asks for it). Rules of one namespace with the same API groups and verbs are merged into one by
    joining their resources, which grants exactly the same permissions. ``resolved`` maps the name
    of a scope with a ``namespaceSelector`` to the namespaces it selects (see
    :func:`scope_namespaces`).
    """
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], set[str]] = {}
    for scope in scopes:
        groups = tuple(sorted(set(scope.api_groups)))
        verbs = tuple(sorted({str(verb) for verb in scope.verbs}))
        for namespace in scope_namespaces(scope, resolved):
            merged.setdefault((namespace, groups, verbs), set()).update(scope.resources)
    rules = [
        grant.PolicyRule(
            namespace=namespace,
            api_groups=list(groups),
            resources=sorted(resources),
            verbs=list(verbs),
        )
        for (namespace, groups, verbs), resources in merged.items()
    ]
    return sorted(rules, key=_rule_key)


def _rule_key(rule: grant.PolicyRule) -> tuple[str, list[str], list[str], list[str], list[str]]:
    return (rule.namespace, rule.api_groups, rule.resources, rule.verbs, rule.resource_names or [])


def required_permissions(
    spec: grant.AgentGrantSpec, resolved: Mapping[str, Sequence[str]]
) -> list[Permission]:
    """Every permission the grant's read scopes hand out, sorted: the grant's author must hold each
    one (the escalation check runs one SubjectAccessReview per entry)."""
    return sorted(expand(compile_rules(spec.read, resolved)))


# Permission sets --------------------------------------------------------------------------------


def expand(rules: Iterable[grant.PolicyRule]) -> frozenset[Permission]:
    """The permissions some rules grant: the cross product of each rule's fields."""
    return frozenset(
        Permission(rule.namespace, group, resource, verb, name)
        for rule in rules
        for group in rule.api_groups
        for resource in rule.resources
        for verb in rule.verbs
        for name in (rule.resource_names or [""])
    )


def _covered(permission: Permission, held: frozenset[Permission]) -> bool:
    """Whether ``held`` grants ``permission`` (a permission on all names covers each name)."""
    if permission in held:
        return True
    return bool(permission.resource_name) and (
        dataclasses.replace(permission, resource_name="") in held
    )


def is_subset(
    child_rules: Iterable[grant.PolicyRule], parent_rules: Iterable[grant.PolicyRule]
) -> list[Permission]:
    """What the child rules grant beyond the parent rules, sorted; empty means a subset."""
    parent = expand(parent_rules)
    return sorted(p for p in expand(child_rules) if not _covered(p, parent))


def intersection(
    a_rules: Iterable[grant.PolicyRule], b_rules: Iterable[grant.PolicyRule]
) -> frozenset[Permission]:
    """The permissions granted by both sets of rules."""
    a, b = expand(a_rules), expand(b_rules)
    return frozenset(p for p in a if _covered(p, b)) | frozenset(p for p in b if _covered(p, a))


def compact(permissions: Iterable[Permission]) -> list[grant.PolicyRule]:
    """Rules granting exactly these permissions, sorted; the inverse of :func:`expand`.

    Resources of one namespace, group and resource name that share the same verbs become one rule.
    """
    verbs: dict[tuple[str, str, str, str], set[str]] = collections.defaultdict(set)
    for p in permissions:
        verbs[(p.namespace, p.api_group, p.resource_name, p.resource)].add(p.verb)
    resources: dict[tuple[str, str, str, tuple[str, ...]], set[str]] = collections.defaultdict(set)
    for (namespace, group, name, resource), resource_verbs in verbs.items():
        resources[(namespace, group, name, tuple(sorted(resource_verbs)))].add(resource)
    rules = [
        grant.PolicyRule(
            namespace=namespace,
            api_groups=[group],
            resources=sorted(names),
            verbs=list(rule_verbs),
            resource_names=[name] if name else None,
        )
        for (namespace, group, name, rule_verbs), names in resources.items()
    ]
    return sorted(rules, key=_rule_key)
