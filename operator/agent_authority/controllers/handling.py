"""Translate lower-layer errors into kopf's retry semantics, in one place.

Transient failures (the apiserver unreachable, timing out, throttling with 429, answering 5xx)
become ``kopf.TemporaryError`` with a short, capped, growing delay (:func:`retry_delay`): an
outage costs about a second after the apiserver is back, not kopf's default 60 s backoff.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import kopf

from agent_authority.kube import api, errors, events

P = ParamSpec("P")
T = TypeVar("T")
RETRY_DELAY = 2.0
"""Delay before retrying after a conflict or another non-transient, retryable error."""
TRANSIENT_FIRST_DELAY = 0.5
TRANSIENT_MAX_DELAY = 2.0
"""Transient errors retry after 0.5, 1, 2, 2, ... seconds (``retry`` 0, 1, 2, 3, ...)."""


FORBIDDEN_RETRIES = 30
"""A 403 is retried this many times (a restarted apiserver refuses all until RBAC syncs)."""


def _retry(kwargs: dict[str, Any]) -> int:
    retry = kwargs.get("retry", 0)
    return retry if isinstance(retry, int) else 0


def retry_delay(retry: int) -> float:
    """Seconds to wait before attempt ``retry + 1`` after a transient error: doubling, capped."""
    return min(TRANSIENT_FIRST_DELAY * 2.0 ** min(max(retry, 0), 16), TRANSIENT_MAX_DELAY)


def translating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Kube errors become ``TemporaryError`` (retry soon) or ``PermanentError`` (give up).

    A 403 usually means the operator's own ClusterRole (its ceiling) does not allow the call,
    but a kube-apiserver that has just started answers 403 to everyone until its RBAC informers
    have synced (a few seconds): giving up then would leave a session unrevoked for good. So a
    403 is retried like a transient error for :data:`FORBIDDEN_RETRIES` attempts (about a
    minute), then it is permanent and the message says which call was refused. Transient errors
    retry after :func:`retry_delay` of kopf's ``retry`` count (daemons too: kopf restarts a
    daemon after a ``TemporaryError``'s delay).
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except errors.Forbidden as e:
            retry = _retry(kwargs)
            message = f"the operator's ClusterRole does not allow this: {e}"
            if retry < FORBIDDEN_RETRIES:
                raise kopf.TemporaryError(message, delay=retry_delay(retry)) from e
            raise kopf.PermanentError(message) from e
        except errors.Invalid as e:
            raise kopf.PermanentError(f"the apiserver refused: {e}") from e
        except errors.Unavailable as e:
            raise kopf.TemporaryError(f"transient: {e}", delay=retry_delay(_retry(kwargs))) from e
        except errors.KubeError as e:
            raise kopf.TemporaryError(str(e), delay=RETRY_DELAY) from e

    return wrapper


_pending: set[asyncio.Task[None]] = set()


def event(body: Any, *, reason: str, message: str, warning: bool = False) -> None:
    """Post a Kubernetes Event about ``body`` in the background (best effort, never blocks)."""
    task = asyncio.get_running_loop().create_task(
        events.post(api.default(), dict(body), reason=reason, message=message, warning=warning)
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def plain(body: Any) -> dict[str, Any]:
    """A plain, mutable deep copy of a kopf body (kopf bodies are read-only views)."""
    out: dict[str, Any] = copy.deepcopy({key: body[key] for key in body})
    out.setdefault("spec", {})
    out.setdefault("status", {})
    return out
