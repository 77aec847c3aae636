"""The kube layer's exceptions, translated from the client's ``ApiException`` and transport errors::

    KubeError                 anything the apiserver refused or could not answer
    ├── NotFound              404
    ├── Conflict              409 (already exists, or a resourceVersion conflict)
    ├── Forbidden             403 (the operator's own RBAC ceiling)
    ├── Invalid               422 / 400 (schema, CEL, admission refusals)
    └── Unavailable           429, 5xx, no status, and transport failures (connection refused or
                              reset, timeouts, TLS handshakes cut short): worth retrying soon

Controllers translate these into ``kopf.TemporaryError``/``kopf.PermanentError`` in one place
(:mod:`agent_authority.controllers.handling`).
"""

from __future__ import annotations

import json

import aiohttp
import urllib3.exceptions
from kubernetes.client import exceptions

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # MaxRetryError, ProtocolError, timeouts, NewConnectionError
    aiohttp.ClientError,  # the async transport: connector errors, disconnects, bad payloads
    ConnectionError,
    TimeoutError,
)
"""What the client raises when the apiserver cannot be reached or does not answer in time."""


class KubeError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Forbidden(KubeError):
    pass


class Invalid(KubeError):
    pass


class Unavailable(KubeError):
    pass


def message_of(e: exceptions.ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(e.body or e.reason)


def translate(e: exceptions.ApiException) -> KubeError:
    status = int(e.status or 0)
    message = message_of(e)
    kind: type[KubeError] = {
        404: NotFound,
        409: Conflict,
        403: Forbidden,
        422: Invalid,
        400: Invalid,
    }.get(status, Unavailable)
    return kind(message, status)


def translate_transport(e: BaseException) -> Unavailable:
    """A transport failure (see :data:`TRANSPORT_ERRORS`) as a retryable :class:`Unavailable`."""
    reason = getattr(e, "reason", None) or e
    return Unavailable(f"the apiserver could not be reached: {type(e).__name__}: {reason}")
