"""The generated ValidatingAdmissionPolicies cover every field the models have, and bind safely."""

from __future__ import annotations

import pathlib

import yaml

from agent_authority.models import admission, render, request, session

ROOT = pathlib.Path(__file__).resolve().parents[2]


def by_name(name: str) -> dict[str, object]:
    return next(p for p in admission.policies() if p["metadata"]["name"] == name)


def expressions(name: str, *, with_variables: bool = False) -> str:
    """A policy's validation expressions (and its variables', when asked)."""
    spec = by_name(name)["spec"]
    assert isinstance(spec, dict)
    variables = spec.get("variables", []) if with_variables else []
    return " ".join(v["expression"] for v in [*variables, *spec["validations"]])


def test_the_shipped_file_is_what_the_models_generate() -> None:
    shipped = ROOT / "config" / "policies" / admission.FILE_NAME
    assert shipped.read_text() == render.policies_yaml(), "run hack/gen-crds"


def test_every_request_status_field_but_approvals_is_guarded() -> None:
    text = expressions("agentauthority.io-request-status-by-the-operator")
    for name, info in request.RemediationRequestStatus.model_fields.items():
        wire = info.alias or name
        assert (f"object.status.{wire} " in text) is (wire != "approvals"), wire


def test_every_session_spec_field_but_ended_is_immutable() -> None:
    text = expressions("agentauthority.io-session-spec-only-ends", with_variables=True)
    for name, info in session.IncidentSessionSpec.model_fields.items():
        wire = info.alias or name
        assert (f"has(object.spec.{wire})" in text) is True, wire
        # A refusal names the field that changed (e.g. spec.purpose), not only "spec".
        assert (f"'spec.{wire}'" in text) is (wire != "ended"), wire
    assert "oldObject.spec.ended" in text


def test_bindings_fail_closed_except_where_other_products_would_break() -> None:
    docs = admission.documents()
    bindings = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert len(bindings) == len(admission.policies())
    for binding in bindings:
        ref = binding["spec"].get("paramRef")
        if ref is None:
            continue
        expected = (
            "Allow" if binding["metadata"]["name"] in admission.MISSING_PARAMS_ALLOWED else "Deny"
        )
        assert ref["parameterNotFoundAction"] == expected
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in admission.policies())


def test_every_validation_has_a_static_fallback_message() -> None:
    for policy in yaml.safe_load_all(render.policies_yaml()):
        for rule in (policy.get("spec") or {}).get("validations", []):
            assert rule["message"], rule
            assert "'" not in rule["message"][:1]
