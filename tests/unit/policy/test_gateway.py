"""What the session gateway forwards, what it refuses, and which refusals are deviations."""

from __future__ import annotations

import pytest

from agent_authority.models import grant
from agent_authority.policy import gateway

RULES = [
    grant.PolicyRule(
        namespace="shop",
        api_groups=["", "apps"],
        resources=["pods", "pods/log", "deployments"],
        verbs=["get", "list", "watch"],
    ),
    grant.PolicyRule(
        namespace="shop",
        api_groups=[""],
        resources=["configmaps"],
        verbs=["get"],
        resource_names=["settings"],
    ),
    grant.PolicyRule(
        namespace="agents",
        api_groups=["agentauthority.io"],
        resources=["remediationrequests"],
        verbs=["create", "get", "list", "watch"],
    ),
]
R = gateway.Refusal

DECIDE_CASES = [
    pytest.param("GET", "/api/v1/namespaces/shop/pods", {}, None, id="list-pods-in-scope"),
    pytest.param("GET", "/api/v1/namespaces/shop/pods/web-1", {}, None, id="get-pod-in-scope"),
    pytest.param(
        "GET", "/api/v1/namespaces/shop/pods", {"watch": "true"}, None, id="watch-pods-in-scope"
    ),
    pytest.param(
        "GET", "/api/v1/watch/namespaces/shop/pods", {}, None, id="legacy-watch-path-in-scope"
    ),
    pytest.param(
        "GET",
        "/api/v1/namespaces/shop/pods/web-1/log",
        {"follow": "true"},
        None,
        id="follow-pod-log-in-scope",
    ),
    pytest.param(
        "GET", "/apis/apps/v1/namespaces/shop/deployments", {}, None, id="apps-group-in-scope"
    ),
    pytest.param(
        "GET", "/api/v1/namespaces/shop/configmaps/settings", {}, None, id="named-object-in-rule"
    ),
    pytest.param(
        "POST",
        "/apis/agentauthority.io/v1alpha1/namespaces/agents/remediationrequests",
        {},
        None,
        id="create-remediation-in-own-namespace",
    ),
    pytest.param("GET", "/api", {}, None, id="discovery-core"),
    pytest.param("GET", "/apis", {}, None, id="discovery-groups"),
    pytest.param("GET", "/apis/apps/v1", {}, None, id="discovery-group-version"),
    pytest.param("GET", "/version", {}, None, id="discovery-version"),
    pytest.param("GET", "/openapi/v3/api/v1", {}, None, id="discovery-openapi"),
    pytest.param(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {},
        None,
        id="can-i-is-allowed",
    ),
    pytest.param(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {},
        None,
        id="can-i-list-is-allowed",
    ),
    pytest.param(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {},
        None,
        id="whoami-is-allowed",
    ),
    pytest.param(
        "GET", "/api/v1/namespaces/other/pods", {}, R.OUTSIDE_RULES, id="other-namespace-refused"
    ),
    pytest.param(
        "GET", "/api/v1/namespaces/shop/secrets", {}, R.OUTSIDE_RULES, id="secrets-refused"
    ),
    pytest.param(
        "DELETE",
        "/api/v1/namespaces/shop/pods/web-1",
        {},
        R.OUTSIDE_RULES,
        id="write-verb-refused",
    ),
    pytest.param(
        "GET",
        "/api/v1/namespaces/shop/configmaps/other",
        {},
        R.OUTSIDE_RULES,
        id="name-not-in-rule-refused",
    ),
    pytest.param(
        "GET", "/api/v1/namespaces/shop/configmaps", {}, R.OUTSIDE_RULES, id="list-of-named-refused"
    ),
    pytest.param("GET", "/api/v1/nodes", {}, R.OUTSIDE_RULES, id="cluster-scoped-refused"),
    pytest.param("GET", "/api/v1/namespaces/shop", {}, R.OUTSIDE_RULES, id="namespace-object"),
    pytest.param(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {},
        R.OUTSIDE_RULES,
        id="sar-for-others-refused",
    ),
    pytest.param(
        "POST",
        "/api/v1/namespaces/shop/pods/web-1/exec",
        {"command": "sh"},
        R.UPGRADE,
        id="exec-refused",
    ),
    pytest.param(
        "GET", "/api/v1/namespaces/shop/pods/web-1/attach", {}, R.UPGRADE, id="attach-refused"
    ),
    pytest.param(
        "POST",
        "/api/v1/namespaces/shop/pods/web-1/portforward",
        {},
        R.UPGRADE,
        id="port-forward-refused",
    ),
    pytest.param(
        "GET",
        "/api/v1/namespaces/shop/services/web/proxy/admin",
        {},
        R.UPGRADE,
        id="service-proxy-refused",
    ),
    pytest.param("GET", "/metrics", {}, R.NOT_AN_API_PATH, id="apiserver-metrics-refused"),
    pytest.param("GET", "/logs/kube-apiserver.log", {}, R.NOT_AN_API_PATH, id="logs-refused"),
    pytest.param(
        "GET", "http://elsewhere/api/v1/pods", {}, R.NOT_AN_API_PATH, id="absolute-url-refused"
    ),
    pytest.param(
        "GET",
        "/api/v1/namespaces/shop/pods/../../other/pods",
        {},
        R.NOT_AN_API_PATH,
        id="dot-dot-refused",
    ),
    pytest.param("OPTIONS", "/api/v1/namespaces/shop/pods", {}, R.METHOD, id="options-refused"),
]


@pytest.mark.parametrize(("method", "path", "query", "refusal"), DECIDE_CASES)
def test_decide(method: str, path: str, query: dict[str, str], refusal: R | None) -> None:
    decision = gateway.decide(gateway.classify(method, path, query), RULES)
    if refusal is None:
        assert isinstance(decision, gateway.Allowed), decision
    else:
        assert isinstance(decision, gateway.Refused), decision
        assert decision.reason is refusal


def test_discovery_and_self_reviews_need_no_rule() -> None:
    for method, path in [
        ("GET", "/apis"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ]:
        decision = gateway.decide(gateway.classify(method, path, {}), [])
        assert isinstance(decision, gateway.Allowed)
        assert not decision.needs_rule


def test_refusal_names_the_rule_that_would_be_needed() -> None:
    decision = gateway.decide(gateway.classify("GET", "/api/v1/namespaces/shop/secrets", {}), RULES)
    assert isinstance(decision, gateway.Refused)
    assert decision.deviation
    assert decision.code == 403
    assert "list secrets in namespace shop" in decision.message
    assert "{namespace: shop, apiGroups: [''], resources: [secrets], verbs: [list]}" in (
        decision.message
    )


def test_upgrade_header_is_refused_even_on_an_allowed_path() -> None:
    info = gateway.classify("GET", "/api/v1/namespaces/shop/pods/web-1/log", {})
    decision = gateway.decide(info, RULES, upgrade_header=True)
    assert isinstance(decision, gateway.Refused)
    assert decision.reason is R.UPGRADE


def test_oversized_body_is_refused_without_counting() -> None:
    info = gateway.classify(
        "POST", "/apis/agentauthority.io/v1alpha1/namespaces/agents/remediationrequests", {}
    )
    decision = gateway.decide(info, RULES, body_bytes=gateway.MAX_BODY_BYTES + 1)
    assert isinstance(decision, gateway.Refused)
    assert decision.reason is R.TOO_LARGE
    assert decision.code == 413
    assert not decision.deviation


def test_classify_resolves_like_the_apiserver() -> None:
    info = gateway.classify("GET", "/apis/apps/v1/namespaces/shop/deployments/web/scale", {})
    assert info == gateway.RequestInfo(
        verb="get",
        path="/apis/apps/v1/namespaces/shop/deployments/web/scale",
        resource_request=True,
        api_group="apps",
        api_version="v1",
        resource="deployments",
        subresource="scale",
        namespace="shop",
        name="web",
    )
    status = gateway.classify("PUT", "/api/v1/namespaces/shop/status", {})
    assert isinstance(status, gateway.RequestInfo)
    assert (status.resource, status.name, status.subresource, status.namespace) == (
        "namespaces",
        "shop",
        "status",
        "shop",
    )
    collection = gateway.classify("DELETE", "/api/v1/namespaces/shop/pods", {})
    assert isinstance(collection, gateway.RequestInfo)
    assert collection.verb == "deletecollection"


def test_status_body_is_a_kubernetes_status() -> None:
    info = gateway.classify("GET", "/api/v1/namespaces/shop/secrets/db", {})
    assert isinstance(info, gateway.RequestInfo)
    body = gateway.status_body(403, "Forbidden", "no", info)
    assert body["kind"] == "Status"
    assert body["code"] == 403
    assert body["status"] == "Failure"
    assert body["details"] == {"kind": "secrets", "name": "db"}


MODE_CASES = [
    pytest.param(None, "direct", True, "direct", id="operator-default-direct"),
    pytest.param(None, "gateway", True, "gateway", id="operator-default-gateway"),
    pytest.param("direct", "gateway", True, "direct", id="grant-overrides-to-direct"),
    pytest.param("gateway", "direct", True, "gateway", id="grant-overrides-to-gateway"),
    pytest.param("gateway", "direct", False, None, id="gateway-without-server-refused"),
    pytest.param(None, "gateway", False, None, id="default-gateway-without-server-refused"),
]


@pytest.mark.parametrize(("grant_mode", "default", "enabled", "want"), MODE_CASES)
def test_choose_mode(grant_mode: str | None, default: str, enabled: bool, want: str | None) -> None:
    choice = gateway.choose_mode(grant_mode, gateway.AccessMode(default), enabled)
    assert (choice.mode.value if choice.mode else None) == want
    if want is None:
        assert "--gateway-port" in choice.message
