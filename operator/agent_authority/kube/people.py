"""Acting for a signed-in person: verify their bearer token, then call the apiserver as them.

The approval page never uses its own authority on a person's behalf. It verifies a pasted token
with a TokenReview (its only privileged call: ``create tokenreviews``), then reads and writes with
a client that carries *that token and nothing else* (no client certificate, no other header), so
RBAC, the admission webhooks and the audit log see the person, exactly as with ``kubectl``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kubernetes import client

from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION, base

REQUESTS = "remediationrequests"
SESSIONS = "incidentsessions"
PERSON_POOL = 4


class NotAuthenticated(errors.KubeError):
    """The apiserver did not accept the token (invalid, expired, or of an unknown issuer)."""


async def authenticate(kube: api.Kube, token: str) -> tuple[base.UserInfo, dict[str, list[str]]]:
    """Who ``token`` belongs to (a TokenReview by ``kube``); :class:`NotAuthenticated` if nobody."""
    review = await api.call(
        kube.authn.create_token_review,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    status = review.get("status") or {}
    if not status.get("authenticated"):
        raise NotAuthenticated(str(status.get("error") or "the token was not accepted"), 401)
    user = status.get("user") or {}
    info = base.UserInfo(
        username=str(user.get("username") or ""),
        uid=str(user["uid"]) if user.get("uid") else None,
        groups=[str(g) for g in user.get("groups") or []],
    )
    extra = {str(k): [str(v) for v in vs] for k, vs in dict(user.get("extra") or {}).items()}
    return info, extra


def as_person(kube: api.Kube, token: str) -> api.Kube:
    """A client for the same apiserver as ``kube`` that authenticates with ``token`` only."""
    mine = kube.client.configuration
    theirs = client.Configuration()
    theirs.host = mine.host
    theirs.ssl_ca_cert = mine.ssl_ca_cert
    theirs.verify_ssl = mine.verify_ssl
    theirs.tls_server_name = getattr(mine, "tls_server_name", None)
    theirs.api_key = {"authorization": f"Bearer {token}"}
    theirs.connection_pool_maxsize = PERSON_POOL
    person = api.Kube(client.ApiClient(theirs))
    person.client.configuration.connection_pool_maxsize = PERSON_POOL
    return person


def close(kube: api.Kube) -> None:
    """Release a person's client (their connections) when they sign out or their login ends."""
    kube.client.close()  # type: ignore[no-untyped-call]
    with contextlib.suppress(RuntimeError):  # no running loop: nothing async was opened
        task = asyncio.get_running_loop().create_task(kube.close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()
"""Closes in flight (a task must be referenced until it is done)."""


async def may(
    person: api.Kube,
    *,
    verb: str,
    group: str,
    resource: str,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> bool:
    """Whether the person may ``verb`` the resource (a SelfSubjectAccessReview as them)."""
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
    }
    review = await api.call(
        person.authz.create_self_subject_access_review,
        {"spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v}}},
    )
    return bool((review.get("status") or {}).get("allowed"))


async def list_requests(person: api.Kube, namespace: str | None = None) -> list[api.Json]:
    """The RemediationRequests the person may list (every namespace, or one)."""
    if namespace is None:
        found = await api.call(person.custom.list_cluster_custom_object, GROUP, VERSION, REQUESTS)
    else:
        found = await api.call(
            person.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, REQUESTS
        )
    items: list[api.Json] = found.get("items", [])
    return items


async def get(person: api.Kube, plural: str, namespace: str, name: str) -> api.Json | None:
    """One of our namespaced objects as the person sees it (None when missing)."""
    try:
        return await api.call(
            person.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
        )
    except errors.NotFound:
        return None


async def events_about(person: api.Kube, namespace: str, uid: str) -> list[api.Json]:
    """Events about the object ``uid``, oldest first (empty when the person may not list them)."""
    try:
        found = await api.call(
            person.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.uid={uid}",
        )
    except errors.Forbidden:
        return []
    items: list[api.Json] = found.get("items", [])
    return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


async def append_approval(
    person: api.Kube, namespace: str, name: str, decision: str, reason: str, attempts: int = 5
) -> api.Json:
    """Append the person's decision to ``status.approvals`` through the status subresource.

    The admission webhook stamps who they are and applies its rules; its refusal comes back as
    :class:`errors.Forbidden` (or :class:`errors.Invalid`) with the webhook's message. A
    resourceVersion conflict (someone else decided meanwhile) re-reads and appends again.
    """
    for _ in range(attempts):
        current = await get(person, REQUESTS, namespace, name)
        if current is None:
            raise errors.NotFound(f"remediationrequest {namespace}/{name} not found", 404)
        given: list[Any] = list((current.get("status") or {}).get("approvals") or [])
        given.append({"decision": decision, "reason": reason})
        try:
            return await api.call(
                person.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                REQUESTS,
                name,
                {
                    "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                    "status": {"approvals": given},
                },
            )
        except errors.Conflict:
            continue
    raise errors.Conflict(f"remediationrequest {namespace}/{name} kept changing; try again", 409)
