"""Generate CustomResourceDefinitions from the models (pure: dicts in, dicts out).

The pydantic JSON schema is turned into a *structural* OpenAPI v3 schema as the apiserver wants it:
``$ref``s inlined, titles dropped, ``Optional[X]`` rendered as an optional ``X`` (no ``null``),
``additionalProperties: false`` removed (structural schemas prune unknown fields; strict field
validation refuses them), CEL rules kept as ``x-kubernetes-validations``. In ``spec``, enums and
required fields become CEL rules too (:mod:`cel` says why). Descriptions (from the
models' docstrings) are made plain for ``kubectl explain``: reST literals and roles lose their
markup and the lines of a paragraph are joined.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pydantic

from agent_authority.models import GROUP, VERSION, base, cel, grant, request, session

RESOURCES: tuple[type[base.ResourceMeta], ...] = (
    grant.AgentGrant,
    session.IncidentSession,
    request.RemediationRequest,
)

_DROP = frozenset({"title", "$defs"})
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")


def plain(description: str) -> str:
    """A docstring as ``kubectl explain`` shows it well: no reST markup, one line a paragraph."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], description)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p for p in paragraphs if p)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **siblings}, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        if len(branches) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                del rest["default"]
            return _inline({**branches[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "description" and isinstance(value, str):
            out[key] = plain(value)
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _inline(value, defs)
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


ENUM_MAX_LENGTH = 63
_CEL_RESERVED = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)


def cel_name(name: str) -> str:
    """A property name as CEL reads it on ``self`` (reserved words and symbols escaped)."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    for char, word in (("_", "underscores"), (".", "dot"), ("-", "dash"), ("/", "slash")):
        name = name.replace("__" if char == "_" else char, f"__{word}__")
    return name


def _add_rules(node: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    if rules:
        node[cel.KEY] = [*rules, *node.get(cel.KEY, [])]


def checked_by_cel(node: Any) -> Any:
    """``node`` with its enums and required fields as CEL rules, all the way down (for ``spec``).

    An enum gets a ``maxLength`` (:data:`ENUM_MAX_LENGTH`, longer than any value, so a wrong
    value is reported as not allowed rather than too long) so the rule's cost stays bounded, and its
    allowed values in the description; a required field says so in its description.
    """
    if isinstance(node, list):
        return [checked_by_cel(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: checked_by_cel(v) for k, v in node.items() if k not in ("properties", "items")}
    if "properties" in node:
        out["properties"] = {k: checked_by_cel(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = checked_by_cel(node["items"])
    rules: list[dict[str, Any]] = []
    values = out.pop("enum", None)
    if values is not None:
        words = [str(v) for v in values]
        out.setdefault("maxLength", max(ENUM_MAX_LENGTH, *(len(w) for w in words)))
        rules.append(cel.one_of(words))
        listed = ", ".join(words)
        if not all(w in out.get("description", "") for w in words):
            out["description"] = f"{out.get('description', '')} Allowed: {listed}.".strip()
    for field in out.pop("required", []):
        rules.append(cel.required(field, cel_name(field)))
        prop = out["properties"][field]
        prop["description"] = f"Required. {prop.get('description', '')}".strip()
    _add_rules(out, rules)
    return out


def openapi_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The structural schema of a model's ``spec`` and ``status``, as the CRD's root schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    props = _inline(raw["properties"], defs)
    root: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": checked_by_cel(props["spec"]),
            "status": props["status"],
        },
        "required": ["spec"],
    }
    if raw.get("description"):
        root["description"] = plain(raw["description"])
    return root


def custom_resource_definition(model: type[base.ResourceMeta]) -> dict[str, Any]:
    """The full CustomResourceDefinition object for one top-level model."""
    assert issubclass(model, pydantic.BaseModel)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{model.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": model.kind,
                "listKind": f"{model.kind}List",
                "plural": model.plural,
                "singular": model.singular,
                "shortNames": list(model.short_names),
                "categories": list(model.categories),
            },
            "scope": "Namespaced" if model.namespaced else "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.to_api() for c in model.printer_columns],
                    "schema": {"openAPIV3Schema": openapi_schema(model)},
                }
            ],
        },
    }


def file_name(model: type[base.ResourceMeta]) -> str:
    """Where the CRD of ``model`` lives under ``crds/``."""
    return f"{GROUP}_{model.plural}.yaml"
