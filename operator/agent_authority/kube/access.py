"""Who may do what: SubjectAccessReviews of other users, and the operator's own identity."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from agent_authority.kube import api
from agent_authority.models import base
from agent_authority.policy import rbac

CONCURRENCY = 16


async def allowed(
    kube: api.Kube,
    user: base.UserInfo,
    *,
    verb: str,
    group: str,
    resource: str,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    extra: dict[str, list[str]] | None = None,
) -> bool:
    """Whether ``user`` may ``verb`` the resource (a SubjectAccessReview; ``namespace=""`` asks
    about every namespace at once)."""
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
    }
    spec: api.Json = {
        "user": user.username,
        "groups": list(user.groups),
        "resourceAttributes": {k: v for k, v in attributes.items() if v},
    }
    if user.uid:
        spec["uid"] = user.uid
    if extra:
        spec["extra"] = extra
    review = await api.call(kube.authz.create_subject_access_review, {"spec": spec})
    return bool(review.get("status", {}).get("allowed"))


async def missing(
    kube: api.Kube,
    user: base.UserInfo,
    permissions: Sequence[rbac.Permission],
    extra: dict[str, list[str]] | None = None,
) -> list[rbac.Permission]:
    """The permissions ``user`` does not hold (one SubjectAccessReview each, in parallel)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def check(p: rbac.Permission) -> bool:
        async with gate:
            return await allowed(
                kube,
                user,
                verb=p.verb,
                group=p.api_group,
                resource=p.base_resource,
                subresource=p.subresource,
                namespace=p.namespace,
                name=p.resource_name,
                extra=extra,
            )

    results = await asyncio.gather(*[check(p) for p in permissions])
    return [p for p, ok in zip(permissions, results, strict=True) if not ok]


async def whoami(kube: api.Kube) -> base.UserInfo:
    """The operator's own identity, as the apiserver authenticates it (SelfSubjectReview)."""
    review = await api.call(
        kube.authn.create_self_subject_review,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    info = review.get("status", {}).get("userInfo", {})
    return base.UserInfo(
        username=info.get("username", ""), uid=info.get("uid"), groups=info.get("groups", [])
    )


async def own_missing(
    kube: api.Kube, permissions: Sequence[rbac.Permission]
) -> list[rbac.Permission]:
    """The permissions the operator itself does not hold (one SelfSubjectAccessReview each, in
    parallel): asked before it creates anything that needs them."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def check(p: rbac.Permission) -> bool:
        attributes = {
            "verb": p.verb,
            "group": p.api_group,
            "resource": p.base_resource,
            "subresource": p.subresource,
            "namespace": p.namespace,
            "name": p.resource_name,
        }
        body = {"spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v}}}
        async with gate:
            review = await api.call(kube.authz.create_self_subject_access_review, body)
        return bool(review.get("status", {}).get("allowed"))

    results = await asyncio.gather(*[check(p) for p in permissions])
    return [p for p, ok in zip(permissions, results, strict=True) if not ok]
