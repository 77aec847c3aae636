"""Translate lower-layer errors into kopf's retry semantics, in one place."""

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


def translating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Kube errors become ``TemporaryError`` (retry soon) or ``PermanentError`` (give up).

    A 403 means the operator's own ClusterRole (its ceiling) does not allow the call: retrying
    cannot help, so it is permanent and the message says which call was refused.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except errors.Forbidden as e:
            raise kopf.PermanentError(f"the operator's ClusterRole does not allow this: {e}") from e
        except errors.Invalid as e:
            raise kopf.PermanentError(f"the apiserver refused: {e}") from e
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
