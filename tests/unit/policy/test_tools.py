"""Which MCP tools a session's rules allow, and whether one call is inside them."""

from __future__ import annotations

import pytest

from agent_authority.models import grant
from agent_authority.policy import tools


def rule(
    namespace: str, resources: list[str], verbs: list[str], group: str = ""
) -> grant.PolicyRule:
    return grant.PolicyRule(
        namespace=namespace, api_groups=[group], resources=resources, verbs=verbs
    )


PODS = rule("shop", ["pods", "pods/log"], ["get", "list"])
DEPLOYS = rule("shop", ["deployments"], ["get"], "apps")
EVENTS = rule("shop", ["events"], ["list"])
NAMED = grant.PolicyRule(
    namespace="shop",
    api_groups=[""],
    resources=["configmaps"],
    verbs=["get"],
    resource_names=["checkout-config"],
)


@pytest.mark.parametrize(
    ("rules", "present", "absent"),
    [
        pytest.param(
            None, ["open_session"], ["get_resource", "end_session"], id="no-session-only-open"
        ),
        pytest.param(
            [DEPLOYS],
            ["get_resource", "end_session"],
            ["list_resources", "pod_logs", "events"],
            id="get-only",
        ),
        pytest.param(
            [PODS], ["list_resources", "get_resource", "pod_logs"], ["events"], id="pods-and-logs"
        ),
        pytest.param([EVENTS], ["events", "list_resources"], ["pod_logs"], id="events"),
        pytest.param(
            [], ["propose_remediation", "session_status"], ["get_resource"], id="no-reads"
        ),
    ],
)
def test_offered(
    rules: list[grant.PolicyRule] | None, present: list[str], absent: list[str]
) -> None:
    offered = tools.offered(rules)
    assert set(present) <= set(offered)
    assert not set(absent) & set(offered)


@pytest.mark.parametrize(
    ("verb", "group", "resource", "namespace", "name", "expected"),
    [
        pytest.param("get", "", "pods", "shop", "web-1", True, id="get-pod-in-scope"),
        pytest.param("get", "", "pods", "kube-system", "x", False, id="other-namespace"),
        pytest.param("get", "", "secrets", "shop", "db", False, id="secrets-not-listed"),
        pytest.param("list", "apps", "deployments", "shop", None, False, id="verb-not-granted"),
        pytest.param("get", "", "deployments", "shop", "x", False, id="wrong-group"),
        pytest.param("get", "", "configmaps", "shop", "checkout-config", True, id="named-object"),
        pytest.param("get", "", "configmaps", "shop", "other", False, id="other-name"),
        pytest.param("get", "", "pods/log", "shop", "web-1", True, id="logs"),
    ],
)
def test_allows(
    verb: str, group: str, resource: str, namespace: str, name: str | None, expected: bool
) -> None:
    rules = [PODS, DEPLOYS, NAMED]
    assert (
        tools.allows(
            rules, verb=verb, api_group=group, resource=resource, namespace=namespace, name=name
        )
        is expected
    )


def test_a_refusal_says_it_was_not_sent_and_what_is_allowed() -> None:
    message = tools.refusal([PODS], verb="get", api_group="", resource="pods", namespace="prod")
    assert message is not None
    assert "not sent to the cluster" in message
    assert "get/list pods,pods/log in shop" in message


def test_readable_groups_resources_with_their_namespaces() -> None:
    found = tools.readable([PODS, rule("web", ["pods"], ["get"])])
    pods = next(r for r in found if r.resource == "pods")
    assert pods.namespaces == ("shop", "web")
