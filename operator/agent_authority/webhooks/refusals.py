"""Count admission refusals by kind and reason (``agent_authority_admission_refusals_total``).

:func:`counted` wraps a webhook handler: an ``AdmissionError`` it raises is counted and passed on
unchanged. The reason is the refusal's leading CamelCase code (``SeverityNotAllowed: …``) when it
has one, else what its HTTP code means (``Invalid`` for 422, ``Forbidden`` for 403), so the label
stays a small, fixed set.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import kopf

from agent_authority import metrics

P = ParamSpec("P")
T = TypeVar("T")
_CODE = re.compile(r"^([A-Z][a-z]+(?:[A-Z][a-z]+)+): ")
_BY_STATUS = {400: "BadRequest", 403: "Forbidden", 422: "Invalid"}


def reason_of(message: str, code: int | None) -> str:
    """The bounded reason label of a refusal."""
    match = _CODE.match(message)
    if match:
        return match.group(1)
    return _BY_STATUS.get(code or 0, "Refused")


def counted(kind: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a kopf admission handler for objects of ``kind``."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await fn(*args, **kwargs)
            except kopf.AdmissionError as e:
                reason = reason_of(str(e), getattr(e, "code", None))
                metrics.ADMISSION_REFUSALS.labels(kind, reason).inc()
                raise

        return wrapper

    return decorate
