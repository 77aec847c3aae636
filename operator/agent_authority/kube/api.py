"""One place that owns the Kubernetes client: typed API groups, async calls, error translation.

The official client is synchronous; :func:`call` runs a call in a worker thread, returns the
response as plain JSON (``_preload_content=False``: no model deserialization, which is both faster
and free of the client's Optional-everywhere models) and translates ``ApiException`` and transport
failures (connection refused, timeouts) into :mod:`agent_authority.kube.errors`. Every call has a
timeout (:data:`REQUEST_TIMEOUT` unless the caller passes ``_request_timeout``), so an apiserver
that stops answering costs a bounded wait, never a hung worker. One shared ``ApiClient`` with a
pool sized for concurrency.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client import exceptions

from agent_authority.kube import clients, errors

T = TypeVar("T")
POOL_SIZE = 64
REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for every call that does not pass its own ``_request_timeout``."""
Json = dict[str, Any]


class Kube:
    """The API groups the operator uses, over one ApiClient."""

    def __init__(self, api: client.ApiClient) -> None:
        api.configuration.connection_pool_maxsize = POOL_SIZE
        self.client = api
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.authz = client.AuthorizationV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.authn = client.AuthenticationV1Api(api)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None) -> Kube:
        api = clients.api_client(kubeconfig)
        api.configuration.connection_pool_maxsize = POOL_SIZE
        # The pool size is read when the REST client is built: rebuild it with the new size.
        return cls(client.ApiClient(api.configuration))


_default: Kube | None = None


def default() -> Kube:
    """The process-wide client (built on first use from the environment)."""
    global _default
    if _default is None:
        _default = Kube.from_kubeconfig()
    return _default


def set_default(kube: Kube | None) -> None:
    global _default
    _default = kube


def sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Call ``fn``; the response body as JSON; client errors translated."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        response = fn(*args, _preload_content=False, **kwargs)
    except exceptions.ApiException as e:
        raise errors.translate(e) from e
    except errors.TRANSPORT_ERRORS as e:
        raise errors.translate_transport(e) from e
    data = response.data
    body: Json = json.loads(data) if data else {}
    return body


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """:func:`sync` in a worker thread."""
    return await asyncio.to_thread(functools.partial(sync, fn, *args, **kwargs))


async def ignore_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json | None:
    """Like :func:`call`, but ``None`` when the object is already gone (idempotent deletes)."""
    try:
        return await call(fn, *args, **kwargs)
    except errors.NotFound:
        return None


async def create_or_get(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json | None:
    """Like :func:`call` for a create; ``None`` when the object already exists."""
    try:
        return await call(fn, *args, **kwargs)
    except errors.Conflict:
        return None
