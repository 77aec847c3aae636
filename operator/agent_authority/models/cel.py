"""CEL validation rules attached to model fields, emitted as ``x-kubernetes-validations``.

The apiserver evaluates these itself, so bad input is refused at admission time with a message
that names the field, even when the operator is not running.

How rules are structured, and why: the apiserver skips *every* CEL rule of an object once the
OpenAPI schema found a "blocking" error in it (a missing required field, a value outside an
``enum``, a wrong type, a string or list over its maximum), and then adds a cause without a field,
``<nil>: Invalid value: null: some validation rules were not checked because the object was
invalid``. So the checks people trip over most — a misspelt enum value, a forgotten field — are
written as CEL rules in ``spec`` (:func:`one_of`, :func:`required`; ``crdgen`` turns the models'
enums and required fields into them), which are all checked together, each naming its field.
Strings and lists keep ``maxLength``/``maxItems`` in the schema: the apiserver needs those bounds
to estimate what the rules cost (a CRD over its CEL cost budget is refused), and an over-long
value is rare. Rules that read a field another rule requires guard it with ``has()`` so that a
missing field is reported once, as missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

KEY = "x-kubernetes-validations"
FIELD_VALUE_REQUIRED = "FieldValueRequired"


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


def one_of(values: Sequence[str]) -> dict[str, Any]:
    """A rule refusing a string outside ``values``, naming the value and what is allowed."""
    listed = ", ".join(values)
    return {
        "rule": f"self in {json.dumps(list(values))}",
        "messageExpression": f'"\'" + self + "\' is not supported (allowed: {listed})"',
    }


def required(field: str, escaped: str | None = None) -> dict[str, Any]:
    """A rule on an object refusing it without ``field`` (reported on the field itself)."""
    return rule(
        f"has(self.{escaped or field})",
        f"{field} is required",
        field_path=f".{field}",
        reason=FIELD_VALUE_REQUIRED,
    )
