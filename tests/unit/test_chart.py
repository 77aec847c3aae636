"""The Helm chart: in sync with its sources, lint-clean, and rendering what docs/install.md says.

Rendered with the pinned Helm (built once into the cache like the control plane).
"""

from __future__ import annotations

import base64
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from agent_authority.localcluster import assets, nodeassets

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agent-authority"
KUBE = "--kube-version=1.36.3"


@pytest.fixture(scope="module")
def helm() -> str:
    try:
        return str(nodeassets.helm())
    except assets.AssetError as e:
        pytest.fail(f"Helm could not be built: {e}", pytrace=False)


def _render(helm: str, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [helm, "template", "aa", str(CHART), "-n", "aa-system", KUBE, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.fixture(scope="module")
def rendered(helm: str) -> list[dict[str, Any]]:
    return _render(helm)


def test_chart_is_in_sync_with_crds_config_and_webhooks() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "sync-chart"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="defaults"),
        pytest.param(["-f", str(CHART / "ci" / "kind-values.yaml")], id="kind-path"),
        pytest.param(["--set", "webhooks.certificates=cert-manager"], id="cert-manager"),
    ],
)
def test_helm_lint_is_clean(helm: str, values: list[str]) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", KUBE, str(CHART), *values],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        pytest.param("replicaCount=0", "/replicaCount", id="no-replicas"),
        pytest.param(
            "webhooks.timeoutSeconds=31", "/webhooks/timeoutSeconds", id="timeout-over-30"
        ),
        pytest.param("operator.tokenSeconds=60", "/operator/tokenSeconds", id="token-under-600"),
        pytest.param(
            "webhooks.certificates=self", "/webhooks/certificates", id="unknown-cert-mode"
        ),
        pytest.param("typo=1", "typo", id="unknown-value"),
    ],
)
def test_schema_refuses_bad_values_naming_the_field(helm: str, setting: str, field: str) -> None:
    result = subprocess.run(
        [helm, "template", "aa", str(CHART), KUBE, "--set", setting],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert field in result.stderr


def test_two_replicas_with_leader_election_probes_and_hardening(
    rendered: list[dict[str, Any]],
) -> None:
    (deployment,) = _kinds(rendered, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = spec["containers"]
    args = container["args"]
    assert "--peering=aa-agent-authority" in args
    assert "--no-manage-webhooks" in args
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["resources"]["requests"]
    (pdb,) = _kinds(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    (peering,) = _kinds(rendered, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "aa-agent-authority"


def test_webhooks_point_at_the_service_and_trust_the_generated_ca(
    rendered: list[dict[str, Any]],
) -> None:
    (secret,) = _kinds(rendered, "Secret")
    ca = secret["data"]["ca.crt"]
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")
    services = {s["metadata"]["name"] for s in _kinds(rendered, "Service")}
    configs = _kinds(rendered, "ValidatingWebhookConfiguration") + _kinds(
        rendered, "MutatingWebhookConfiguration"
    )
    assert len(configs) == 2
    webhooks = [w for c in configs for w in c["webhooks"]]
    assert webhooks
    for webhook in webhooks:
        client_config = webhook["clientConfig"]
        assert "url" not in client_config
        assert client_config["service"]["name"] in services
        assert client_config["service"]["namespace"] == "aa-system"
        assert client_config["caBundle"] == ca
        assert webhook["timeoutSeconds"] == 10
        assert webhook["failurePolicy"] == "Fail"


def test_the_ceiling_is_bound_only_to_the_chart_service_account(
    rendered: list[dict[str, Any]],
) -> None:
    ceiling = yaml.safe_load((ROOT / "config" / "rbac" / "operator-clusterrole.yaml").read_text())
    roles = {r["metadata"]["name"]: r for r in _kinds(rendered, "ClusterRole")}
    assert roles[ceiling["metadata"]["name"]]["rules"] == ceiling["rules"]
    for binding in _kinds(rendered, "ClusterRoleBinding") + _kinds(rendered, "RoleBinding"):
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", binding["metadata"]["name"]
            assert subject["namespace"] == "aa-system"


def _aggregated(rendered: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for role in _kinds(rendered, "ClusterRole"):
        labels = role["metadata"].get("labels", {})
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels):
            yield role


def test_aggregated_roles_per_kind_never_carry_approve(rendered: list[dict[str, Any]]) -> None:
    roles = list(_aggregated(rendered))
    assert len(roles) == 9  # three kinds x admin/editor/viewer
    targets = set()
    for role in roles:
        for rule in role["rules"]:
            assert "approve" not in rule["verbs"]
            assert "*" not in rule["verbs"]
            assert not any(r.endswith("/status") for r in rule["resources"])
        targets |= {k for k in role["metadata"]["labels"] if "aggregate-to-" in k}
    assert {t.rsplit("-", 1)[-1] for t in targets} == {"admin", "edit", "view"}


def test_uninstall_hook_and_helm_test_are_hooks(rendered: list[dict[str, Any]]) -> None:
    hooks = {
        (d["kind"], d["metadata"]["annotations"]["helm.sh/hook"])
        for d in rendered
        if "helm.sh/hook" in (d["metadata"].get("annotations") or {})
    }
    assert ("Job", "pre-delete") in hooks
    assert ("Pod", "test") in hooks


def test_crds_ship_in_the_chart_crds_folder() -> None:
    shipped = {p.name for p in (CHART / "crds").glob("*.yaml")}
    assert {p.name for p in (ROOT / "crds").glob("*.yaml")} <= shipped
    assert "kopf-peering.yaml" in shipped
