"""The CRDs in crds/ are exactly what the models generate, and the schema is structural."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from agent_authority.models import crdgen, render

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", crdgen.RESOURCES, ids=lambda m: m.kind)
def test_crd_file_matches_the_models(model: Any) -> None:
    path = ROOT / "crds" / crdgen.file_name(model)
    assert path.exists(), f"{path} is missing: run hack/gen-crds"
    assert path.read_text() == render.crd_yaml(model), f"{path} drifted: run hack/gen-crds"


def _walk(node: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$ref", "anyOf", "allOf", "oneOf", "title", "$defs"}:
                found.append((path, key))
            if key == "type" and value == "null":
                found.append((path, "type: null"))
            if key == "properties":
                for name, sub in value.items():
                    found += _walk(sub, f"{path}.{name}")
            elif key != "x-kubernetes-validations":
                found += _walk(value, path)
    elif isinstance(node, list):
        for item in node:
            found += _walk(item, path)
    return found


@pytest.mark.parametrize("model", crdgen.RESOURCES, ids=lambda m: m.kind)
def test_schema_is_structural(model: Any) -> None:
    schema = crdgen.openapi_schema(model)
    assert _walk(schema) == []


def test_every_cel_rule_has_a_message() -> None:
    for model in crdgen.RESOURCES:
        text = render.crd_yaml(model)
        for crd in yaml.safe_load_all(text):
            rules = _rules(crd)
            assert rules, f"{model.kind} has no CEL rules"
            assert all(r.get("message") or r.get("messageExpression") for r in rules)


def _rules(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out += node.get("x-kubernetes-validations", [])
        for value in node.values():
            out += _rules(value)
    elif isinstance(node, list):
        for item in node:
            out += _rules(item)
    return out
