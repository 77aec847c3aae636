"""Where the operator may give a session access: what it needs, and how a lack is refused."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from agent_authority.policy import rbac, reach

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _role_rules(path: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / path).read_text())
    role = next(d for d in docs if d and d["kind"] == "Role")
    found: list[dict[str, Any]] = role["rules"]
    return found


def _grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


@pytest.mark.parametrize(
    ("path", "needs"),
    [
        pytest.param(reach.SESSION_ROLE_FILE, reach.SESSION_NAMESPACE_NEEDS, id="session-role"),
        pytest.param(reach.SCOPE_ROLE_FILE, reach.SCOPE_NAMESPACE_NEEDS, id="scope-role"),
    ],
)
def test_each_installed_role_grants_what_the_operator_checks_for(
    path: str, needs: tuple[tuple[str, str, str], ...]
) -> None:
    rules = _role_rules(path)
    for group, resource, verb in needs:
        assert _grants(rules, group, resource, verb), (path, group, resource, verb)


def test_the_scope_role_writes_nothing_but_roles_and_rolebindings() -> None:
    rules = _role_rules(reach.SCOPE_ROLE_FILE)
    assert {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]} == {
        (reach.RBAC_GROUP, "roles"),
        (reach.RBAC_GROUP, "rolebindings"),
    }


def test_needed_asks_the_session_namespace_once_and_each_scope_namespace() -> None:
    needed = reach.needed("agents", ["shop", "agents", "db", "shop"])
    by_ns: dict[str, set[tuple[str, str, str]]] = {}
    for p in needed:
        by_ns.setdefault(p.namespace, set()).add((p.api_group, p.resource, p.verb))
    assert by_ns == {
        "agents": set(reach.SESSION_NAMESPACE_NEEDS),
        "db": set(reach.SCOPE_NAMESPACE_NEEDS),
        "shop": set(reach.SCOPE_NAMESPACE_NEEDS),
    }
    assert len(needed) == len(set(needed))


def _lacks(namespace: str, resource: str, verb: str = "create") -> rbac.Permission:
    group = "" if resource in {"serviceaccounts", "secrets"} else reach.RBAC_GROUP
    return rbac.Permission(namespace=namespace, api_group=group, resource=resource, verb=verb)


CASES = [
    pytest.param([], {}, None, [], id="nothing-missing-admits"),
    pytest.param(
        [_lacks("agents", "serviceaccounts"), _lacks("shop", "roles")],
        {},
        reach.Reason.SESSION_NAMESPACE_NOT_ENABLED,
        ["'agents'", "create serviceaccounts", reach.SESSION_ROLE_FILE, "sessionNamespaces"],
        id="no-session-role-is-decided-first-naming-the-session-namespace",
    ),
    pytest.param(
        [_lacks("shop", "roles"), _lacks("shop", "rolebindings", "delete"), _lacks("db", "roles")],
        {},
        reach.Reason.SCOPE_NAMESPACES_NOT_ENABLED,
        [
            "'db', 'shop'",
            "create roles, delete rolebindings",
            reach.SCOPE_ROLE_FILE,
            "scopeNamespaces",
            "nothing was created",
        ],
        id="no-scope-role-names-every-namespace-and-what-it-lacks",
    ),
    pytest.param(
        [_lacks("prod-2", "roles")],
        {"by-label": ["prod-1", "prod-2"]},
        reach.Reason.SCOPE_NAMESPACES_NOT_ENABLED,
        ["'prod-2' (selected by the namespaceSelector of scope 'by-label')"],
        id="a-selected-namespace-refuses-and-says-which-selector-chose-it",
    ),
]


@pytest.mark.parametrize(("missing", "resolved", "reason", "words"), CASES)
def test_refusal(
    missing: list[rbac.Permission],
    resolved: dict[str, list[str]],
    reason: reach.Reason | None,
    words: list[str],
) -> None:
    refused = reach.refusal("agents", missing, resolved)
    if reason is None:
        assert refused is None
        return
    assert refused is not None
    assert refused.reason is reason
    for word in words:
        assert word in refused.message, (word, refused.message)
