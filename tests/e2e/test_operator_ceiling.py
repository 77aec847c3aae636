"""The operator's own credential is a real ceiling, not cluster-admin in disguise.

Each test acts with the operator's identity (the local operator user bound to
config/rbac/operator-clusterrole.yaml, plus its Role in the session namespaces and its scope Role
where session scopes read) and tries what an attacker holding that credential would: every
attempt is refused with 403. The last tests show the other side of that ceiling: a session the
operator may not give access to is refused at once, naming the namespace, and nothing is left.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def test_no_role_or_rolebinding_outside_the_namespaces_it_was_given(
    local_cluster: cluster.LocalCluster, admin: Any, operator_api: Any
) -> None:
    """With the operator's credential, RBAC objects can be written only where the installer put
    its session or scope Role: elsewhere a Role (even one holding only what the operator reads)
    and a RoleBinding handing the operator's own ClusterRole to someone else are refused."""
    ns = agents.unique("no-rbac")
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": ns}})
    rbac = client.RbacAuthorizationV1Api(operator_api)
    role = {
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    hand_over = {
        "metadata": {"name": "mallory-is-the-operator"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "agent-authority-operator"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": RBAC}],
    }
    for where in (ns, "kube-system", "default"):
        _forbidden(rbac.create_namespaced_role, where, role)
        _forbidden(rbac.create_namespaced_role_binding, where, hand_over)
    # Positive control: with its scope Role there, the same credential writes the Role, and still
    # nothing else (no ServiceAccounts, no Secrets).
    agents.allow_scopes_in(local_cluster, ns)
    agents.wait_for(lambda: _can_create_role(rbac, ns, role), 10, "the scope Role to take effect")
    _forbidden(
        client.CoreV1Api(operator_api).create_namespaced_service_account,
        ns,
        {"metadata": {"name": "aa-x"}},
    )
    client.CoreV1Api(admin).delete_namespace(ns)


def _can_create_role(rbac: client.RbacAuthorizationV1Api, ns: str, role: dict[str, Any]) -> bool:
    try:
        rbac.create_namespaced_role(ns, role)
    except client.ApiException as e:
        return e.status == 409
    return True


# -- sessions the operator may not give access to --------------------------------------------------

AGENT, AGENT_GROUP = "agent-reach", "ai-agents-reach"


@pytest.fixture(scope="module")
def reach(
    local_cluster: cluster.LocalCluster, admin: Any, operator: OperatorProcess
) -> Iterator[dict[str, str]]:
    """Namespaces: ``ns`` (session Role), ``shop`` (scope Role), ``bare`` (neither), ``nowhere``
    (sessions may be created there but the operator has no session Role), and a grant whose
    scopes read ``shop``, ``bare``, and by label both."""
    names = {k: agents.unique(f"reach-{k}") for k in ("ns", "shop", "bare", "nowhere")}
    label = agents.unique("reach")
    core = client.CoreV1Api(admin)
    for key, name in names.items():
        labels = {"aa-e2e-reach": label} if key in {"shop", "bare"} else {}
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
    agents.allow_sessions_in(local_cluster, names["ns"])
    agents.allow_scopes_in(local_cluster, names["shop"])
    agents.cluster_role(
        admin,
        agents.unique("reach-open"),
        [
            {
                "apiGroups": [GROUP],
                "resources": ["incidentsessions"],
                "verbs": ["create", "get", "patch"],
            }
        ],
        [AGENT],
    )
    grant = agents.unique("reach")
    pods = {"resources": ["pods"], "verbs": ["get", "list"]}
    agents.create_grant(
        admin,
        grant,
        {
            "subjects": [{"kind": "Group", "name": AGENT_GROUP}],
            "incidents": {"severities": ["SEV2"], "classes": ["latency"]},
            "read": [
                {"name": "shop", "namespaces": [names["shop"]], **pods},
                {"name": "bare", "namespaces": [names["bare"]], **pods},
                {
                    "name": "labelled",
                    "namespaceSelector": {"matchLabels": {"aa-e2e-reach": label}},
                    **pods,
                },
            ],
            "session": {"maxTtlSeconds": 900, "maxConcurrentSessions": 50},
        },
    )
    yield {**names, "grant": grant}
    client.CustomObjectsApi(admin).delete_cluster_custom_object(
        GROUP, VERSION, "agentgrants", grant
    )
    for name in names.values():
        core.delete_namespace(name)


def _refused(
    local: cluster.LocalCluster, admin: Any, namespace: str, grant: str, scopes: list[str]
) -> tuple[dict[str, Any], str]:
    """Open a session as the agent; its final status and the message of its refusal Event."""
    agent = agents.as_user(local, AGENT, [AGENT_GROUP])
    name = agents.unique("s")
    body = agents.session_body(name, grant, scopes=[{"name": s} for s in scopes])
    agents.open_session(agent, namespace, body)
    # At once: well before the ~60 s the operator used to retry a refused ServiceAccount create.
    final = agents.wait_phase(admin, namespace, name, {"Active", "Denied"}, timeout=30)
    assert final["status"]["phase"] == "Denied", final["status"]

    def event() -> str | None:
        found = client.CoreV1Api(admin).list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        reasons = [e for e in found.items if e.reason == final["status"]["revocation"]["reason"]]
        return reasons[0].message if reasons else None

    message = agents.wait_for(event, 15, f"the refusal Event of {namespace}/{name}")
    uid = final["metadata"]["uid"]
    selector = f"agentauthority.io/session-uid={uid}"
    rbac, core = client.RbacAuthorizationV1Api(admin), client.CoreV1Api(admin)
    # Never half-applied: no Role, RoleBinding or ServiceAccount of the session anywhere.
    assert rbac.list_role_binding_for_all_namespaces(label_selector=selector).items == []
    assert rbac.list_role_for_all_namespaces(label_selector=selector).items == []
    assert core.list_service_account_for_all_namespaces(label_selector=selector).items == []
    return final, message


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return ready


def test_a_session_reading_where_the_operator_has_no_scope_role_is_refused_naming_it(
    local_cluster: cluster.LocalCluster, admin: Any, reach: dict[str, str]
) -> None:
    final, event = _refused(local_cluster, admin, reach["ns"], reach["grant"], ["shop", "bare"])
    ready = _ready(final["status"])
    assert ready["status"] == "False"
    assert ready["reason"] == "ScopeNamespacesNotEnabled"
    for text in (ready["message"], event):
        assert repr(reach["bare"]) in text
        assert reach["shop"] not in text  # it has the scope Role: not named as missing
        assert "config/rbac/operator-scope-namespace.yaml" in text
        assert "scopeNamespaces" in text
        assert "nothing was created" in text
    # Positive control: the scope in the namespace that has the Role opens.
    agent = agents.as_user(local_cluster, AGENT, [AGENT_GROUP])
    name = agents.unique("ok")
    agents.open_session(
        agent, reach["ns"], agents.session_body(name, reach["grant"], scopes=[{"name": "shop"}])
    )
    opened = agents.wait_phase(admin, reach["ns"], name, {"Active", "Denied"}, timeout=30)
    assert opened["status"]["phase"] == "Active", opened["status"]
    agents.end_session(agent, reach["ns"], name)


def test_a_selector_scope_selecting_a_namespace_without_the_scope_role_is_refused_not_narrowed(
    local_cluster: cluster.LocalCluster, admin: Any, reach: dict[str, str]
) -> None:
    final, event = _refused(local_cluster, admin, reach["ns"], reach["grant"], ["labelled"])
    ready = _ready(final["status"])
    assert ready["reason"] == "ScopeNamespacesNotEnabled"
    selected = f"{reach['bare']!r} (selected by the namespaceSelector of scope 'labelled')"
    assert selected in ready["message"]
    assert selected in event


def test_a_session_where_the_operator_has_no_session_role_is_refused_at_once(
    local_cluster: cluster.LocalCluster, admin: Any, reach: dict[str, str]
) -> None:
    final, event = _refused(local_cluster, admin, reach["nowhere"], reach["grant"], ["shop"])
    ready = _ready(final["status"])
    assert ready["status"] == "False"
    assert ready["reason"] == "SessionNamespaceNotEnabled"
    for text in (ready["message"], event):
        assert repr(reach["nowhere"]) in text
        assert "create serviceaccounts" in text
        assert "config/rbac/operator-session-namespace.yaml" in text
        assert "sessionNamespaces" in text
