"""``kubectl explain`` has something to say about every field, in plain words."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import crdgen


def _fields(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, sub in (node.get("properties") or {}).items():
        found += _fields(sub, f"{path}.{name}")
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        found += [(p, n) for p, n in _fields(items, f"{path}[]") if p != f"{path}[]"]
    return found


def _schema(model: Any) -> dict[str, Any]:
    crd = crdgen.custom_resource_definition(model)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("model", crdgen.RESOURCES, ids=lambda m: m.kind)
def test_every_field_has_a_description(model: Any) -> None:
    schema = _schema(model)
    fields = _fields(schema["properties"]["spec"], "spec") + _fields(
        schema["properties"]["status"], "status"
    )
    missing = [path for path, node in fields if not node.get("description")]
    assert missing == []
    assert schema.get("description"), f"{model.kind} itself has no description"


@pytest.mark.parametrize("model", crdgen.RESOURCES, ids=lambda m: m.kind)
def test_no_markup_leaks_into_descriptions(model: Any) -> None:
    schema = _schema(model)
    fields = [("", schema), *_fields(schema["properties"]["spec"], "spec")]
    fields += _fields(schema["properties"]["status"], "status")
    for path, node in fields:
        text = node.get("description", "")
        for markup in ("``", ":class:", ":func:", ":mod:", ":data:"):
            assert markup not in text, f"{path}: {text}"
        for paragraph in text.split("\n\n"):
            assert "\n" not in paragraph, f"{path}: a paragraph broken over lines: {text!r}"


def test_autonomy_says_what_each_value_means() -> None:
    schema = _schema(crdgen.RESOURCES[0])
    autonomy = schema["properties"]["spec"]["properties"]["remediations"]["items"]["properties"][
        "autonomy"
    ]["description"]
    for value in ("propose", "auto", "never"):
        assert f"{value}" in autonomy
    assert "approval" in autonomy


def test_evidence_documents_its_required_digest_and_time() -> None:
    request = next(m for m in crdgen.RESOURCES if m.kind == "RemediationRequest")
    evidence = _schema(request)["properties"]["spec"]["properties"]["evidence"]["items"]
    assert "64 lower-case hex" in evidence["properties"]["sha256"]["description"]
    assert "RFC 3339" in evidence["properties"]["observedAt"]["description"]
    required = {r["fieldPath"] for r in evidence["x-kubernetes-validations"] if "fieldPath" in r}
    assert required >= {".sha256", ".observedAt"}
    assert evidence["properties"]["sha256"]["description"].startswith("Required.")


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        pytest.param("at most ``maxTtlSeconds``", "at most maxTtlSeconds", id="literal"),
        pytest.param("see :class:`~agent_authority.models.grant.Grant`", "see Grant", id="role"),
        pytest.param("one\nparagraph\n\nanother", "one paragraph\n\nanother", id="paragraphs"),
    ],
)
def test_plain(text: str, plain: str) -> None:
    assert crdgen.plain(text) == plain


def test_remediation_request_columns_name_the_target_namespace_and_approvals() -> None:
    request = next(m for m in crdgen.RESOURCES if m.kind == "RemediationRequest")
    columns = {c.name: c.json_path for c in request.printer_columns}
    assert columns["Target NS"] == ".spec.action.target.namespace"
    assert columns["Needs"] == ".status.requiredApprovals"
    assert columns["Approved"] == '.status.conditions[?(@.type=="Approved")].status'


def test_session_columns_show_the_revocation_reason_by_default() -> None:
    sessions = next(m for m in crdgen.RESOURCES if m.kind == "IncidentSession")
    reason = next(c for c in sessions.printer_columns if c.name == "Reason")
    assert reason.priority is None


def test_spec_enums_and_required_fields_are_cel_rules_that_all_run() -> None:
    session = next(m for m in crdgen.RESOURCES if m.kind == "IncidentSession")
    spec = _schema(session)["properties"]["spec"]
    assert "required" not in spec
    severity = spec["properties"]["incident"]["properties"]["severity"]
    assert "enum" not in severity
    assert severity["maxLength"] >= crdgen.ENUM_MAX_LENGTH
    assert severity["x-kubernetes-validations"][0]["rule"] == (
        'self in ["SEV1", "SEV2", "SEV3", "SEV4"]'
    )
    rules = {r["rule"]: r for r in spec["x-kubernetes-validations"]}
    assert rules["has(self.purpose)"]["reason"] == "FieldValueRequired"
    assert rules["has(self.purpose)"]["fieldPath"] == ".purpose"
    assert spec["properties"]["purpose"]["description"].startswith("Required.")


def test_status_keeps_its_schema_enums() -> None:
    session = next(m for m in crdgen.RESOURCES if m.kind == "IncidentSession")
    assert "enum" in _schema(session)["properties"]["status"]["properties"]["phase"]


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        pytest.param("purpose", "purpose", id="plain"),
        pytest.param("namespace", "__namespace__", id="reserved-word"),
        pytest.param("a-b.c/d", "a__dash__b__dot__c__slash__d", id="symbols"),
        pytest.param("a__b", "a__underscores__b", id="double-underscore"),
    ],
)
def test_cel_name(name: str, escaped: str) -> None:
    assert crdgen.cel_name(name) == escaped
