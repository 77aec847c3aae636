"""What a grant amounts to, computed offline: read permissions, requestable actions, wording.

Owns the symbolic namespace of a selector scope (``namespaces matching env=prod``: resolving the
selector needs the cluster), :func:`permissions` and :func:`remedies` (what ``diff`` compares), and
the phrases ``risks``, ``diff`` and ``explain`` share (:func:`where`, :func:`subject_label`,
:func:`approvers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agent_authority.cli import render
from agent_authority.models import grant
from agent_authority.policy import blast, rbac

SELECTED = "namespaces matching "
"""Prefix of the symbolic namespace of a selector scope (no namespace name has a space)."""
ANY_NODE = "any node (cluster-scoped)"
"""Where node actions act: they ignore target namespaces."""
NO_PODS = frozenset(
    {grant.ActionType.CORDON_NODE, grant.ActionType.UNCORDON_NODE, grant.ActionType.SUSPEND_CRONJOB}
)
"""Actions whose blast radius is always 0 pods (see ``blast.blast_radius``)."""


def selector_text(selector: grant.LabelSelector) -> str:
    """A label selector as kubectl writes it: ``app=web,tier in (a,b),!legacy``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for req in selector.match_expressions or []:
        values = ",".join(req.values)
        parts.append(
            {
                "In": f"{req.key} in ({values})",
                "NotIn": f"{req.key} notin ({values})",
                "Exists": req.key,
                "DoesNotExist": f"!{req.key}",
            }.get(req.operator, f"{req.key} {req.operator} ({values})")
        )
    return ",".join(parts)


def scope_namespaces(scope: grant.ReadScope) -> list[str]:
    """A scope's namespaces, a selector scope's as its one symbolic namespace."""
    if scope.namespace_selector is not None and scope.namespaces is None:
        text = selector_text(scope.namespace_selector)
        return [SELECTED + text if text else "every namespace (empty namespaceSelector)"]
    return sorted(set(scope.namespaces or []))


def is_symbolic(namespace: str) -> bool:
    return " " in namespace


def read_namespaces(spec: grant.AgentGrantSpec) -> list[str]:
    found = {ns for scope in spec.read for ns in scope_namespaces(scope)}
    return sorted(found, key=lambda ns: (is_symbolic(ns), ns))


def where(namespaces: Sequence[str]) -> str:
    """``namespace shop``, ``namespaces shop and web``, ``namespaces matching env=prod``."""
    named = [ns for ns in namespaces if not is_symbolic(ns)]
    phrases = [f"{'namespace' if len(named) == 1 else 'namespaces'} {render.human_list(named)}"]
    phrases = (phrases if named else []) + [ns for ns in namespaces if is_symbolic(ns)]
    return render.human_list(phrases, empty="no namespace")


def permissions(spec: grant.AgentGrantSpec | None) -> frozenset[rbac.Permission]:
    """The read permissions of a grant, selector scopes in their symbolic namespace."""
    if spec is None:
        return frozenset()
    resolved = {scope.name: scope_namespaces(scope) for scope in spec.read}
    return rbac.expand(rbac.compile_rules(spec.read, resolved))


def subject_label(subject: grant.Subject) -> str:
    if subject.kind is grant.SubjectKind.SERVICE_ACCOUNT:
        return f"ServiceAccount {subject.namespace}/{subject.name}"
    return f"{subject.kind} {subject.name}"


@dataclasses.dataclass(frozen=True)
class Remedy:
    """What one requestable action type amounts to, defaults and narrowing applied."""

    action: grant.ActionType
    autonomy: grant.Autonomy
    namespaces: frozenset[str]
    limits: tuple[tuple[str, int | None], ...]
    require_evidence: bool
    severities: frozenset[str]
    classes: frozenset[str] | None
    """``None``: any class."""


def remedies(spec: grant.AgentGrantSpec | None) -> dict[grant.ActionType, Remedy]:
    """The grant's requestable actions (autonomy ``never`` is not requestable), first entry each."""
    if spec is None:
        return {}
    found: dict[grant.ActionType, Remedy] = {}
    readable = read_namespaces(spec)
    for entry in spec.remediations:
        if entry.autonomy is grant.Autonomy.NEVER or entry.action in found:
            continue
        node = entry.action in blast.NODE_ACTIONS
        severities = spec.incidents.severities if entry.severities is None else entry.severities
        classes = entry.classes if entry.classes is not None else spec.incidents.classes
        narrowed = [c for c in classes if not spec.incidents.classes or c in spec.incidents.classes]
        found[entry.action] = Remedy(
            action=entry.action,
            autonomy=entry.autonomy,
            namespaces=frozenset([ANY_NODE] if node else entry.namespaces or readable),
            limits=(
                ("maxReplicasDelta", entry.limits.max_replicas_delta),
                ("maxPodsAffected", entry.limits.max_pods_affected),
            ),
            require_evidence=entry.require_evidence,
            severities=frozenset(str(s) for s in severities if s in spec.incidents.severities),
            classes=frozenset(narrowed) if narrowed or entry.classes is not None else None,
        )
    return found


def approvers(count: int) -> str:
    return "1 approver" if count == 1 else f"{count} distinct approvers"
