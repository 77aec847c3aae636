"""TokenRequest tokens bound to a Secret: how fast RBAC and credential revocation take effect.

These are the two facts revocation is built on (DESIGN.md): deleting a RoleBinding denies at
once (403; RBAC is served from informers), deleting the bound Secret makes the token itself
fail (401) once the apiserver's 10 s token-authentication cache forgets it.
"""

from __future__ import annotations

from kubernetes import client

from agent_authority.localcluster import cluster
from tests.e2e import probe


def _mint(admin: client.ApiClient, namespace: str) -> str:
    core = client.CoreV1Api(admin)
    rbac = client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    secret = core.create_namespaced_secret(
        namespace, {"metadata": {"name": "reader-token"}, "type": "Opaque"}
    )
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-pods",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    review = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        {
            "spec": {
                "audiences": None,
                "expirationSeconds": 600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": "reader-token",
                    "uid": secret.metadata.uid,
                },
            }
        },
    )
    return str(review.status.token)


def test_bound_token_is_denied_at_once_after_rolebinding_and_dead_after_secret_deletion(
    local_cluster: cluster.LocalCluster, admin: client.ApiClient, namespace: str
) -> None:
    token = _mint(admin, namespace)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    assert probe.status(local_cluster, pods, token) == 200
    assert probe.status(local_cluster, "/api/v1/namespaces/default/pods", token) == 403
    assert probe.status(local_cluster, f"/api/v1/namespaces/{namespace}/secrets", token) == 403
    assert probe.status(local_cluster, pods, token, method="POST") == 403

    client.RbacAuthorizationV1Api(admin).delete_namespaced_role_binding("read-pods", namespace)
    forbidden_after = probe.wait_for_status(local_cluster, pods, token, 403, timeout=5)
    assert forbidden_after is not None, "token still authorized 5 s after its RoleBinding went"
    # Still authenticated (403, not 401): only authorization was taken away.
    assert probe.status(local_cluster, pods, token) == 403

    client.CoreV1Api(admin).delete_namespaced_secret("reader-token", namespace)
    unauthorized_after = probe.wait_for_status(local_cluster, pods, token, 401, timeout=20)
    assert unauthorized_after is not None, "token still authenticates 20 s after its Secret went"
    print(
        f"\n[revocation] RoleBinding deleted -> 403 after {forbidden_after * 1000:.0f} ms; "
        f"bound Secret deleted -> 401 after {unauthorized_after:.1f} s"
    )
    assert forbidden_after < 1.0
    assert unauthorized_after < 15.0
