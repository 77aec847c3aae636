"""What a grant's remediations delegate: the writes its author must already hold."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import grant
from agent_authority.policy import delegation, rbac


def _grant(*remediations: dict[str, Any]) -> grant.AgentGrantSpec:
    return grant.AgentGrantSpec.model_validate(
        {
            "subjects": [{"kind": "User", "name": "agent"}],
            "incidents": {"severities": ["SEV1"]},
            "remediations": list(remediations),
        }
    )


def P(namespace: str, group: str, resource: str, verb: str) -> rbac.Permission:
    return rbac.Permission(namespace, group, resource, verb)


CASES = [
    pytest.param(
        [{"action": "scale-workload", "namespaces": ["shop"], "autonomy": "auto"}],
        ["shop"],
        [P("shop", "apps", "deployments", "patch"), P("shop", "apps", "statefulsets", "patch")],
        id="auto-scale-delegates-patching-workloads-in-its-namespaces",
    ),
    pytest.param(
        [{"action": "delete-pod", "autonomy": "propose"}],
        ["a", "b"],
        [P("a", "", "pods", "delete"), P("b", "", "pods", "delete")],
        id="an-entry-without-namespaces-covers-the-read-namespaces",
    ),
    pytest.param(
        [{"action": "delete-pod"}],
        [""],
        [P("", "", "pods", "delete")],
        id="selector-read-scopes-make-it-every-namespace",
    ),
    pytest.param(
        [{"action": "cordon-node", "namespaces": ["shop"]}],
        ["shop"],
        [P("", "", "nodes", "patch")],
        id="node-actions-are-cluster-scoped",
    ),
    pytest.param(
        [{"action": "suspend-cronjob", "namespaces": ["shop"], "autonomy": "never"}],
        ["shop"],
        [],
        id="autonomy-never-delegates-nothing",
    ),
    pytest.param(
        [
            {"action": "rollback-deployment", "namespaces": ["shop"]},
            {"action": "restart-workload", "namespaces": ["shop"]},
        ],
        ["shop"],
        [
            P("shop", "apps", "daemonsets", "patch"),
            P("shop", "apps", "deployments", "patch"),
            P("shop", "apps", "statefulsets", "patch"),
        ],
        id="overlapping-entries-are-counted-once",
    ),
]


@pytest.mark.parametrize(("entries", "read_namespaces", "expected"), CASES)
def test_remediation_permissions(
    entries: list[dict[str, Any]], read_namespaces: list[str], expected: list[rbac.Permission]
) -> None:
    spec = _grant(*entries)
    assert delegation.remediation_permissions(spec, read_namespaces) == expected


def test_every_action_type_has_its_permissions() -> None:
    assert set(delegation.ACTION_PERMISSIONS) == set(grant.ActionType)
