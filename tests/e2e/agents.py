"""Helpers for e2e tests that act as agents, approvers and admins on the real cluster."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubernetes import client, config

from agent_authority.kube import session_refs
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


def _service_account_exists(admin: Any, namespace: str, name: str, uid: str) -> bool:
    """Whether the ServiceAccount the operator mints for the session ``name`` (``uid``) exists."""
    sa = session_refs.SessionRef(namespace=namespace, name=name, uid=uid).service_account
    try:
        client.CoreV1Api(admin).read_namespaced_service_account(sa, namespace)
    except client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def wait_service_account(admin: Any, namespace: str, name: str, uid: str, what: str) -> None:
    """Wait (30 s) until the session's ServiceAccount exists: the operator read the session as
    Pending and is creating its credentials."""
    wait_for(lambda: _service_account_exists(admin, namespace, name, uid) or None, 30, what)


def wait_service_account_gone(
    admin: Any, namespace: str, name: str, uid: str, what: str, timeout: float = 60
) -> None:
    """Wait (60 s unless told) until the session's ServiceAccount is gone: the operator took its
    credentials back."""
    wait_for(
        lambda: None if _service_account_exists(admin, namespace, name, uid) else True,
        timeout,
        what,
    )


# -- the world of a remediation: its grant, RBAC, target, session and request ------------------

EVIDENCE = [
    {
        "kind": "metric",
        "source": "prometheus",
        "excerpt": "p99 latency 2.4 s",
        "sha256": "a" * 64,
        "observedAt": "2026-11-21T07:00:00Z",
    }
]
"""The evidence a RemediationRequest carries where a test does not say otherwise."""


def remediation_grant_spec(
    subjects: list[dict[str, Any]],
    shop: str,
    remediations: list[dict[str, Any]],
    *,
    approval_timeout: int,
    max_ttl: int,
) -> dict[str, Any]:
    """A grant for ``subjects`` that reads the deployments of ``shop`` and may ask for
    ``remediations`` (one approval for a reversible change, two for an irreversible one)."""
    return {
        "subjects": subjects,
        "incidents": {"severities": ["SEV1", "SEV2"]},
        "read": [
            {
                "name": "apps",
                "namespaces": [shop],
                "apiGroups": ["apps"],
                "resources": ["deployments"],
            }
        ],
        "remediations": remediations,
        "approval": {
            "requiredApprovals": {"reversible": 1, "irreversible": 2},
            "timeoutSeconds": approval_timeout,
        },
        "session": {
            "maxTtlSeconds": max_ttl,
            "maxConcurrentSessions": 100,
            "maxDeniedRequests": 1000,
        },
    }


def open_sessions_rules(
    verbs: tuple[str, ...] = ("create", "get", "list", "watch", "patch"),
) -> list[dict[str, Any]]:
    """RBAC rules of whoever opens (and, with ``patch``, ends) IncidentSessions."""
    return [{"apiGroups": [GROUP], "resources": ["incidentsessions"], "verbs": list(verbs)}]


def request_status_rules() -> list[dict[str, Any]]:
    """RBAC rules of whoever reads requests and sessions and writes a request's status (where
    approvals are appended; the approval webhook decides whether one counts)."""
    return [
        {
            "apiGroups": [GROUP],
            "resources": ["remediationrequests", "incidentsessions"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [GROUP],
            "resources": ["remediationrequests/status"],
            "verbs": ["get", "patch", "update"],
        },
    ]


def approve_rule(grant: str) -> dict[str, Any]:
    """The RBAC rule that lets its holder approve requests under ``grant``."""
    return {
        "apiGroups": [GROUP],
        "resources": ["agentgrants"],
        "verbs": ["approve"],
        "resourceNames": [grant],
    }


def deployment(
    name: str, replicas: int, image: str = "registry.invalid/web:1", **container: Any
) -> dict[str, Any]:
    """A Deployment ``name`` of one container ``app`` (``container``: more of its fields)."""
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, **container}]},
            },
        },
    }


def token_client(local: cluster.LocalCluster, token: str) -> Any:
    """An ApiClient authenticating to the apiserver with the bearer ``token``."""
    configuration = client.Configuration()
    configuration.host = local.url
    configuration.ssl_ca_cert = str(local.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def active_session(
    api: Any, admin: Any, namespace: str, body: dict[str, Any], timeout: float = 20
) -> dict[str, Any]:
    """Open the session ``body`` as ``api`` and wait until it is Active (asserted; a Denied
    session fails the test with its status); the session as the operator left it."""
    open_session(api, namespace, body)
    name = body["metadata"]["name"]
    found = wait_phase(admin, namespace, name, {"Active", "Denied"}, timeout=timeout)
    assert found["status"]["phase"] == "Active", found["status"]
    return found


def request_spec(
    session: str,
    action: dict[str, Any],
    hypothesis: str,
    evidence: list[dict[str, Any]] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The spec of a RemediationRequest of ``session`` for ``action`` (``more``: further fields,
    e.g. ``rollbackOf``); the evidence is :data:`EVIDENCE` unless given."""
    return {
        "sessionRef": {"name": session},
        "action": action,
        "hypothesis": hypothesis,
        "evidence": EVIDENCE if evidence is None else evidence,
        **more,
    }


def create_request(api: Any, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create the RemediationRequest ``name`` with ``spec`` as ``api``; the object as the
    apiserver returned it."""
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "remediationrequests",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RemediationRequest",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    return created


def get_request(admin: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "remediationrequests", name
    )
    return found


def wait_request_phase(
    admin: Any,
    namespace: str,
    name: str,
    phases: set[str],
    timeout: float,
    every: float = 0.05,
) -> dict[str, Any]:
    """Wait until the request ``name`` is in one of ``phases``; the request as read then."""

    def check() -> dict[str, Any] | None:
        body = get_request(admin, namespace, name)
        return body if (body.get("status") or {}).get("phase") in phases else None

    return wait_for(check, timeout, f"request {name} to reach {sorted(phases)}", every)


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
