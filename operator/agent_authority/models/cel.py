"""CEL validation rules attached to model fields, emitted as ``x-kubernetes-validations``.

The apiserver evaluates these itself, so bad input is refused at admission time with a message
that names the field, even when the operator is not running.
"""

from __future__ import annotations

from typing import Any

KEY = "x-kubernetes-validations"


def rule(
    expression: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry."""
    entry: dict[str, Any] = {"rule": expression, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def rules(*entries: dict[str, Any]) -> dict[str, Any]:
    """A ``json_schema_extra`` mapping carrying the given rules."""
    return {KEY: list(entries)}


def immutable(what: str) -> dict[str, Any]:
    """``json_schema_extra`` that makes a field immutable once set."""
    return rules(rule("self == oldSelf", f"{what} is immutable"))
