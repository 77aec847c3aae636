"""Who may do what: SubjectAccessReviews of other users, and the operator's own identity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from agent_authority.kube import api
from agent_authority.models import base
from agent_authority.policy import rbac

CONCURRENCY = 16
OWN_ALLOWED_SECONDS = 30.0
"""How long a permission the operator was seen to hold is not asked again. Only positive answers
are kept, and the check is a fail-fast courtesy: the apiserver's RBAC still refuses whatever the
operator lost meanwhile, so a stale entry costs a clear refusal, never access."""
_own_allowed: dict[tuple[int, rbac.Permission], float] = {}
_own_asking: dict[tuple[int, int, rbac.Permission], asyncio.Task[bool]] = {}
"""Reviews of the operator's own permissions under way (event loop, client, permission): sessions
activated at the same moment share one answer instead of each asking (50 at once asked 200)."""


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


def _forget(key: tuple[int, int, rbac.Permission], task: asyncio.Task[bool]) -> None:
    """A shared review is done: the next caller asks anew (its error is each waiter's, and is
    marked seen here in case every waiter was cancelled)."""
    _own_asking.pop(key, None)
    if not task.cancelled():
        task.exception()


async def own_missing(
    kube: api.Kube, permissions: Sequence[rbac.Permission]
) -> list[rbac.Permission]:
    """The permissions the operator itself does not hold (one SelfSubjectAccessReview each, in
    parallel, shared with any caller asking the same at the same time): asked before it creates
    anything that needs them."""
    gate = asyncio.Semaphore(CONCURRENCY)
    now = time.monotonic()

    async def check(p: rbac.Permission) -> bool:
        if _own_allowed.get((id(kube), p), 0.0) > now:
            return True
        key = (id(asyncio.get_running_loop()), id(kube), p)
        asking = _own_asking.get(key)
        if asking is None:  # the first to ask; the others wait for its answer
            asking = asyncio.ensure_future(ask(p))
            _own_asking[key] = asking
            asking.add_done_callback(lambda task: _forget(key, task))
        # Shielded: a caller cancelled while waiting does not cancel the others' answer.
        return await asyncio.shield(asking)

    async def ask(p: rbac.Permission) -> bool:
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
        ok = bool(review.get("status", {}).get("allowed"))
        if ok:
            _own_allowed[(id(kube), p)] = time.monotonic() + OWN_ALLOWED_SECONDS
        else:
            _own_allowed.pop((id(kube), p), None)
        return ok

    # Permissions allowed a moment ago are answered here, without a task each: every new
    # session asks a dozen or more, almost always all known (a gather of them cost a task per
    # permission, about 4% of the operator's event loop while 50 sessions were activated).
    unknown = [p for p in permissions if _own_allowed.get((id(kube), p), 0.0) <= now]
    if not unknown:
        return []
    results = await asyncio.gather(*[check(p) for p in unknown])
    return [p for p, ok in zip(unknown, results, strict=True) if not ok]
