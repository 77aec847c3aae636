"""Which MCP tools a session's effective rules allow, and whether one call is inside them.

The MCP server (``agent_authority.mcp``) offers an agent only the tools its session can use and
checks every call here before it reaches the apiserver, so an agent is never steered into a
forbidden request (which would count as a deviation and, by default, revoke the session). The
rules are the session's ``status.effectiveRules``, as the operator compiled them; matching is
RBAC's: verb, API group, resource (``pods/log`` for logs), namespace, and resource names when a
rule lists them. No I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agent_authority.models import grant
from agent_authority.policy import wording

__all__ = [
    "ALWAYS",
    "NO_SESSION",
    "Readable",
    "allows",
    "offered",
    "readable",
    "refusal",
]

NO_SESSION = ("open_session",)
"""Tools offered before a session is open: only opening one."""
ALWAYS = (
    "open_session",
    "session_status",
    "can_i",
    "propose_remediation",
    "remediation_status",
    "wait_for_remediation",
    "open_sub_session",
    "end_session",
)
"""Tools every Active session has (its RBAC always covers RemediationRequests)."""
EVENT_RESOURCES = (("", "events"), ("events.k8s.io", "events"))


@dataclasses.dataclass(frozen=True)
class Readable:
    """One (API group, resource) a session can read, where and how."""

    api_group: str
    resource: str
    namespaces: tuple[str, ...]
    verbs: tuple[str, ...]


def _rule_allows(
    rule: grant.PolicyRule,
    verb: str,
    api_group: str,
    resource: str,
    namespace: str,
    name: str | None,
) -> bool:
    if rule.namespace != namespace or verb not in rule.verbs:
        return False
    if api_group not in rule.api_groups or resource not in rule.resources:
        return False
    if rule.resource_names:
        return name is not None and name in rule.resource_names
    return True


def allows(
    rules: Sequence[grant.PolicyRule],
    *,
    verb: str,
    api_group: str,
    resource: str,
    namespace: str,
    name: str | None = None,
) -> bool:
    """Whether the rules allow ``verb`` on ``resource`` (``pods/log`` style) in ``namespace``."""
    return any(_rule_allows(r, verb, api_group, resource, namespace, name) for r in rules)


def readable(rules: Sequence[grant.PolicyRule]) -> list[Readable]:
    """What the rules let a session read, grouped by (API group, resource), sorted."""
    where: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for rule in rules:
        for group in rule.api_groups:
            for resource in rule.resources:
                namespaces, verbs = where.setdefault((group, resource), (set(), set()))
                namespaces.add(rule.namespace)
                verbs.update(rule.verbs)
    return [
        Readable(group, resource, tuple(sorted(ns)), tuple(sorted(verbs)))
        for (group, resource), (ns, verbs) in sorted(where.items())
    ]


def _any(rules: Sequence[grant.PolicyRule], verb: str, resource: str | None = None) -> bool:
    return any(verb in r.verbs and (resource is None or resource in r.resources) for r in rules)


def offered(rules: Sequence[grant.PolicyRule] | None) -> list[str]:
    """The tools to offer: ``None`` rules means no Active session (only ``open_session``)."""
    if rules is None:
        return list(NO_SESSION)
    tools = list(ALWAYS)
    if _any(rules, "list"):
        tools.append("list_resources")
    if _any(rules, "get"):
        tools.append("get_resource")
    if _any(rules, "get", "pods/log"):
        tools.append("pod_logs")
    if any(
        "list" in r.verbs and g in r.api_groups and res in r.resources
        for r in rules
        for g, res in EVENT_RESOURCES
    ):
        tools.append("events")
    return tools


def refusal(
    rules: Sequence[grant.PolicyRule],
    *,
    verb: str,
    api_group: str,
    resource: str,
    namespace: str,
    name: str | None = None,
) -> str | None:
    """``None`` when allowed; else why not, and what the session may do with that resource."""
    if allows(
        rules, verb=verb, api_group=api_group, resource=resource, namespace=namespace, name=name
    ):
        return None
    kind = f"{resource}.{api_group}" if api_group else resource
    same = [
        wording.describe_rule(r)
        for r in rules
        if api_group in r.api_groups and resource in r.resources
    ]
    allowed = wording.listing(same) if same else "nothing on this resource"
    return (
        f"{verb} {kind} in namespace '{namespace}' is outside this session's rules, so it was "
        f"not sent to the cluster (it would be denied and count as a deviation; allowed: "
        f"{allowed})"
    )
