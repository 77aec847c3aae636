"""One place that owns the Kubernetes client: typed API groups, async calls, error translation.

Call sites name an API method of the official client (``api.call(kube.core.read_namespaced_secret,
name, namespace)``): the client builds the request (paths, query, content type, credentials) and
:func:`call` sends it natively on the event loop through :mod:`agent_authority.kube.transport`
(aiohttp, kopf's own HTTP stack): no worker thread, and cancelling the awaiting task (a cancelled
kopf handler, a webhook whose caller went away) closes the request's connection. The response comes
back as plain JSON (no model deserialization, which is both faster and free of the client's
Optional-everywhere models); ``ApiException``-style statuses and transport failures (connection
refused, timeouts) are translated into :mod:`agent_authority.kube.errors`. Every call has a timeout
(:data:`REQUEST_TIMEOUT` unless the caller passes ``_request_timeout``), so an apiserver that stops
answering costs a bounded wait. :func:`sync` is the blocking form for the CLI. Clients that are not
built here (the unit tests' fakes) are called in a worker thread as before.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client import exceptions

from agent_authority.kube import clients, errors, transport

T = TypeVar("T")
POOL_SIZE = 256
"""Connections to the apiserver (HTTP/1.1: one request in flight each). A session's activation
makes up to four calls at once and 50 are activated at once in bench/sessions.py: with 64, calls
waited for a connection (an SAR the apiserver answered in 6 ms took 80-190 ms in the operator's
trace), and 1,000 sessions became Active at 11.0/s; with 256, 13.2/s (single runs, issue 8)."""
REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for every call that does not pass its own ``_request_timeout``."""
Json = dict[str, Any]


class Kube:
    """The API groups the operator uses, over one ApiClient."""

    def __init__(self, api: client.ApiClient) -> None:
        if not isinstance(api, transport.PreparingApiClient):
            # The same configuration (host, TLS, credentials), requests sent by the transport.
            api = transport.PreparingApiClient(api.configuration, POOL_SIZE)
        self.client = api
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.authz = client.AuthorizationV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.authn = client.AuthenticationV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None) -> Kube:
        api = clients.api_client(kubeconfig)
        api.configuration.connection_pool_maxsize = POOL_SIZE
        # The pool size is read when the REST client is built: rebuild it with the new size.
        return cls(transport.PreparingApiClient(api.configuration, POOL_SIZE))

    async def close(self) -> None:
        """Close this event loop's connections (the sync client's pool is closed with it)."""
        await self.client.transport.close()


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


def unvalidated(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An API method of the official client without its argument validation.

    The generated methods are wrapped in pydantic's ``validate_call``, which turns a body given as
    a dict into the client's model and back (about half of the 160 us the client spends building
    one request, in a process that makes some twenty calls per session). The body of every call
    here is already plain JSON, and the apiserver validates what it receives; the method itself
    (path, query, headers) is unchanged. Anything else is returned as it is."""
    func = getattr(fn, "__func__", None)
    inner = getattr(func, "__wrapped__", None)
    owner = getattr(fn, "__self__", None)
    if inner is None or owner is None:
        return fn
    return functools.partial(inner, owner)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Call ``fn`` on the event loop (see the module docstring); the response body as JSON."""
    owner = getattr(getattr(fn, "__self__", None), "api_client", None)
    if not isinstance(owner, transport.PreparingApiClient):
        return await asyncio.to_thread(functools.partial(sync, fn, *args, **kwargs))
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        with transport.prepared():
            unvalidated(fn)(*args, _preload_content=False, **kwargs)
    except transport.Prepared as p:
        request = p.request
    except exceptions.ApiException as e:
        raise errors.translate(e) from e
    else:  # pragma: no cover - every API method ends in call_api
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} made no request")
    try:
        response = await owner.transport.send(request, REQUEST_TIMEOUT)
    except errors.TRANSPORT_ERRORS as e:
        raise errors.translate_transport(e) from e
    if not 200 <= response.status <= 299:
        raise errors.translate(transport.api_exception(response))
    body: Json = json.loads(response.data) if response.data else {}
    return body


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
