"""OIDC sign-in on the approval page, on a control plane that really uses OIDC.

A second local control plane is started with a structured authentication configuration
(``--authentication-config``) trusting a small OIDC issuer served over HTTPS by this test
(:mod:`tests.e2e.oidc`); the real operator runs against it and serves the page. In a real
Chromium, an approver pastes an **id token** into the page's token field and approves; the
approval is recorded as the OIDC user (``oidc:<sub>``), authorized by RBAC bound to the OIDC
group. An OIDC user without the ``approve`` verb sees no button; an id token that expires
while signed in ends the login; an expired id token, one from another issuer, one signed with
another key and one for another audience sign nobody in.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from playwright import sync_api

from agent_authority.cli import dev
from agent_authority.localcluster import assets, cluster
from agent_authority.policy import approval_view
from tests.e2e import agents, oidc, receiver
from tests.e2e import test_approval_page as pages
from tests.e2e.operator_process import OperatorProcess

browser = pages.browser  # the same headless Chromium fixture
APPROVERS = "approvers"  # the OIDC group; the apiserver maps it to ``oidc:approvers``
VIEWERS = "viewers"


@dataclasses.dataclass
class OidcWorld:
    world: pages.World
    issuer: oidc.Issuer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bind_group(admin: Any, name: str, rules: list[dict[str, Any]], group: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": agents.RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "Group", "name": group, "apiGroup": agents.RBAC}],
        }
    )


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc.Issuer]:
    started = oidc.Issuer(tmp_path_factory.mktemp("oidc")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def oidc_cluster(issuer: oidc.Issuer) -> Iterator[cluster.LocalCluster]:
    """A control plane of its own whose apiserver trusts ``issuer`` (no controller manager:
    nothing here needs one, and the machine is shared)."""
    local = cluster.LocalCluster(
        cluster.Options(
            audit_url=f"https://127.0.0.1:{_port()}/audit",
            controller_manager=False,
            jwt_issuers=(issuer.trusted_by_apiserver(),),
        )
    )
    try:
        local.start()
    except (assets.AssetError, cluster.ClusterError) as e:
        pytest.fail(f"the OIDC control plane could not be started:\n{e}", pytrace=False)
    print(f"\n[oidc] control plane with OIDC ready in {local.startup_seconds:.1f} s")
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def oidc_world(
    issuer: oidc.Issuer,
    oidc_cluster: cluster.LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OidcWorld]:
    local = oidc_cluster
    audit_port = int(local.options.audit_url.rsplit(":", 1)[1].split("/")[0])
    env = dev.prepare(local, metrics_port=_port(), webhook_port=_port(), audit_port=audit_port)
    page_port = _port()
    env.options.approvals_port = page_port
    env.options.alert_port = _port()  # never the default port another operator may hold
    operator = OperatorProcess(local, env, tmp_path_factory.mktemp("oidc-op") / "operator.log")
    try:
        operator.start()
    except RuntimeError as e:
        operator.stop()
        pytest.fail(f"the operator could not start on the OIDC cluster: {e}", pytrace=False)
    admin = config.new_client_from_config(config_file=str(local.kubeconfig))
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    ns, shop, people = agents.unique("agents"), agents.unique("shop"), agents.unique("people")
    for name in (ns, shop, people):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local, ns)
    agents.allow_scopes_in(local, shop)
    core.create_namespaced_service_account(people, {"metadata": {"name": "agent-rita"}})
    grant = agents.unique("pager")
    agents.cluster_role(
        admin,
        f"open-{grant}",
        agents.open_sessions_rules(),
        [f"system:serviceaccount:{people}:agent-rita"],
    )
    _bind_group(admin, f"approve-{grant}", pages._approver_rules(grant), f"oidc:{APPROVERS}")
    _bind_group(admin, f"read-{grant}", pages._reader_rules(), f"oidc:{VIEWERS}")
    agents.create_grant(
        admin,
        grant,
        {
            "subjects": [{"kind": "ServiceAccount", "namespace": people, "name": "agent-rita"}],
            "incidents": {"severities": ["SEV1", "SEV2"]},
            "read": [
                {
                    "name": "apps",
                    "namespaces": [shop],
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                }
            ],
            "remediations": [
                {
                    "action": "scale-workload",
                    "namespaces": [shop],
                    "autonomy": "propose",
                    "limits": {"maxReplicasDelta": 3},
                }
            ],
            "approval": {"requiredApprovals": {"reversible": 1, "irreversible": 2}},
        },
    )
    apps.create_namespaced_deployment(shop, agents.deployment("web", 3))
    agents.wait_for(
        lambda: pages._healthy(f"http://127.0.0.1:{page_port}"), 30, "the approval page"
    )
    world = pages.World(
        local=local,
        admin=admin,
        ns=ns,
        shop=shop,
        other=shop,
        people=people,
        grant=grant,
        url=f"http://127.0.0.1:{page_port}",
        operator=operator,
        receiver=receiver.Receiver(),  # not started: this module sends no notifications
        tokens={"agent-rita": pages._token(admin, people, "agent-rita")},
    )
    try:
        yield OidcWorld(world, issuer)
    finally:
        operator.stop()
        world.receiver.server.server_close()


def _who(local: cluster.LocalCluster, token: str) -> tuple[str, list[str]]:
    review = client.AuthenticationV1Api(
        agents.token_client(local, token)
    ).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    info = review.status.user_info
    return str(info.username), list(info.groups or [])


def _refused_at_sign_in(browser: sync_api.Browser, w: pages.World, token: str) -> str:
    page = browser.new_context().new_page()
    page.goto(f"{w.url}/login")
    page.fill("#token", token)
    page.click("form[action='/login'] button")
    error = page.locator("#error").inner_text()
    page.goto(f"{w.url}/")
    assert page.url == f"{w.url}/login", "signed in with a token the apiserver refused"
    page.context.close()
    return error


def test_the_apiserver_itself_authenticates_the_issuers_id_tokens(oidc_world: OidcWorld) -> None:
    w, issuer = oidc_world.world, oidc_world.issuer
    username, groups = _who(w.local, issuer.id_token("alice", [APPROVERS]))
    assert username == "oidc:alice"
    assert f"oidc:{APPROVERS}" in groups
    assert "/.well-known/openid-configuration" in issuer.requests  # discovery was really used


def test_an_approver_signs_in_with_an_id_token_and_approves_as_the_oidc_user(
    oidc_world: OidcWorld, browser: sync_api.Browser
) -> None:
    w, issuer = oidc_world.world, oidc_world.issuer
    s = pages._session(w)
    name = pages._ask(w, s, pages._scale(w.shop, 4))
    pages._phase(w, name, {"AwaitingApproval"})

    page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
    page.goto(f"{w.url}/login")
    assert page.locator("label[for=token]").inner_text() == "Bearer token or OIDC id token"
    page.fill("#token", issuer.id_token("alice", [APPROVERS]))
    page.click("form[action='/login'] button")
    page.wait_for_url(f"{w.url}/")
    assert "oidc:alice" in page.locator("header").inner_text()
    assert page.locator(f"#pending tr.request[data-name='{name}']").count() == 1
    pages._screenshot(page, "oidc-list.png")

    pages._open(page, w, name)
    assert page.locator("button.approve").count() == 1
    page.fill("#reason", "approved with my OIDC identity")
    page.click("button.approve")
    page.wait_for_url(f"{w.url}/requests/{w.ns}/{name}?recorded=approval")

    done = pages._phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    (approval,) = done["status"]["approvals"]
    assert approval["approver"]["username"] == "oidc:alice"  # stamped by the webhook
    assert f"oidc:{APPROVERS}" in approval["approver"]["groups"]
    assert approval["reason"] == "approved with my OIDC identity"
    assert pages._replicas(w, w.shop) == 4
    page.context.close()


def test_an_oidc_user_without_the_approve_verb_sees_no_button(
    oidc_world: OidcWorld, browser: sync_api.Browser
) -> None:
    w, issuer = oidc_world.world, oidc_world.issuer
    s = pages._session(w)
    name = pages._ask(w, s, pages._scale(w.shop, 5))
    pages._phase(w, name, {"AwaitingApproval"})
    page = pages._sign_in(browser, w, issuer.id_token("bob", [VIEWERS]))
    assert page.locator(f"#pending tr.request[data-name='{name}']").count() == 1  # may read
    pages._open(page, w, name)
    assert page.locator("#decide").count() == 0
    assert page.locator("button.approve").count() == 0
    assert page.locator("#why").inner_text() == approval_view.not_an_approver("oidc:bob", w.grant)
    status, page = pages._forge(
        page,
        f"/requests/{w.ns}/{name}/decide",
        {"csrf": pages._csrf(page), "decision": "approve", "reason": "let me"},
    )
    assert status == 403
    assert "may not approve or deny requests" in page.locator("#error").inner_text()
    assert not pages._request(w, name)["status"].get("approvals")
    page.context.close()


def test_an_expiring_id_token_signs_its_person_out_at_the_next_step(
    oidc_world: OidcWorld, browser: sync_api.Browser
) -> None:
    """The page keeps no identity of its own: once the apiserver stops accepting the id token
    (its ``exp`` passed), the next page signs the person out and says why."""
    w, issuer = oidc_world.world, oidc_world.issuer
    token = issuer.id_token("carol", [VIEWERS], lifetime=600, issued_ago=585)  # 15 s left
    page = pages._sign_in(browser, w, token)
    assert "oidc:carol" in page.locator("header").inner_text()

    def signed_out() -> bool:
        page.goto(f"{w.url}/")
        return page.url.startswith(f"{w.url}/login")

    agents.wait_for(signed_out, 90, "the expired id token to sign carol out", every=1)
    assert "no longer authenticates" in page.locator("#error").inner_text()
    page.context.close()


@pytest.mark.parametrize(
    "case",
    ["expired", "from-another-issuer", "forged-with-another-key", "for-another-audience"],
)
def test_an_id_token_the_apiserver_does_not_trust_signs_nobody_in(
    oidc_world: OidcWorld, browser: sync_api.Browser, case: str
) -> None:
    w, issuer = oidc_world.world, oidc_world.issuer
    if case == "expired":
        token = issuer.id_token("alice", [APPROVERS], lifetime=600, issued_ago=3600)
    elif case == "from-another-issuer":
        token = oidc.foreign_token("alice", [APPROVERS])
    elif case == "forged-with-another-key":
        token = oidc.forged_token(issuer, "alice", [APPROVERS])
    else:
        token = issuer.id_token("alice", [APPROVERS], audience="some-other-client")
    error = _refused_at_sign_in(browser, w, token)
    assert error.startswith("token: the apiserver did not accept it"), error
