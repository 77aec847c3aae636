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
        pytest.param(["--set", "approvals.enabled=true"], id="approval-page"),
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


OPERATOR = "system:serviceaccount:aa-system:aa-agent-authority"


def test_session_namespace_roles_are_rendered_per_namespace_for_the_chart_account(
    helm: str,
) -> None:
    docs = _render(helm, "--set", "sessionNamespaces={agents,oncall}")
    template = [
        d
        for d in yaml.safe_load_all(
            (ROOT / "config" / "rbac" / "operator-session-namespace.yaml").read_text()
        )
        if d
    ]
    (source_role,) = [d for d in template if d["kind"] == "Role"]
    roles = [
        r
        for r in _kinds(docs, "Role")
        if r["metadata"]["name"] == "agent-authority-operator-sessions"
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["agents", "oncall"]
    for role in roles:
        assert role["rules"] == source_role["rules"]
    bindings = [
        b
        for b in _kinds(docs, "RoleBinding")
        if b["metadata"]["name"] == source_role["metadata"]["name"]
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["agents", "oncall"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "aa-agent-authority", "namespace": "aa-system"}
        ]
    assert "SESSION_NAMESPACE" not in yaml.safe_dump_all(docs)


def test_scope_namespace_roles_write_only_rbac_and_skip_session_namespaces(helm: str) -> None:
    docs = _render(
        helm, "--set", "sessionNamespaces={agents}", "--set", "scopeNamespaces={shop,agents,db}"
    )
    template = [
        d
        for d in yaml.safe_load_all(
            (ROOT / "config" / "rbac" / "operator-scope-namespace.yaml").read_text()
        )
        if d
    ]
    (source_role,) = [d for d in template if d["kind"] == "Role"]
    name = source_role["metadata"]["name"]
    roles = [r for r in _kinds(docs, "Role") if r["metadata"]["name"] == name]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["db", "shop"]
    for role in roles:
        assert role["rules"] == source_role["rules"]
        assert {r for rule in role["rules"] for r in rule["resources"]} == {"roles", "rolebindings"}
    bindings = [b for b in _kinds(docs, "RoleBinding") if b["metadata"]["name"] == name]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["db", "shop"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "aa-agent-authority", "namespace": "aa-system"}
        ]
    assert "SCOPE_NAMESPACE" not in yaml.safe_dump_all(docs)


def test_the_ceiling_writes_no_rbac_objects() -> None:
    ceiling = yaml.safe_load((ROOT / "config" / "rbac" / "operator-clusterrole.yaml").read_text())
    for rule in ceiling["rules"]:
        if {"roles", "rolebindings", "clusterroles", "clusterrolebindings"} & set(
            rule["resources"]
        ):
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_no_session_namespaces_renders_no_placeholder_role(rendered: list[dict[str, Any]]) -> None:
    assert not [r for r in _kinds(rendered, "Role") if r["metadata"]["name"].endswith("-sessions")]
    assert "SESSION_NAMESPACE" not in yaml.safe_dump_all(rendered)


@pytest.mark.parametrize(
    "namespace", [pytest.param("Agents", id="uppercase"), pytest.param("a_b", id="underscore")]
)
def test_schema_refuses_a_session_namespace_that_is_no_namespace_name(
    helm: str, namespace: str
) -> None:
    result = subprocess.run(
        [helm, "template", "aa", str(CHART), KUBE, "--set", f"sessionNamespaces={{{namespace}}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "sessionNamespaces" in result.stderr


def test_admission_parameter_names_the_chart_account_where_the_bindings_look(
    rendered: list[dict[str, Any]],
) -> None:
    (params,) = [
        c
        for c in _kinds(rendered, "ConfigMap")
        if c["metadata"]["name"] == "agent-authority-admission"
    ]
    assert params["metadata"]["namespace"] == "aa-system"
    assert params["data"] == {"operatorUsername": OPERATOR}
    bindings = _kinds(rendered, "ValidatingAdmissionPolicyBinding")
    with_params = [b for b in bindings if "paramRef" in b["spec"]]
    assert with_params
    for binding in with_params:
        assert binding["spec"]["paramRef"]["name"] == "agent-authority-admission"
        assert binding["spec"]["paramRef"]["namespace"] == "aa-system"
    policies = {p["metadata"]["name"] for p in _kinds(rendered, "ValidatingAdmissionPolicy")}
    assert {b["spec"]["policyName"] for b in bindings} == policies


def test_webhook_configurations_carry_the_name_the_ceiling_allows(
    rendered: list[dict[str, Any]],
) -> None:
    ceiling = yaml.safe_load((ROOT / "config" / "rbac" / "operator-clusterrole.yaml").read_text())
    (allowed,) = [
        r["resourceNames"]
        for r in ceiling["rules"]
        if "validatingwebhookconfigurations" in r["resources"] and "resourceNames" in r
    ]
    configs = _kinds(rendered, "ValidatingWebhookConfiguration") + _kinds(
        rendered, "MutatingWebhookConfiguration"
    )
    assert {c["metadata"]["name"] for c in configs} == set(allowed)


def test_only_the_guards_that_let_the_operator_through_skip_it(
    rendered: list[dict[str, Any]],
) -> None:
    configs = _kinds(rendered, "ValidatingWebhookConfiguration") + _kinds(
        rendered, "MutatingWebhookConfiguration"
    )
    skipping = {
        w["name"]: w["matchConditions"]
        for c in configs
        for w in c["webhooks"]
        if "matchConditions" in w
    }
    condition = [
        {"name": "not-the-operator", "expression": f'request.userInfo.username != "{OPERATOR}"'}
    ]
    assert skipping == {
        f"{name}.agentauthority.io": condition
        for name in ("guard-session", "guard-session-status", "guard-approvals", "stamp-approver")
    }


def test_uninstall_hook_runs_as_the_operator_account(rendered: list[dict[str, Any]]) -> None:
    (job,) = _kinds(rendered, "Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "aa-agent-authority"
    assert {a["metadata"]["name"] for a in _kinds(rendered, "ServiceAccount")} == {
        "aa-agent-authority"
    }


@pytest.mark.parametrize(
    ("values", "wanted", "unwanted"),
    [
        pytest.param([], ["--audit-port=0"], ["--audit-addr=0.0.0.0"], id="receiver-off"),
        pytest.param(
            ["--set", "auditWebhook.enabled=true", "--set", "auditWebhook.clientCASecret=ca"],
            [
                "--audit-port=9444",
                "--audit-addr=0.0.0.0",
                "--audit-client-ca=/etc/agent-authority/audit-client/ca.crt",
            ],
            ["--audit-port=0"],
            id="receiver-with-client-ca",
        ),
    ],
)
def test_audit_receiver_only_with_a_client_ca_and_the_trail_on_a_volume(
    helm: str, values: list[str], wanted: list[str], unwanted: list[str]
) -> None:
    (deployment,) = _kinds(_render(helm, *values), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert set(wanted) <= set(args)
    assert not set(unwanted) & set(args)
    assert "--audit-trail=/var/lib/agent-authority/audit-trail.jsonl" in args
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/var/lib/agent-authority"]]


def test_incidentsession_admins_and_editors_may_end_sessions(
    rendered: list[dict[str, Any]],
) -> None:
    ending = {
        r["metadata"]["name"]
        for r in _aggregated(rendered)
        for rule in r["rules"]
        if "end" in rule["verbs"] and rule["resources"] == ["incidentsessions"]
    }
    assert ending == {
        "agent-authority-incidentsessions-admin",
        "agent-authority-incidentsessions-editor",
    }


# -- the session gateway and the approval page ---------------------------------------------------


def _operator_args(docs: list[dict[str, Any]]) -> list[str]:
    (deployment,) = _kinds(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def _service(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (service,) = [s for s in _kinds(docs, "Service") if s["metadata"]["name"] == name]
    return service


def _certificate_names(docs: list[dict[str, Any]]) -> set[str]:
    from cryptography import x509

    (secret,) = _kinds(docs, "Secret")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName))


def test_sessions_default_to_the_gateway_on_the_webhook_service(
    rendered: list[dict[str, Any]],
) -> None:
    args = _operator_args(rendered)
    url = "https://aa-agent-authority-webhooks.aa-system.svc:8443"
    assert "--session-mode=gateway" in args
    assert {"--gateway-port=8443", "--gateway-addr=0.0.0.0", f"--gateway-url={url}"} <= set(args)
    service = _service(rendered, "aa-agent-authority-webhooks")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["gateway"]["port"] == 8443
    assert ports["gateway"]["targetPort"] == "gateway"
    # Agents verify the gateway with the operator's CA: its certificate carries the URL's name.
    assert "aa-agent-authority-webhooks.aa-system.svc" in _certificate_names(rendered)


@pytest.mark.parametrize(
    ("values", "wanted", "unwanted"),
    [
        pytest.param(
            ["--set", "gateway.sessionMode=direct"],
            ["--session-mode=direct", "--gateway-port=8443"],
            ["--session-mode=gateway"],
            id="direct-default-gateway-still-served",
        ),
        pytest.param(
            ["--set", "gateway.enabled=false", "--set", "gateway.sessionMode=direct"],
            ["--session-mode=direct", "--gateway-port=0"],
            ["--gateway-port=8443"],
            id="direct-only",
        ),
        pytest.param(
            ["--set", "gateway.url=https://gw.example.internal"],
            ["--gateway-url=https://gw.example.internal"],
            [],
            id="url-given",
        ),
    ],
)
def test_direct_mode_is_selectable(
    helm: str, values: list[str], wanted: list[str], unwanted: list[str]
) -> None:
    args = _operator_args(_render(helm, *values))
    assert set(wanted) <= set(args)
    assert not set(unwanted) & set(args)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param(
            ["--set", "gateway.enabled=false"], "gateway.sessionMode", id="gateway-mode-no-gateway"
        ),
        pytest.param(
            ["--set", "gateway.sessionMode=proxy"], "/gateway/sessionMode", id="unknown-mode"
        ),
        pytest.param(
            ["--set", "gateway.url=http://gw"], "/gateway/url", id="gateway-url-not-https"
        ),
        pytest.param(
            ["--set", "approvals.enabled=true", "--set", "approvals.tls=secret"],
            "approvals.tlsSecret",
            id="approvals-secret-unnamed",
        ),
        pytest.param(["--set", "approvals.tls=plain"], "/approvals/tls", id="approvals-tls-mode"),
    ],
)
def test_gateway_and_approval_page_values_are_refused_naming_the_field(
    helm: str, values: list[str], field: str
) -> None:
    result = subprocess.run(
        [helm, "template", "aa", str(CHART), KUBE, *values],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert field in result.stderr


def test_approval_page_is_off_by_default(rendered: list[dict[str, Any]]) -> None:
    assert not any(a.startswith("--approvals-") for a in _operator_args(rendered))
    assert "aa-agent-authority-approvals" not in {
        s["metadata"]["name"] for s in _kinds(rendered, "Service")
    }


@pytest.mark.parametrize(
    ("values", "wanted", "secret"),
    [
        pytest.param(
            [],
            [
                "--approvals-cert=/etc/agent-authority/approvals-tls/tls.crt",
                "--approvals-key=/etc/agent-authority/approvals-tls/tls.key",
            ],
            "aa-agent-authority-webhook-tls",
            id="https-operator-certificate",
        ),
        pytest.param(
            ["--set", "approvals.tls=secret", "--set", "approvals.tlsSecret=pages-tls"],
            ["--approvals-cert=/etc/agent-authority/approvals-tls/tls.crt"],
            "pages-tls",
            id="https-own-secret",
        ),
        pytest.param(
            ["--set", "approvals.tls=none"], ["--approvals-insecure-http"], None, id="behind-proxy"
        ),
    ],
)
def test_approval_page_enabled_has_a_sticky_service_and_tls(
    helm: str, values: list[str], wanted: list[str], secret: str | None
) -> None:
    docs = _render(helm, "--set", "approvals.enabled=true", *values)
    args = _operator_args(docs)
    assert {"--approvals-port=8444", "--approvals-addr=0.0.0.0", *wanted} <= set(args)
    service = _service(docs, "aa-agent-authority-approvals")["spec"]
    assert service["sessionAffinity"] == "ClientIP"
    assert service["ports"] == [{"name": "approvals", "port": 443, "targetPort": "approvals"}]
    (deployment,) = _kinds(docs, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    if secret is None:
        assert "approvals-tls" not in volumes
        assert not any(a.startswith("--approvals-cert") for a in args)
    else:
        assert volumes["approvals-tls"]["secret"]["secretName"] == secret
    assert "aa-agent-authority-approvals.aa-system.svc" in _certificate_names(docs)


def test_a_fixed_webhook_address_is_in_the_service_and_the_certificate(helm: str) -> None:
    """Clients without cluster DNS (an apiserver's audit webhook, agents on a node) use the IP."""
    from cryptography import x509

    docs = _render(helm, "--set", "webhooks.clusterIP=10.0.0.10")
    assert _service(docs, "aa-agent-authority-webhooks")["spec"]["clusterIP"] == "10.0.0.10"
    (secret,) = _kinds(docs, "Secret")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.10"]
    assert "clusterIP" not in _service(_render(helm), "aa-agent-authority-webhooks")["spec"]
