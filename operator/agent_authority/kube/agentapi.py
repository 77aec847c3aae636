"""Calls an agent makes with its own credentials, for the MCP server (``agent_authority.mcp``).

Everything here runs as whoever the given ``ApiClient`` authenticates: the agent's base identity
(opening, ending and reading its sessions, reading its session token Secret) or a session token
(reads, logs, events, RemediationRequests). Nothing is done with the operator's identity, so the
MCP server adds no authority: each call is one the agent could make with kubectl. Every call has
a timeout; errors are :mod:`agent_authority.kube.errors`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from typing import Any

from kubernetes import client
from kubernetes.client import exceptions

from agent_authority.kube import api, errors
from agent_authority.models import GROUP, VERSION, base

TIMEOUT = 15.0
SESSIONS = "incidentsessions"
REQUESTS = "remediationrequests"
KNOWN_VERSIONS = {
    "": "v1",
    "apps": "v1",
    "batch": "v1",
    "events.k8s.io": "v1",
    "policy": "v1",
    "autoscaling": "v2",
    "networking.k8s.io": "v1",
    "discovery.k8s.io": "v1",
    GROUP: VERSION,
}


def with_token(template: client.ApiClient, token: str) -> client.ApiClient:
    """A client for the same apiserver (host, CA) as ``template`` that sends only ``token``."""
    source = template.configuration
    configuration = client.Configuration()
    configuration.host = source.host
    configuration.ssl_ca_cert = source.ssl_ca_cert
    configuration.verify_ssl = source.verify_ssl
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def _raw(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> bytes:
    try:
        method, url, headers, payload, post = api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(
            method, url, headers, payload, post, _request_timeout=TIMEOUT
        )
        data: bytes = response.read()  # type: ignore[no-untyped-call]
    except exceptions.ApiException as e:
        raise errors.translate(e) from e
    except Exception as e:  # urllib3 connection and timeout errors
        raise errors.Unavailable(f"the apiserver could not be reached: {e}") from e
    if response.status >= 400:
        failure = exceptions.ApiException(status=response.status, reason=response.reason)
        failure.body = data.decode(errors="replace")
        raise errors.translate(failure)
    return data


async def request(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> api.Json:
    """One REST call in a worker thread; the JSON body."""
    data = await asyncio.to_thread(
        functools.partial(
            _raw, api_client, method, path, query=query, body=body, content_type=content_type
        )
    )
    parsed: api.Json = json.loads(data) if data else {}
    return parsed


def path(api_group: str, resource: str, namespace: str | None, name: str | None = None) -> str:
    """The REST path of a resource (collection, or one object when ``name`` is given)."""
    version = KNOWN_VERSIONS.get(api_group, "v1")
    root = "/api/v1" if api_group == "" else f"/apis/{api_group}/{version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    tail = f"/{name}" if name else ""
    return f"{root}{where}/{resource}{tail}"


async def get(
    api_client: client.ApiClient, api_group: str, resource: str, namespace: str, name: str
) -> api.Json:
    return await request(api_client, "GET", path(api_group, resource, namespace, name))


async def list_objects(
    api_client: client.ApiClient,
    api_group: str,
    resource: str,
    namespace: str,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int = 100,
) -> api.Json:
    query: list[tuple[str, Any]] = [("limit", limit)]
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return await request(api_client, "GET", path(api_group, resource, namespace), query=query)


async def pod_logs(
    api_client: client.ApiClient,
    namespace: str,
    pod: str,
    *,
    container: str | None,
    tail_lines: int,
    limit_bytes: int,
    since_seconds: int | None,
) -> bytes:
    """A pod's log, bounded by the apiserver itself (``tailLines``, ``limitBytes``)."""
    query: list[tuple[str, Any]] = [("tailLines", tail_lines), ("limitBytes", limit_bytes)]
    if container:
        query.append(("container", container))
    if since_seconds:
        query.append(("sinceSeconds", since_seconds))
    data = await asyncio.to_thread(
        functools.partial(
            _raw, api_client, "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query
        )
    )
    return data[:limit_bytes]


async def create_session(api_client: client.ApiClient, namespace: str, body: api.Json) -> api.Json:
    return await request(api_client, "POST", path(GROUP, SESSIONS, namespace), body=body)


async def get_session(api_client: client.ApiClient, namespace: str, name: str) -> api.Json:
    return await get(api_client, GROUP, SESSIONS, namespace, name)


async def end_session(api_client: client.ApiClient, namespace: str, name: str) -> api.Json:
    return await request(
        api_client,
        "PATCH",
        path(GROUP, SESSIONS, namespace, name),
        body={"spec": {"ended": True}},
        content_type="application/merge-patch+json",
    )


async def session_token(api_client: client.ApiClient, namespace: str, secret: str) -> str:
    """The session token, read by the requester (its RBAC ``get`` on that one Secret)."""
    found = await get(api_client, "", "secrets", namespace, secret)
    encoded = (found.get("data") or {}).get("token")
    if not encoded:
        raise errors.NotFound(f"Secret {namespace}/{secret} holds no token yet", 404)
    return base64.b64decode(encoded).decode()


async def create_request(api_client: client.ApiClient, namespace: str, body: api.Json) -> api.Json:
    return await request(api_client, "POST", path(GROUP, REQUESTS, namespace), body=body)


async def get_request(api_client: client.ApiClient, namespace: str, name: str) -> api.Json:
    return await get(api_client, GROUP, REQUESTS, namespace, name)


async def token_review(api_client: client.ApiClient, token: str) -> base.UserInfo | None:
    """Who ``token`` authenticates as (TokenReview with ``api_client``'s identity), or None."""
    review = await request(
        api_client,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        },
    )
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    if not user.get("username"):
        return None
    return base.UserInfo(
        username=str(user["username"]),
        uid=user.get("uid"),
        groups=[str(g) for g in user.get("groups") or []],
    )
