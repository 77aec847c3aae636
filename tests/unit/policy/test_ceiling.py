"""The operator's read ceiling: the ClusterRole and the grant check agree, and it holds."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from agent_authority.models import grant
from agent_authority.policy import ceiling, rbac

ROOT = pathlib.Path(__file__).resolve().parents[3]
CLUSTER_ROLE = ROOT / "config" / "rbac" / "operator-clusterrole.yaml"
SESSION_ROLE = ROOT / "config" / "rbac" / "operator-session-namespace.yaml"


def rules(path: pathlib.Path) -> list[dict[str, Any]]:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"].endswith("Role"))
    found: list[dict[str, Any]] = doc["rules"]
    return found


def test_the_cluster_role_reads_exactly_the_ceiling() -> None:
    reads = [r for r in rules(CLUSTER_ROLE) if r["verbs"] == ["get", "list", "watch"]]
    assert len(reads) == 1
    assert reads[0]["apiGroups"] == list(ceiling.READ_GROUPS)
    assert reads[0]["resources"] == list(ceiling.READ_RESOURCES)


@pytest.mark.parametrize(
    ("what", "forbidden"),
    [
        pytest.param("wildcards", lambda r: "*" in r["apiGroups"] + r["resources"] + r["verbs"]),
        pytest.param("secrets", lambda r: "secrets" in r["resources"]),
        pytest.param("connect subresources", lambda r: any("proxy" in x for x in r["resources"])),
        pytest.param("token requests", lambda r: "serviceaccounts/token" in r["resources"]),
        pytest.param(
            "service accounts writes",
            lambda r: (
                "serviceaccounts" in r["resources"] and set(r["verbs"]) - {"get", "list", "watch"}
            ),
        ),
        pytest.param(
            "escalate or bind", lambda r: {"escalate", "bind", "impersonate"} & set(r["verbs"])
        ),
        pytest.param(
            "webhook configurations by any name except create",
            lambda r: (
                "mutatingwebhookconfigurations" in r["resources"]
                and r["verbs"] != ["create"]
                and r.get("resourceNames") != ["agentauthority.io"]
            ),
        ),
    ],
)
def test_the_cluster_role_holds_no(what: str, forbidden: Any) -> None:
    offending = [r for r in rules(CLUSTER_ROLE) if forbidden(r)]
    assert not offending, f"the ClusterRole grants {what}: {offending}"


def test_identity_writes_live_in_the_session_namespace_role() -> None:
    resources = {res for r in rules(SESSION_ROLE) for res in r["resources"]}
    assert {"serviceaccounts", "secrets", "serviceaccounts/token"} <= resources


def scope(**changes: Any) -> grant.ReadScope:
    fields: dict[str, Any] = {"name": "s", "namespaces": ["shop"], "resources": ["pods"]}
    fields.update(changes)
    return grant.ReadScope.model_validate(fields)


@pytest.mark.parametrize(
    ("changes", "refused", "says"),
    [
        pytest.param({}, [], "", id="pods-are-readable"),
        pytest.param(
            {"resources": ["pods", "secrets"]},
            ["spec.read[0].resources[1]"],
            "the operator never reads Secrets",
            id="secrets-are-outside-the-ceiling",
        ),
        pytest.param(
            {"apiGroups": ["example.com"], "resources": ["widgets"]},
            ["spec.read[0].resources[0]"],
            "API group(s) 'example.com'",
            id="an-unlisted-crd-is-outside-the-ceiling",
        ),
        pytest.param(
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"]},
            ["spec.read[0].resources[0]"],
            "outside the operator's read ceiling",
            id="rbac-reads-are-the-operators-own-not-handed-out",
        ),
        pytest.param(
            {"apiGroups": ["", "apps"], "resources": ["pods", "deployments"]},
            [],
            "",
            id="several-groups-are-fine-while-each-pair-is-in-the-ceiling",
        ),
    ],
)
def test_scope_problems(changes: dict[str, Any], refused: list[str], says: str) -> None:
    found = ceiling.scope_problems("spec.read[0]", scope(**changes))
    assert [field for field, _ in found] == refused
    assert all(says in message for _, message in found)


def test_grant_validation_reports_the_ceiling_once_per_field() -> None:
    spec = grant.AgentGrantSpec.model_validate(
        {
            "subjects": [{"kind": "Group", "name": "g"}],
            "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
            "read": [{"name": "s", "namespaces": ["shop"], "resources": ["pods/exec", "secrets"]}],
        }
    )
    problems = rbac.validate_grant(spec)
    fields = [p.field for p in problems]
    assert fields.count("spec.read[0].resources[0]") == 1  # exec: its own, specific reason
    assert "runs commands" in next(p.message for p in problems if p.field.endswith("[0]"))
    assert "never reads Secrets" in next(p.message for p in problems if p.field.endswith("[1]"))
