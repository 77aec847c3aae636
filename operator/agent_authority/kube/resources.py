"""Reading and patching our custom resources and the namespaces their scopes select."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION, grant

GRANTS = "agentgrants"
SESSIONS = "incidentsessions"
REQUESTS = "remediationrequests"
GRANT_LABEL = "agentauthority.io/grant"
PARENT_LABEL = "agentauthority.io/parent"


async def get_grant(kube: api.Kube, name: str) -> api.Json | None:
    try:
        return await api.call(kube.custom.get_cluster_custom_object, GROUP, VERSION, GRANTS, name)
    except errors.NotFound:
        return None


async def list_grants(kube: api.Kube) -> list[api.Json]:
    """Every AgentGrant (cluster-scoped), in one list call."""
    found = await api.call(kube.custom.list_cluster_custom_object, GROUP, VERSION, GRANTS)
    items: list[api.Json] = found.get("items", [])
    return items


async def get_session(kube: api.Kube, namespace: str, name: str) -> api.Json | None:
    try:
        return await api.call(
            kube.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, SESSIONS, name
        )
    except errors.NotFound:
        return None


async def list_sessions(
    kube: api.Kube, *, namespace: str | None = None, label_selector: str | None = None
) -> list[api.Json]:
    kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
    if namespace is None:
        found = await api.call(
            kube.custom.list_cluster_custom_object, GROUP, VERSION, SESSIONS, **kwargs
        )
    else:
        found = await api.call(
            kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, SESSIONS, **kwargs
        )
    items: list[api.Json] = found.get("items", [])
    return items


async def patch_session_status(
    kube: api.Kube, namespace: str, name: str, status: Mapping[str, Any]
) -> api.Json:
    return await _patch_status(kube, SESSIONS, namespace, name, status)


async def patch_session_status_at(
    kube: api.Kube, namespace: str, name: str, status: Mapping[str, Any], resource_version: str
) -> api.Json:
    """Like :func:`patch_session_status`, only if the session is still at ``resource_version``
    (else :class:`errors.Conflict`): a transition decided on what was read, not on what is now."""
    return await api.call(
        kube.custom.patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        SESSIONS,
        name,
        {"metadata": {"resourceVersion": resource_version}, "status": dict(status)},
    )


async def patch_grant_status(kube: api.Kube, name: str, status: Mapping[str, Any]) -> api.Json:
    return await api.call(
        kube.custom.patch_cluster_custom_object_status,
        GROUP,
        VERSION,
        GRANTS,
        name,
        {"status": dict(status)},
    )


def _selector(selector: grant.LabelSelector) -> str:
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for expr in selector.match_expressions or []:
        values = ",".join(expr.values)
        if expr.operator == "In":
            parts.append(f"{expr.key} in ({values})")
        elif expr.operator == "NotIn":
            parts.append(f"{expr.key} notin ({values})")
        elif expr.operator == "Exists":
            parts.append(expr.key)
        else:
            parts.append(f"!{expr.key}")
    return ",".join(parts)


async def resolve_selectors(
    kube: api.Kube, scopes: Sequence[grant.ReadScope]
) -> dict[str, list[str]]:
    """Scope name → the namespaces its ``namespaceSelector`` selects right now."""
    selected = [s for s in scopes if s.namespace_selector is not None]

    async def one(scope: grant.ReadScope) -> tuple[str, list[str]]:
        assert scope.namespace_selector is not None
        found = await api.call(
            kube.core.list_namespace, label_selector=_selector(scope.namespace_selector)
        )
        return scope.name, sorted(n["metadata"]["name"] for n in found["items"])

    return dict(await asyncio.gather(*[one(s) for s in selected]))


async def get_request(
    kube: api.Kube, namespace: str, name: str, *, group: str = GROUP
) -> api.Json | None:
    """A RemediationRequest (``group``: the benchmark's floor reads its copy of the CRD)."""
    try:
        return await api.call(
            kube.custom.get_namespaced_custom_object, group, VERSION, namespace, REQUESTS, name
        )
    except errors.NotFound:
        return None


async def list_requests(kube: api.Kube, namespace: str) -> list[api.Json]:
    found = await api.call(
        kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, REQUESTS
    )
    items: list[api.Json] = found.get("items", [])
    return items


async def patch_request_status(
    kube: api.Kube, namespace: str, name: str, status: Mapping[str, Any]
) -> api.Json:
    return await _patch_status(kube, REQUESTS, namespace, name, status)


async def _patch_status(
    kube: api.Kube, plural: str, namespace: str, name: str, status: Mapping[str, Any]
) -> api.Json:
    """A merge patch of ``status`` through the status subresource."""
    return await api.call(
        kube.custom.patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        {"status": dict(status)},
    )


async def patch_request_status_at(
    kube: api.Kube,
    namespace: str,
    name: str,
    resource_version: str,
    status: Mapping[str, Any],
    *,
    group: str = GROUP,
) -> api.Json:
    """A merge patch of a request's ``status``, applied only while the object is still at
    ``resource_version`` (``errors.Conflict`` otherwise): a transition decided on a stale read
    never lands. ``group`` as for :func:`get_request`."""
    return await api.call(
        kube.custom.patch_namespaced_custom_object_status,
        group,
        VERSION,
        namespace,
        REQUESTS,
        name,
        {"metadata": {"resourceVersion": resource_version}, "status": dict(status)},
    )
