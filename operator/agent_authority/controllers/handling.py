"""Translate lower-layer errors into kopf's retry semantics, in one place."""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import kopf

from agent_authority.kube import errors

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


def event(body: Any, *, reason: str, message: str, warning: bool = False) -> None:
    """Post a Kubernetes Event about ``body`` (asynchronously, through kopf's poster)."""
    (kopf.warn if warning else kopf.info)(body, reason=reason, message=message[:1024])


def plain(body: Any) -> dict[str, Any]:
    """A plain, mutable deep copy of a kopf body (kopf bodies are read-only views)."""
    out: dict[str, Any] = copy.deepcopy({key: body[key] for key in body})
    out.setdefault("spec", {})
    out.setdefault("status", {})
    return out
