"""The three CRDs on a real apiserver: served, examples accepted, bad input refused by name."""

from __future__ import annotations

import copy
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from agent_authority.kube import manifests
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLURALS = {
    "AgentGrant": "agentgrants",
    "IncidentSession": "incidentsessions",
    "RemediationRequest": "remediationrequests",
}


@pytest.fixture(scope="module")
def bare() -> Iterator[Any]:
    """A control plane of this module's own, with the CRDs and without the operator.

    These tests are about what the apiserver itself refuses (schema, CEL); with the operator's
    admission webhooks registered — by whichever earlier test started it — the valid objects they
    create as cluster-admin would be refused as not coming from a grant subject or a session.
    """
    local = cluster.LocalCluster().start()
    try:
        api = config.new_client_from_config(config_file=str(local.kubeconfig))
        manifests.install_crds(api, sorted((ROOT / "crds").glob("*.yaml")))
        yield api
    finally:
        local.stop()


@pytest.fixture
def admin(bare: Any) -> Any:
    return bare


@pytest.fixture
def crds(bare: Any) -> list[str]:
    return [f"{p}.{GROUP}" for p in PLURALS.values()]


@pytest.fixture
def namespace(bare: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(bare).create_namespace(client.V1Namespace(metadata={"name": name}))
    return name


def _example(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / name).read_text())
    assert isinstance(doc, dict)
    return doc


GRANT = _example("agentgrant-sre-bot.yaml")
SESSION = _example("incidentsession-checkout-latency.yaml")
REQUEST = _example("remediationrequest-scale-checkout.yaml")


def _create(api: client.CustomObjectsApi, body: dict[str, Any], namespace: str) -> Any:
    plural = PLURALS[body["kind"]]
    if body["kind"] == "AgentGrant":
        return api.create_cluster_custom_object(
            GROUP, VERSION, plural, body, field_validation="Strict"
        )
    body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
    return api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body, field_validation="Strict"
    )


def _refusal(e: client.ApiException) -> str:
    try:
        return str(json.loads(e.body).get("message", e.body))
    except (TypeError, ValueError):
        return str(e.body)


def test_the_three_crds_are_served(admin: client.ApiClient, crds: list[str]) -> None:
    resources = client.CustomObjectsApi(admin).get_api_resources(GROUP, VERSION)
    served = {r.name: r for r in resources.resources}
    assert {"agentgrants", "incidentsessions", "remediationrequests"} <= set(served)
    assert served["agentgrants"].namespaced is False
    assert served["incidentsessions"].namespaced is True
    assert "agentgrants/status" in served
    assert "remediationrequests/status" in served
    assert "isess" in (served["incidentsessions"].short_names or [])


def test_examples_are_accepted(admin: client.ApiClient, crds: list[str], namespace: str) -> None:
    api = client.CustomObjectsApi(admin)
    grant = copy.deepcopy(GRANT)
    grant["metadata"]["name"] = f"example-{namespace}"
    try:
        created = [_create(api, grant, namespace)]
        created.append(_create(api, SESSION, namespace))
        created.append(_create(api, REQUEST, namespace))
        assert [c["kind"] for c in created] == [
            "AgentGrant",
            "IncidentSession",
            "RemediationRequest",
        ]
        # Defaults from the models are applied by the apiserver (structural schema defaults).
        assert created[0]["spec"]["remediations"][1]["requireEvidence"] is True
    finally:
        api.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", grant["metadata"]["name"])


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set (``[n]`` indexes lists); DELETE removes."""
    out = copy.deepcopy(body)
    node: Any = out
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


DELETE = object()

INVALID_ON_CREATE = [
    pytest.param(
        GRANT, "spec.subjects", DELETE, "spec.subjects: Required value", id="grant-without-subjects"
    ),
    pytest.param(
        GRANT,
        "spec.incidents.severities[0]",
        "SEV9",
        "spec.incidents.severities[0]: Invalid value: \"SEV9\": 'SEV9' is not supported",
        id="grant-bad-severity",
    ),
    pytest.param(
        GRANT,
        "spec.subjects[0].namespace",
        DELETE,
        "spec.subjects[0].namespace: Invalid value",
        id="grant-sa-subject-without-namespace",
    ),
    pytest.param(
        GRANT,
        "spec.read[0].verbs",
        ["get", "delete"],
        "spec.read[0].verbs[1]: Invalid value: \"delete\": 'delete' is not supported",
        id="grant-write-verb-in-read",
    ),
    pytest.param(
        GRANT,
        "spec.read[0].namespaceSelector",
        {"matchLabels": {"team": "shop"}},
        "exactly one of namespaces or namespaceSelector",
        id="grant-scope-two-namespace-kinds",
    ),
    pytest.param(
        GRANT,
        "spec.session.maxTtlSeconds",
        5,
        "spec.session.maxTtlSeconds: Invalid value",
        id="grant-max-ttl-below-bound",
    ),
    pytest.param(
        GRANT,
        "spec.remediations[0].autonomy",
        "yolo",
        "spec.remediations[0].autonomy: Invalid value: \"yolo\": 'yolo' is not supported",
        id="grant-bad-autonomy",
    ),
    pytest.param(
        SESSION,
        "spec.ttlSeconds",
        5,
        "spec.ttlSeconds: Invalid value",
        id="session-ttl-below-minimum",
    ),
    pytest.param(
        SESSION,
        "spec.ttlSeconds",
        100000,
        "spec.ttlSeconds: Invalid value",
        id="session-ttl-above-maximum",
    ),
    pytest.param(
        SESSION,
        "spec.incident",
        DELETE,
        "spec.incident: Required value",
        id="session-without-incident",
    ),
    pytest.param(
        SESSION,
        "spec.incident.class",
        "Not A Label",
        "spec.incident.class: Invalid value",
        id="session-class-not-a-label",
    ),
    pytest.param(
        SESSION,
        "spec.incident.url",
        "ftp://x",
        "spec.incident.url: Invalid value",
        id="session-url-not-http",
    ),
    pytest.param(
        SESSION, "spec.surprise", "x", 'unknown field "spec.surprise"', id="session-unknown-field"
    ),
    pytest.param(
        REQUEST,
        "spec.evidence[0].sha256",
        "not-a-digest",
        "spec.evidence[0].sha256: Invalid value",
        id="request-malformed-digest",
    ),
    pytest.param(
        REQUEST,
        "spec.evidence[0].sha256",
        "A" * 64,
        "spec.evidence[0].sha256: Invalid value",
        id="request-uppercase-digest",
    ),
    pytest.param(
        REQUEST,
        "spec.evidence[0].kind",
        "rumour",
        "spec.evidence[0].kind: Invalid value: \"rumour\": 'rumour' is not supported",
        id="request-bad-evidence-kind",
    ),
    pytest.param(
        REQUEST,
        "spec.action.type",
        "drop-database",
        "spec.action.type: Invalid value: \"drop-database\": 'drop-database' is not supported",
        id="request-unknown-action",
    ),
    pytest.param(
        REQUEST,
        "spec.action.target",
        {"kind": "Node", "namespace": "shop", "name": "n1"},
        "spec.action.target.namespace: Invalid value",
        id="request-node-target-with-namespace",
    ),
    pytest.param(
        REQUEST,
        "spec.hypothesis",
        DELETE,
        "spec.hypothesis: Required value",
        id="request-without-hypothesis",
    ),
]


@pytest.mark.parametrize(("base", "path", "value", "message"), INVALID_ON_CREATE)
def test_every_rule_is_checked_whatever_else_is_wrong(
    admin: client.ApiClient,
    crds: list[str],
    namespace: str,
    base: dict[str, Any],
    path: str,
    value: Any,
    message: str,
) -> None:
    """No refusal carries the apiserver's "some validation rules were not checked" cause."""
    api = client.CustomObjectsApi(admin)
    body = _set(base, path, value)
    if body["kind"] == "AgentGrant":
        body["metadata"]["name"] = f"checked-{namespace}"
    with pytest.raises(client.ApiException) as refused:
        _create(api, body, namespace)
    text = _refusal(refused.value)
    assert "were not checked" not in text
    assert "<nil>" not in text


def test_several_mistakes_are_all_reported_each_with_its_field(
    admin: client.ApiClient, crds: list[str], namespace: str
) -> None:
    body = _set(_set(SESSION, "spec.incident.severity", "SEV9"), "spec.purpose", DELETE)
    body = _set(body, "spec.ttlSeconds", 999999)
    with pytest.raises(client.ApiException) as refused:
        _create(client.CustomObjectsApi(admin), body, namespace)
    text = _refusal(refused.value)
    assert "spec.incident.severity: Invalid value: \"SEV9\": 'SEV9' is not supported" in text
    assert "spec.purpose: Required value: purpose is required" in text
    assert "spec.ttlSeconds: Invalid value: 999999: must be at most the grant's" in text
    assert "spec.session.maxTtlSeconds" in text
    assert "were not checked" not in text


@pytest.mark.parametrize(("base", "path", "value", "message"), INVALID_ON_CREATE)
def test_invalid_objects_are_refused_naming_the_field(
    admin: client.ApiClient,
    crds: list[str],
    namespace: str,
    base: dict[str, Any],
    path: str,
    value: Any,
    message: str,
) -> None:
    api = client.CustomObjectsApi(admin)
    body = _set(base, path, value)
    if body["kind"] == "AgentGrant":
        body["metadata"]["name"] = f"invalid-{namespace}"
    with pytest.raises(client.ApiException) as refused:
        _create(api, body, namespace)
    # 422 Invalid for schema/CEL violations, 400 for strict decoding (unknown fields).
    assert refused.value.status in (400, 422), _refusal(refused.value)
    assert message in _refusal(refused.value)


INVALID_UPDATES = [
    pytest.param(
        SESSION,
        "spec.grantRef.name",
        "another-grant",
        "grantRef is immutable",
        id="session-grant-ref-immutable",
    ),
    pytest.param(
        SESSION,
        "spec.incident.severity",
        "SEV1",
        "incident is immutable",
        id="session-incident-immutable",
    ),
    pytest.param(
        SESSION,
        "spec.parentSession",
        "someone-else",
        "parentSession is immutable",
        id="session-parent-cannot-be-added",
    ),
    pytest.param(
        SESSION,
        "spec.ttlSeconds",
        3000,
        "ttlSeconds is immutable",
        id="session-ttl-cannot-be-extended",
    ),
    pytest.param(
        REQUEST, "spec.action.params.replicas", 40, "spec is immutable", id="request-spec-immutable"
    ),
    pytest.param(
        REQUEST,
        "spec.hypothesis",
        "changed my mind",
        "spec is immutable",
        id="request-hypothesis-immutable",
    ),
]


@pytest.mark.parametrize(("base", "path", "value", "message"), INVALID_UPDATES)
def test_immutable_fields_cannot_change(
    admin: client.ApiClient,
    crds: list[str],
    namespace: str,
    base: dict[str, Any],
    path: str,
    value: Any,
    message: str,
) -> None:
    api = client.CustomObjectsApi(admin)
    created = _create(api, base, namespace)
    changed = _set(created, path, value)
    with pytest.raises(client.ApiException) as refused:
        api.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[base["kind"]], base["metadata"]["name"], changed
        )
    assert refused.value.status == 422, _refusal(refused.value)
    assert message in _refusal(refused.value)


def test_an_ended_session_cannot_be_reopened(
    admin: client.ApiClient, crds: list[str], namespace: str
) -> None:
    api = client.CustomObjectsApi(admin)
    name = SESSION["metadata"]["name"]
    _create(api, _set(SESSION, "spec.ended", True), namespace)
    with pytest.raises(client.ApiException) as refused:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "incidentsessions", name, {"spec": {"ended": False}}
        )
    assert refused.value.status == 422
    assert "ended cannot be set back to false" in _refusal(refused.value)
