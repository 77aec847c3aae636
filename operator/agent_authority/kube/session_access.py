"""A session's access: its Roles and RoleBindings, one per namespace its rules reach.

The session's ServiceAccount is bound to one Role per namespace its compiled rules reach; the
requester is bound to a Role that may ``get`` the session's Secret by ``resourceNames`` only.
What a session token may do of its own in its own namespace — ``create`` RemediationRequests, and
``get``, by name, of its IncidentSession and the requests naming it — is the session's own Role
(:func:`ensure_own_reads`), kept up to date as requests appear. It never lists or watches
requests, so it sees nothing of other sessions'.

So a session whose rules read other namespaces only has three Roles and three RoleBindings (its
namespace's access Role exists only when its rules reach that namespace). Every Role and
RoleBinding the operator writes costs the apiserver an escalation check that lists every
RoleBinding of the namespace (the operator holds neither ``escalate`` nor ``bind``), and every
request in a namespace is authorized by scanning its RoleBindings: in the sessions' namespace,
the fewer per session, the better (issue 8: a profile of the apiserver while 1,000 sessions were
activated spent about a quarter of its CPU there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from agent_authority.kube import api, session_refs
from agent_authority.models import GROUP, base, grant

RBAC_GROUP = "rbac.authorization.k8s.io"


def _role(
    ref: session_refs.SessionRef, namespace: str, rules: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": session_refs.object_meta(ref, ref.base_name, namespace, "access"),
        "rules": list(rules),
    }


def _binding(
    ref: session_refs.SessionRef,
    name: str,
    namespace: str,
    role: str,
    subjects: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "metadata": session_refs.object_meta(ref, name, namespace, "access"),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
        "subjects": subjects,
    }


def rules_by_namespace(rules: Iterable[grant.PolicyRule]) -> dict[str, list[dict[str, Any]]]:
    """Group compiled rules into RBAC ``rules`` lists per namespace."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        entry: dict[str, Any] = {
            "apiGroups": list(rule.api_groups),
            "resources": list(rule.resources),
            "verbs": list(rule.verbs),
        }
        if rule.resource_names:
            entry["resourceNames"] = list(rule.resource_names)
        out.setdefault(rule.namespace, []).append(entry)
    return out


def agent_rules() -> list[dict[str, Any]]:
    """What every session token may do in its own namespace: ask for remediations (reading them
    back is :func:`own_read_rules`, by name). Part of the own Role (:func:`own_role`)."""
    return [{"apiGroups": [GROUP], "resources": ["remediationrequests"], "verbs": ["create"]}]


def own_read_rules(ref: session_refs.SessionRef, requests: Iterable[str]) -> list[dict[str, Any]]:
    """``get`` on the session's own IncidentSession and on its own requests, by name only (an
    empty ``resourceNames`` would mean every name, so no requests means no such rule)."""
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [GROUP],
            "resources": ["incidentsessions"],
            "verbs": ["get"],
            "resourceNames": [ref.name],
        }
    ]
    names = sorted(set(requests))
    if names:
        rules.append(
            {
                "apiGroups": [GROUP],
                "resources": ["remediationrequests"],
                "verbs": ["get"],
                "resourceNames": names,
            }
        )
    return rules


def _own(ref: session_refs.SessionRef) -> str:
    return f"{ref.base_name}-own"


def own_name(ref: session_refs.SessionRef) -> str:
    """Name of the session's own Role and RoleBinding."""
    return _own(ref)


async def ensure_own_reads(
    kube: api.Kube, ref: session_refs.SessionRef, requests: Iterable[str]
) -> None:
    """Create or replace the session's own Role (and its binding): ask for remediations, read
    what is its own."""
    await apply_role(kube, ref.namespace, own_role(ref, requests))
    await apply_binding(kube, ref.namespace, own_binding(ref))


def own_role(ref: session_refs.SessionRef, requests: Iterable[str]) -> dict[str, Any]:
    return {
        "metadata": session_refs.object_meta(ref, _own(ref), ref.namespace, "own"),
        "rules": agent_rules() + own_read_rules(ref, requests),
    }


def own_binding(ref: session_refs.SessionRef) -> dict[str, Any]:
    name = _own(ref)
    subject = [{"kind": "ServiceAccount", "name": ref.service_account, "namespace": ref.namespace}]
    return _binding(ref, name, ref.namespace, name, subject)


def requester_subject(user: base.UserInfo) -> dict[str, Any]:
    prefix = "system:serviceaccount:"
    if user.username.startswith(prefix):
        namespace, _, name = user.username[len(prefix) :].partition(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"kind": "User", "apiGroup": RBAC_GROUP, "name": user.username}


async def apply_role(kube: api.Kube, namespace: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    created = await api.create_or_get(kube.rbac.create_namespaced_role, namespace, body)
    if created is None:
        await api.call(kube.rbac.replace_namespaced_role, name, namespace, body)


async def apply_binding(kube: api.Kube, namespace: str, body: dict[str, Any]) -> None:
    await api.create_or_get(kube.rbac.create_namespaced_role_binding, namespace, body)


async def ensure_access(
    kube: api.Kube,
    ref: session_refs.SessionRef,
    rules: Sequence[grant.PolicyRule],
    requester: base.UserInfo,
    *,
    requests: Iterable[str] | None = None,
    prune: bool = True,
) -> None:
    """Make the session's Roles/RoleBindings exactly ``rules``, and, given the names of its
    ``requests``, its own Role too.

    Narrowing replaces Roles in place and deletes the RoleBindings of namespaces that dropped out.
    The requester gets ``get`` on the session's Secret only, by ``resourceNames``. The own Role is
    written before anything is pruned: a session made by an operator that kept the agent's rights
    in its namespace's access Role gets them in its own Role first.
    """
    namespaces = await ensure_roles(kube, ref, rules)
    await ensure_bindings(kube, ref, namespaces, requester)
    if requests is not None:
        await ensure_own_reads(kube, ref, requests)
    if prune:  # a brand-new session has nothing to prune
        await _prune(kube, ref, keep=set(namespaces))


async def ensure_roles(
    kube: api.Kube, ref: session_refs.SessionRef, rules: Sequence[grant.PolicyRule]
) -> list[str]:
    """Create or replace the session's Roles (one per namespace its rules reach, and the
    requester's); the namespaces that have one. Bindings come after: binding a Role needs the
    Role to exist. The own Role is :func:`ensure_own_reads`'s."""
    by_ns = rules_by_namespace(rules)
    reader = {
        "metadata": session_refs.object_meta(ref, _reader(ref), ref.namespace, "requester"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": [ref.secret],
            }
        ],
    }
    await asyncio.gather(
        *[apply_role(kube, ns, _role(ref, ns, ns_rules)) for ns, ns_rules in by_ns.items()],
        apply_role(kube, ref.namespace, reader),
    )
    return list(by_ns)


OnBound = Callable[[str, str], Awaitable[None]]
"""Called with (namespace, name) of each RoleBinding right after it is written."""


async def ensure_bindings(
    kube: api.Kube,
    ref: session_refs.SessionRef,
    namespaces: Sequence[str],
    requester: base.UserInfo,
    *,
    on_bound: OnBound | None = None,
) -> None:
    """Bind the session's ServiceAccount to its Roles, and the requester to its Secret reader;
    ``on_bound`` is awaited after each binding is written (readiness checks start there)."""
    sa_subject = [
        {"kind": "ServiceAccount", "name": ref.service_account, "namespace": ref.namespace}
    ]
    reader = _reader(ref)

    async def bind(namespace: str, body: dict[str, Any]) -> None:
        await apply_binding(kube, namespace, body)
        if on_bound is not None:
            await on_bound(namespace, body["metadata"]["name"])

    await asyncio.gather(
        *[
            bind(ns, _binding(ref, ref.base_name, ns, ref.base_name, sa_subject))
            for ns in namespaces
        ],
        bind(
            ref.namespace,
            _binding(ref, reader, ref.namespace, reader, [requester_subject(requester)]),
        ),
    )


def reader_name(ref: session_refs.SessionRef) -> str:
    """Name of the Role and RoleBinding letting the requester read the session's Secret."""
    return _reader(ref)


def _reader(ref: session_refs.SessionRef) -> str:
    return f"{ref.base_name}-requester"


async def _prune(kube: api.Kube, ref: session_refs.SessionRef, keep: set[str]) -> None:
    """Delete access RoleBindings (then Roles) in namespaces no longer in the session's rules."""
    selector = f"{session_refs.SESSION_UID}={ref.uid},{session_refs.COMPONENT}=access"
    found = await api.call(kube.rbac.list_role_binding_for_all_namespaces, label_selector=selector)
    namespaces = {b["metadata"]["namespace"] for b in found["items"]}
    stale = sorted(namespaces - keep)
    await asyncio.gather(
        *[
            api.ignore_missing(kube.rbac.delete_namespaced_role_binding, ref.base_name, ns)
            for ns in stale
        ]
    )
    await asyncio.gather(
        *[api.ignore_missing(kube.rbac.delete_namespaced_role, ref.base_name, ns) for ns in stale]
    )
