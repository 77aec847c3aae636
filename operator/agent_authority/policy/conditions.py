"""Kubernetes-style status conditions: set one, keeping ``lastTransitionTime`` when unchanged."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any


def set_condition(
    conditions: Sequence[dict[str, Any]],
    *,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` (wire form) with condition ``type_`` set.

    ``lastTransitionTime`` changes only when the status changes, as the API conventions require.
    """
    value = status if isinstance(status, str) else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != value
    condition: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": (
            now.isoformat().replace("+00:00", "Z")
            if changed or previous is None
            else previous["lastTransitionTime"]
        ),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [c for c in conditions if c.get("type") != type_] + [condition]


def is_true(conditions: Sequence[dict[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])
