"""Helpers for e2e tests that act as agents, approvers and admins on the real cluster."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubernetes import client, config

from agent_authority.kube import credentials
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION, admission

T = TypeVar("T")
RBAC = "rbac.authorization.k8s.io"


def as_user(local: cluster.LocalCluster, username: str, groups: list[str] | None = None) -> Any:
    """An ApiClient authenticating as ``username`` (client certificate) in ``groups``."""
    return config.new_client_from_config(
        config_file=str(local.user_kubeconfig(username, groups or []))
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def create_grant(admin: Any, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentGrant",
        "metadata": {"name": name},
        "spec": spec,
    }
    created: dict[str, Any] = client.CustomObjectsApi(admin).create_cluster_custom_object(
        GROUP, VERSION, "agentgrants", body
    )
    wait_for(lambda: _valid(admin, name), 15, f"grant {name} to be Valid")
    return created


def _valid(admin: Any, name: str) -> bool:
    grant = client.CustomObjectsApi(admin).get_cluster_custom_object(
        GROUP, VERSION, "agentgrants", name
    )
    conds = (grant.get("status") or {}).get("conditions", [])
    return any(c["type"] == "Valid" and c["status"] == "True" for c in conds)


def session_body(name: str, grant: str, **spec: Any) -> dict[str, Any]:
    body_spec: dict[str, Any] = {
        "grantRef": {"name": grant},
        "incident": {"id": "INC-1", "severity": "SEV2", "class": "latency"},
        "purpose": "e2e",
        "ttlSeconds": 600,
    }
    body_spec.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IncidentSession",
        "metadata": {"name": name},
        "spec": body_spec,
    }


def open_session(api: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidentsessions", body
    )
    return created


def get_session(admin: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidentsessions", name
    )
    return found


def wait_phase(
    admin: Any, namespace: str, name: str, phases: set[str], timeout: float = 20
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get_session(admin, namespace, name)
        return body if (body.get("status") or {}).get("phase") in phases else None

    return wait_for(check, timeout, f"session {namespace}/{name} to reach {sorted(phases)}")


def end_session(api: Any, namespace: str, name: str) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidentsessions", name, {"spec": {"ended": True}}
    )


def token_of(api: Any, namespace: str, session: dict[str, Any]) -> str:
    """The session token, read the way the requester reads it (its own RBAC on one Secret)."""
    secret = client.CoreV1Api(api).read_namespaced_secret(
        session["status"]["secretName"], namespace
    )
    return base64.b64decode(secret.data["token"]).decode()


def refusal(e: client.ApiException) -> str:
    import json

    try:
        return str(json.loads(e.body).get("message", e.body))
    except (TypeError, ValueError):
        return str(e.body)


def cluster_role(admin: Any, name: str, rules: list[dict[str, Any]], users: list[str]) -> None:
    """A ClusterRole with ``rules``, bound to ``users``."""
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "name": u, "apiGroup": RBAC} for u in users],
        }
    )


def wait_allowed(
    admin: Any, user: str, verb: str, group: str, resource: str, namespace: str
) -> None:
    """Until the apiserver's authorizer says ``user`` may ``verb`` the resource: a binding just
    made reaches the RBAC authorizer's cache a moment later (seen as a 403 under load)."""

    def allowed() -> bool | None:
        review = client.AuthorizationV1Api(admin).create_subject_access_review(
            {
                "spec": {
                    "user": user,
                    "resourceAttributes": {
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "namespace": namespace,
                    },
                }
            }
        )
        return True if review.status.allowed else None

    wait_for(allowed, 30, f"{user} to be allowed to {verb} {resource} in {namespace}")


def allow_sessions_in(local: cluster.LocalCluster, namespace: str) -> None:
    """Let the operator run sessions in ``namespace``: its Role there (identity and token writes
    are granted per session namespace, never cluster-wide), as an installer would."""
    from agent_authority.cli import dev
    from agent_authority.kube import clients, manifests

    admin = clients.api_client(str(local.kubeconfig))
    manifests.apply(admin, dev.session_namespace_rbac([namespace]))


def allow_scopes_in(local: cluster.LocalCluster, *namespaces: str) -> None:
    """Let sessions' scopes read in ``namespaces`` (where no session lives): the operator's scope
    Role there (RBAC writes are granted per namespace, never cluster-wide), as an installer
    would."""
    from agent_authority.cli import dev
    from agent_authority.kube import clients, manifests

    admin = clients.api_client(str(local.kubeconfig))
    manifests.apply(admin, dev.scope_namespace_rbac(list(namespaces)))


def wait_service_account(admin: Any, namespace: str, name: str, uid: str, what: str) -> None:
    """Wait (30 s) until the session's ServiceAccount exists: the operator read the session as
    Pending and is creating its credentials."""
    sa = credentials.SessionRef(namespace=namespace, name=name, uid=uid).service_account
    core = client.CoreV1Api(admin)

    def minted() -> bool | None:
        try:
            core.read_namespaced_service_account(sa, namespace)
            return True
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    wait_for(minted, 30, what)


@contextlib.contextmanager
def without_policy_bindings(admin: Any, *policies: str) -> Iterator[None]:
    """The apiserver without the bindings of these admission policies (so what refuses is the
    operator's webhook alone); they are put back, as generated, whatever happens."""
    api_ = client.AdmissionregistrationV1Api(admin)
    bindings = [
        d
        for d in admission.documents()
        if d["kind"] == "ValidatingAdmissionPolicyBinding" and d["metadata"]["name"] in policies
    ]
    assert len(bindings) == len(policies), policies
    for binding in bindings:
        api_.delete_validating_admission_policy_binding(binding["metadata"]["name"])
    try:
        time.sleep(2)  # the apiserver's policy informer drops them
        yield
    finally:
        for binding in bindings:
            try:
                api_.create_validating_admission_policy_binding(binding)
            except client.ApiException as e:
                if e.status != 409:
                    raise
        time.sleep(2)  # and picks them up again before the next test
