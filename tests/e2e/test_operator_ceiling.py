"""The operator's own credential is a real ceiling, not cluster-admin in disguise.

Each test acts with the operator's identity (the local operator user bound to
config/rbac/operator-clusterrole.yaml, plus its Role in the session namespaces) and tries what an
attacker holding that credential would: every attempt is refused with 403.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def operator_api(local_cluster: cluster.LocalCluster, operator: OperatorProcess) -> Any:
    return agents.as_user(local_cluster, dev.OPERATOR_USER)


def _forbidden(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(client.ApiException) as refused:
        call(*args, **kwargs)
    assert refused.value.status == 403, agents.refusal(refused.value)
    return agents.refusal(refused.value)


def test_no_token_for_a_cluster_admin_service_account_in_kube_system(
    admin: Any, operator_api: Any
) -> None:
    name = agents.unique("admin-sa")
    client.CoreV1Api(admin).create_namespaced_service_account(
        "kube-system", {"metadata": {"name": name}}
    )
    client.RbacAuthorizationV1Api(admin).create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}],
        }
    )
    _forbidden(
        client.CoreV1Api(operator_api).create_namespaced_service_account_token,
        name,
        "kube-system",
        {"spec": {"expirationSeconds": 600}},
    )


def test_no_secret_outside_the_session_namespaces_is_read_or_overwritten(
    admin: Any, operator_api: Any
) -> None:
    name = agents.unique("db-password")
    client.CoreV1Api(admin).create_namespaced_secret(
        "default", {"metadata": {"name": name}, "stringData": {"password": "s3cret"}}
    )
    core = client.CoreV1Api(operator_api)
    _forbidden(core.read_namespaced_secret, name, "default")
    _forbidden(core.list_secret_for_all_namespaces)
    _forbidden(core.patch_namespaced_secret, name, "default", {"stringData": {"password": "x"}})
    _forbidden(core.replace_namespaced_secret, name, "default", {"metadata": {"name": name}})
    _forbidden(core.delete_namespaced_secret, name, "default")


def test_no_mutating_webhook_on_everything(operator_api: Any) -> None:
    evil = {
        "metadata": {"name": agents.unique("evil")},
        "webhooks": [
            {
                "name": "everything.evil.example",
                "clientConfig": {"url": "https://127.0.0.1:1/mutate"},
                "rules": [
                    {
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "operations": ["*"],
                        "resources": ["*/*"],
                    }
                ],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Ignore",
            }
        ],
    }
    api = client.AdmissionregistrationV1Api(operator_api)
    message = _forbidden(api.create_mutating_webhook_configuration, evil)
    assert "the operator may only manage the webhook configuration agentauthority.io" in message
    # Nor can it point its own configuration at everything.
    own = {"webhooks": [{**evil["webhooks"][0], "name": "x.agentauthority.io"}]}
    message = _forbidden(api.patch_mutating_webhook_configuration, "agentauthority.io", own)
    assert "with webhooks for the agentauthority.io API group only" in message


def test_other_products_webhook_configurations_stay_as_they_are(
    admin: Any, operator_api: Any
) -> None:
    name = agents.unique("other-product")
    hook = {
        "name": "check.other-product.example",
        "clientConfig": {"url": "https://127.0.0.1:1/validate"},
        "rules": [
            {
                "apiGroups": ["example.com"],
                "apiVersions": ["*"],
                "operations": ["CREATE"],
                "resources": ["widgets"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Ignore",
    }
    api = client.AdmissionregistrationV1Api(admin)
    api.create_validating_webhook_configuration({"metadata": {"name": name}, "webhooks": [hook]})
    theirs = client.AdmissionregistrationV1Api(operator_api)
    _forbidden(theirs.patch_validating_webhook_configuration, name, {"webhooks": []})
    _forbidden(theirs.delete_validating_webhook_configuration, name)
    assert len(api.read_validating_webhook_configuration(name).webhooks) == 1
    api.delete_validating_webhook_configuration(name)


def test_no_node_proxy_and_no_wildcard_reads(
    local_cluster: cluster.LocalCluster, admin: Any, operator_api: Any
) -> None:
    authz = client.AuthorizationV1Api(admin)

    def allowed(**attributes: Any) -> bool:
        review = authz.create_subject_access_review(
            {"spec": {"user": dev.OPERATOR_USER, "resourceAttributes": attributes}}
        )
        return bool(review.status.allowed)

    assert not allowed(verb="get", resource="nodes", subresource="proxy", name="n1")
    assert not allowed(verb="create", resource="nodes", subresource="proxy", name="n1")
    assert not allowed(verb="get", group="example.com", resource="anything")
    assert not allowed(verb="list", resource="secrets")
    assert allowed(verb="list", resource="pods")  # the explicit list still reads what it must
    _forbidden(client.CoreV1Api(operator_api).connect_get_node_proxy_with_path, "n1", "healthz")


def test_a_grant_cannot_hand_out_what_the_operator_cannot_read(admin: Any, operator: Any) -> None:
    name = agents.unique("greedy")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentGrant",
        "metadata": {"name": name},
        "spec": {
            "subjects": [{"kind": "Group", "name": "ai-agents"}],
            "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
            "read": [
                {
                    "name": "creds",
                    "namespaces": ["default"],
                    "resources": ["pods", "secrets"],
                    "verbs": ["get"],
                }
            ],
        },
    }
    custom = client.CustomObjectsApi(admin)
    try:
        custom.create_cluster_custom_object(GROUP, VERSION, "agentgrants", body)
    except client.ApiException as e:
        message = agents.refusal(e)
    else:

        def refused() -> str | None:
            grant = custom.get_cluster_custom_object(GROUP, VERSION, "agentgrants", name)
            valid = [
                c
                for c in (grant.get("status") or {}).get("conditions", [])
                if c["type"] == "Valid" and c["status"] == "False"
            ]
            return valid[0]["message"] if valid else None

        message = agents.wait_for(refused, 15, "the grant to be refused")
        custom.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", name)
    assert "spec.read[0].resources[1]" in message
    assert "outside the operator's read ceiling (the operator never reads Secrets)" in message


def test_the_session_namespace_role_is_where_tokens_are_minted(
    local_cluster: cluster.LocalCluster, admin: Any, operator_api: Any
) -> None:
    """Positive control: in a session namespace the same credential may mint a token."""
    ns = agents.unique("sessions")
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": ns}})
    core = client.CoreV1Api(operator_api)
    _forbidden(core.create_namespaced_service_account, ns, {"metadata": {"name": "aa-x"}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.wait_for(
        lambda: _can_create_sa(core, ns), 10, "the operator's session Role to take effect"
    )
    token = core.create_namespaced_service_account_token(
        "aa-x", ns, {"spec": {"expirationSeconds": 600}}
    ).status.token
    assert probe.status(local_cluster, "/api/v1/namespaces", token) == 403
    client.CoreV1Api(admin).delete_namespace(ns)


def _can_create_sa(core: client.CoreV1Api, ns: str) -> bool:
    try:
        core.create_namespaced_service_account(ns, {"metadata": {"name": "aa-x"}})
    except client.ApiException as e:
        return e.status == 409
    return True
