"""Grant validation, compilation to RBAC rules, and permission sets."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import grant
from agent_authority.policy import rbac


def grant_spec(*scopes: dict[str, Any], **fields: Any) -> grant.AgentGrantSpec:
    """A grant as its YAML would read, with one ServiceAccount subject by default."""
    body: dict[str, Any] = {
        "subjects": [{"kind": "ServiceAccount", "namespace": "agents", "name": "sre-bot"}],
        "incidents": {"severities": ["SEV1", "SEV2"]},
        "read": list(scopes),
    }
    body.update(fields)
    return grant.AgentGrantSpec.model_validate(body)


def scope(name: str = "pods-read", **fields: Any) -> dict[str, Any]:
    return {"name": name, "namespaces": ["web"], "resources": ["pods"], **fields}


def unchecked_scope(**fields: Any) -> grant.ReadScope:
    """A scope the schema would refuse (wildcards), built without validation."""
    values: dict[str, Any] = {
        "name": "pods-read",
        "namespaces": ["web"],
        "namespace_selector": None,
        "api_groups": [""],
        "resources": ["pods"],
        "verbs": [grant.ReadVerb.GET],
    }
    values.update(fields)
    return grant.ReadScope.model_construct(**values)


def rule(
    namespace: str, resources: list[str], verbs: list[str], groups: list[str] | None = None
) -> grant.PolicyRule:
    return grant.PolicyRule(
        namespace=namespace, api_groups=groups or [""], resources=resources, verbs=verbs
    )


# validate_grant ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        grant_spec(scope()),
        grant_spec(scope(resources=["services", "configmaps"])),
        grant_spec(scope(resources=["pods", "pods/log"])),
        grant_spec(
            scope(apiGroups=["apps"], resources=["deployments/status", "deployments/scale"])
        ),
        grant_spec(scope(namespaces=None, namespaceSelector={"matchLabels": {"team": "web"}})),
        grant_spec(
            scope("a"),
            scope("b", verbs=["get", "list", "watch"]),
            remediations=[{"action": "restart-workload"}, {"action": "delete-pod"}],
        ),
    ],
    ids=[
        "minimal-grant-is-valid",
        "resources-listed-by-name-are-allowed",
        "pods-log-is-a-readable-subresource",
        "status-and-scale-of-any-resource-are-readable",
        "namespace-selector-scope-is-valid",
        "distinct-scopes-and-actions-are-valid",
    ],
)
def test_valid_grants_have_no_problems(spec: grant.AgentGrantSpec) -> None:
    assert rbac.validate_grant(spec) == []


@pytest.mark.parametrize(
    ("resource", "why"),
    [
        ("pods/exec", "runs commands"),
        ("pods/attach", "attaches"),
        ("pods/portforward", "network tunnels"),
        ("pods/proxy", "proxies"),
        ("services/proxy", "proxies"),
        ("nodes/proxy", "kubelet"),
        ("serviceaccounts/token", "mints tokens"),
        ("pods/eviction", "not known to be read-only"),
        ("pods/ephemeralcontainers", "not known to be read-only"),
        ("deployments/log", "not known to be read-only"),
        ("*", "wildcards"),
        ("pods/*", "wildcards"),
        ("*/status", "wildcards"),
    ],
    ids=[
        "pods-exec-refused-get-is-enough-to-exec",
        "pods-attach-refused",
        "pods-portforward-refused",
        "pods-proxy-refused",
        "services-proxy-refused",
        "nodes-proxy-refused-it-reaches-the-kubelet",
        "serviceaccount-token-refused",
        "unlisted-subresource-eviction-refused",
        "unlisted-subresource-ephemeralcontainers-refused",
        "log-is-readable-only-for-pods",
        "wildcard-resource-refused",
        "wildcard-subresource-refused",
        "status-of-every-resource-refused",
    ],
)
def test_refused_resources_name_the_field_and_what_is_allowed(resource: str, why: str) -> None:
    spec = grant_spec(scope())
    spec.read[0] = unchecked_scope(resources=["pods", "pods/log", resource])

    problems = rbac.validate_grant(spec)

    assert [p.field for p in problems] == ["spec.read[0].resources[2]"]
    assert f"resource '{resource}' is refused" in problems[0].message
    assert why in problems[0].message
    assert "allowed: resources by name, subresources pods/log" in problems[0].message


@pytest.mark.parametrize(
    ("spec", "fields", "expected"),
    [
        (
            grant_spec(scope()).model_copy(
                update={"read": [unchecked_scope(api_groups=["", "*"])]}
            ),
            ["spec.read[0].apiGroups[1]"],
            "API group '*' is refused",
        ),
        (
            grant_spec(scope("a"), scope("b"), scope("a", namespaces=["api"])),
            ["spec.read[2].name"],
            "scope name 'a' is refused: it repeats spec.read[0].name",
        ),
        (
            grant_spec(
                scope(),
                remediations=[
                    {"action": "delete-pod"},
                    {"action": "restart-workload"},
                    {"action": "delete-pod", "autonomy": "auto"},
                ],
            ),
            ["spec.remediations[2].action"],
            "remediation action 'delete-pod' is refused: it repeats spec.remediations[0].action",
        ),
        (
            grant_spec(scope(namespaceSelector={"matchLabels": {"team": "web"}})),
            ["spec.read[0]"],
            "must set exactly one of namespaces or namespaceSelector",
        ),
        (
            grant_spec(scope(namespaces=None)),
            ["spec.read[0]"],
            "must set exactly one of namespaces or namespaceSelector",
        ),
        (
            grant_spec(scope(), subjects=[{"kind": "ServiceAccount", "name": "sre-bot"}]),
            ["spec.subjects[0].namespace"],
            "ServiceAccount 'sre-bot' has no namespace",
        ),
        (
            grant_spec(scope(), subjects=[{"kind": "User", "name": "alice", "namespace": "x"}]),
            ["spec.subjects[0].namespace"],
            "only ServiceAccount subjects have",
        ),
        (
            grant_spec(scope(), scope()).model_copy(
                update={"read": [unchecked_scope(resources=["*"], api_groups=["*"])] * 2}
            ),
            [
                "spec.read[0].apiGroups[0]",
                "spec.read[0].resources[0]",
                "spec.read[1].apiGroups[0]",
                "spec.read[1].resources[0]",
                "spec.read[1].name",
            ],
            "",
        ),
    ],
    ids=[
        "wildcard-api-group-refused",
        "duplicate-scope-names-refused",
        "duplicate-remediation-actions-refused",
        "scope-with-namespaces-and-selector-refused",
        "scope-with-neither-namespaces-nor-selector-refused",
        "service-account-subject-without-namespace-refused",
        "user-subject-with-namespace-refused",
        "every-problem-reported-not-only-the-first",
    ],
)
def test_grant_problems(spec: grant.AgentGrantSpec, fields: list[str], expected: str) -> None:
    problems = rbac.validate_grant(spec)

    assert [p.field for p in problems] == fields
    assert expected in problems[0].message
    assert all("(allowed: " in p.message for p in problems)


def test_problem_reads_as_field_then_message() -> None:
    problem = rbac.Problem("spec.read[0].resources[2]", "resource 'pods/exec' is refused")

    assert str(problem) == "spec.read[0].resources[2]: resource 'pods/exec' is refused"


# compile_rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "resolved", "expected"),
    [
        (
            [scope(namespaces=["web", "api"], resources=["pods", "pods/log"])],
            {},
            [
                rule("api", ["pods", "pods/log"], ["get", "list"]),
                rule("web", ["pods", "pods/log"], ["get", "list"]),
            ],
        ),
        (
            [scope(namespaces=None, namespaceSelector={"matchLabels": {"team": "web"}})],
            {"pods-read": ["web-2", "web-1"]},
            [rule("web-1", ["pods"], ["get", "list"]), rule("web-2", ["pods"], ["get", "list"])],
        ),
        (
            [scope(namespaces=None, namespaceSelector={"matchLabels": {"team": "web"}})],
            {"other-scope": ["web-1"]},
            [],
        ),
        (
            [scope(verbs=["get"]), scope("events", resources=["events"], verbs=["list"])],
            {},
            [rule("web", ["events"], ["list"]), rule("web", ["pods"], ["get"])],
        ),
        (
            [scope(verbs=["watch", "get", "list"])],
            {},
            [rule("web", ["pods"], ["get", "list", "watch"])],
        ),
        (
            [scope(resources=["pods"]), scope("more", resources=["services", "pods"])],
            {},
            [rule("web", ["pods", "services"], ["get", "list"])],
        ),
        (
            [scope(apiGroups=["apps"], resources=["deployments"]), scope("core")],
            {},
            [
                rule("web", ["pods"], ["get", "list"]),
                rule("web", ["deployments"], ["get", "list"], groups=["apps"]),
            ],
        ),
        (
            [scope(resources=["secrets"])],
            {},
            [rule("web", ["secrets"], ["get", "list"])],
        ),
    ],
    ids=[
        "explicit-namespaces-one-rule-each-without-watch-by-default",
        "selector-scope-uses-resolved-namespaces",
        "selector-scope-without-resolution-compiles-to-nothing",
        "verbs-exactly-as-listed-per-scope",
        "watch-only-when-grant-opts-in",
        "same-groups-and-verbs-merge-per-namespace",
        "different-api-groups-stay-separate-rules",
        "secrets-compiled-when-listed",
    ],
)
def test_compile_rules(
    scopes: list[dict[str, Any]],
    resolved: dict[str, list[str]],
    expected: list[grant.PolicyRule],
) -> None:
    read = grant_spec(*scopes).read

    assert rbac.compile_rules(read, resolved) == expected
    assert rbac.compile_rules(list(reversed(read)), resolved) == expected, "order-independent"


def test_compiled_rules_grant_exactly_the_scopes_permissions() -> None:
    read = grant_spec(scope(namespaces=["web", "api"], resources=["pods", "pods/log"])).read

    assert rbac.expand(rbac.compile_rules(read, {})) == {
        rbac.Permission(ns, "", resource, verb)
        for ns in ["web", "api"]
        for resource in ["pods", "pods/log"]
        for verb in ["get", "list"]
    }


def test_required_permissions_cover_explicit_and_selected_namespaces_sorted() -> None:
    spec = grant_spec(
        scope(verbs=["get"]),
        scope(
            "by-label",
            namespaces=None,
            namespaceSelector={"matchLabels": {"team": "api"}},
            resources=["pods/log"],
        ),
    )

    assert rbac.required_permissions(spec, {"by-label": ["api"]}) == [
        rbac.Permission("api", "", "pods/log", "get"),
        rbac.Permission("api", "", "pods/log", "list"),
        rbac.Permission("web", "", "pods", "get"),
    ]


# Permission sets --------------------------------------------------------------------------------

WEB_PODS = rule("web", ["pods"], ["get", "list"])


@pytest.mark.parametrize(
    ("child", "parent", "beyond"),
    [
        ([WEB_PODS], [WEB_PODS], []),
        ([], [WEB_PODS], []),
        ([rule("web", ["pods"], ["get"])], [WEB_PODS], []),
        (
            [rule("web", ["pods"], ["get"])],
            [rule("web", ["pods", "services"], ["get", "list"]), rule("api", ["pods"], ["get"])],
            [],
        ),
        (
            [rule("prod", ["pods"], ["get"])],
            [WEB_PODS],
            [rbac.Permission("prod", "", "pods", "get")],
        ),
        (
            [rule("web", ["pods"], ["get", "list", "watch"])],
            [WEB_PODS],
            [rbac.Permission("web", "", "pods", "watch")],
        ),
        (
            [rule("web", ["pods", "secrets"], ["get"])],
            [WEB_PODS],
            [rbac.Permission("web", "", "secrets", "get")],
        ),
        (
            [rule("web", ["pods"], ["get"], groups=["", "metrics.k8s.io"])],
            [WEB_PODS],
            [rbac.Permission("web", "metrics.k8s.io", "pods", "get")],
        ),
        (
            [WEB_PODS.model_copy(update={"resource_names": ["web-0"]})],
            [WEB_PODS],
            [],
        ),
        (
            [WEB_PODS],
            [WEB_PODS.model_copy(update={"resource_names": ["web-0"]})],
            [rbac.Permission("web", "", "pods", "get"), rbac.Permission("web", "", "pods", "list")],
        ),
    ],
    ids=[
        "identical-rules-are-a-subset",
        "no-rules-are-a-subset",
        "fewer-verbs-are-a-subset",
        "rule-shapes-do-not-matter-only-permissions",
        "extra-namespace-reported",
        "extra-watch-verb-reported",
        "extra-secrets-reported",
        "extra-api-group-reported",
        "one-named-object-is-within-all-objects",
        "all-objects-are-not-within-one-named-object",
    ],
)
def test_is_subset_reports_what_the_child_has_beyond_the_parent(
    child: list[grant.PolicyRule], parent: list[grant.PolicyRule], beyond: list[rbac.Permission]
) -> None:
    assert rbac.is_subset(child, parent) == beyond


def test_compact_is_the_inverse_of_expand() -> None:
    rules = [
        rule("web", ["pods", "pods/log", "services"], ["get", "list"]),
        rule("web", ["events"], ["list", "watch"]),
        rule("api", ["deployments"], ["get"], groups=["apps"]),
        WEB_PODS.model_copy(update={"resource_names": ["web-0"], "verbs": ["watch"]}),
    ]

    compacted = rbac.compact(rbac.expand(rules))

    assert rbac.expand(compacted) == rbac.expand(rules)
    assert compacted == [
        rule("api", ["deployments"], ["get"], groups=["apps"]),
        rule("web", ["events"], ["list", "watch"]),
        WEB_PODS.model_copy(update={"resource_names": ["web-0"], "verbs": ["watch"]}),
        rule("web", ["pods", "pods/log", "services"], ["get", "list"]),
    ]


def test_intersection_keeps_what_both_grant() -> None:
    a = [rule("web", ["pods", "services"], ["get", "list"])]
    b = [rule("web", ["pods"], ["get", "watch"]), rule("api", ["pods"], ["get"])]

    assert rbac.intersection(a, b) == {rbac.Permission("web", "", "pods", "get")}


@pytest.mark.parametrize(
    ("permission", "text", "base", "sub"),
    [
        (rbac.Permission("web", "", "pods/log", "get"), "get pods/log in web", "pods", "log"),
        (
            rbac.Permission("web", "apps", "deployments", "list"),
            "list deployments.apps in web",
            "deployments",
            "",
        ),
        (
            rbac.Permission("web", "", "pods", "get", "web-0"),
            "get pods 'web-0' in web",
            "pods",
            "",
        ),
    ],
    ids=["core-subresource", "named-group", "one-named-object"],
)
def test_permission_reads_like_kubectl(
    permission: rbac.Permission, text: str, base: str, sub: str
) -> None:
    assert (str(permission), permission.base_resource, permission.subresource) == (text, base, sub)
