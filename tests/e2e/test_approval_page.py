"""The approval page in a real headless Chromium, served by the real operator on the real
apiserver: people sign in with bearer tokens, and their decisions are written as themselves, so
the approval webhook's rules hold in the browser too. Notifications reach a local receiver in
each format, signed, and a dead receiver delays nothing.

Screenshots of the list and detail pages are kept under ``test-artifacts/approvals/``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from playwright import sync_api

from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from agent_authority.notify import formats
from agent_authority.policy import approval_view
from tests.e2e import agents, receiver
from tests.e2e.operator_process import OperatorProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "approvals"
SECRET = b"test-hmac-secret-0123456789"
EVIDENCE = [
    {
        "kind": "log",
        "source": "loki: {app=web}",
        "excerpt": "upstream timeout after 30s (x412)",
        "sha256": "b" * 64,
        "observedAt": "2026-11-21T07:00:00Z",
    }
]


@dataclasses.dataclass
class World:
    local: cluster.LocalCluster
    admin: Any
    ns: str
    shop: str
    other: str
    people: str
    grant: str
    url: str
    operator: OperatorProcess
    receiver: receiver.Receiver
    tokens: dict[str, str]

    def user(self, name: str) -> str:
        return f"system:serviceaccount:{self.people}:{name}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(admin: Any, namespace: str, account: str) -> str:
    review = client.CoreV1Api(admin).create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    return str(review.status.token)


def _reader_rules() -> list[dict[str, Any]]:
    return [
        *agents.request_status_rules(),
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
    ]


def _approver_rules(grant: str) -> list[dict[str, Any]]:
    return [*_reader_rules(), agents.approve_rule(grant)]


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    found = subprocess.run(
        [str(ROOT / "hack" / "chromium")], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(f"no Chromium for the browser tests:\n{found.stderr}", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=found.stdout.strip(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def world(
    local_cluster: cluster.LocalCluster,
    admin: Any,
    operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    ns, shop = agents.unique("agents"), agents.unique("shop")
    other, people = agents.unique("other"), agents.unique("people")
    for name in (ns, shop, other, people):
        core.create_namespace({"metadata": {"name": name}})
    agents.allow_sessions_in(local_cluster, ns)
    agents.allow_scopes_in(local_cluster, shop)  # the scopes read there
    accounts = ("oncall-1", "oncall-2", "bystander", "agent-rita")
    for account in accounts:
        core.create_namespaced_service_account(people, {"metadata": {"name": account}})
    grant = agents.unique("pager")
    sa = f"system:serviceaccount:{people}:"
    agents.cluster_role(admin, f"open-{grant}", agents.open_sessions_rules(), [f"{sa}agent-rita"])
    agents.cluster_role(
        admin, f"approve-{grant}", _approver_rules(grant), [f"{sa}oncall-1", f"{sa}oncall-2"]
    )
    agents.cluster_role(admin, f"read-{grant}", _reader_rules(), [f"{sa}bystander"])
    agents.create_grant(
        admin,
        grant,
        agents.remediation_grant_spec(
            [{"kind": "ServiceAccount", "namespace": people, "name": "agent-rita"}],
            shop,
            [
                {
                    "action": "scale-workload",
                    "namespaces": [shop],
                    "autonomy": "propose",
                    "limits": {"maxReplicasDelta": 3},
                },
                {"action": "restart-workload", "namespaces": [shop], "autonomy": "propose"},
            ],
            approval_timeout=600,
            max_ttl=900,
        ),
    )
    for namespace in (shop, other):
        apps.create_namespaced_deployment(namespace, agents.deployment("web", 3))

    sink = receiver.Receiver().start()
    folder = tmp_path_factory.mktemp("notify")
    (folder / "hmac").write_bytes(SECRET)
    page_port = _free_port()
    url = f"http://127.0.0.1:{page_port}"
    (folder / "receivers.yaml").write_text(
        json.dumps(
            {
                "pageUrl": url,
                "delivery": {
                    "attempts": 3,
                    "initialBackoffSeconds": 0.2,
                    "maxBackoffSeconds": 0.4,
                    "timeoutSeconds": 2,
                    "queueSize": 50,
                },
                "receivers": [
                    {"name": "slack", "format": "slack", "url": f"{sink.url}/slack"},
                    {"name": "teams", "format": "teams", "url": f"{sink.url}/teams"},
                    {
                        "name": "siem",
                        "format": "json",
                        "url": f"{sink.url}/json",
                        "secretFile": str(folder / "hmac"),
                    },
                    {"name": "dead", "format": "slack", "url": f"{sink.url}{receiver.FAILING}"},
                ],
            }
        )
    )
    options = operator.env.options
    options.approvals_port, options.notify_config = page_port, str(folder / "receivers.yaml")
    operator.restart()
    agents.wait_for(lambda: _healthy(url), 30, "the approval page to answer")
    tokens = {a: _token(admin, people, a) for a in accounts}
    try:
        yield World(
            local_cluster, admin, ns, shop, other, people, grant, url, operator, sink, tokens
        )
    finally:
        options.approvals_port, options.notify_config = 0, None
        operator.restart()
        sink.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclasses.dataclass
class Session:
    name: str
    token: str
    account: str


def _session(w: World) -> Session:
    name = agents.unique("s")
    agent = agents.token_client(w.local, w.tokens["agent-rita"])
    body = agents.active_session(agent, w.admin, w.ns, agents.session_body(name, w.grant))
    return Session(
        name,
        agents.token_of(w.admin, w.ns, body),
        f"system:serviceaccount:{w.ns}:{body['status']['serviceAccountName']}",
    )


def _ask(
    w: World,
    s: Session,
    action: dict[str, Any],
    hypothesis: str = "web is saturated: one more replica takes the load",
) -> str:
    name = agents.unique("rr")
    agents.create_request(
        agents.token_client(w.local, s.token),
        w.ns,
        name,
        agents.request_spec(s.name, action, hypothesis, EVIDENCE),
    )
    return name


def _scale(namespace: str, replicas: int) -> dict[str, Any]:
    return {
        "type": "scale-workload",
        "target": {"kind": "Deployment", "namespace": namespace, "name": "web"},
        "params": {"replicas": replicas},
    }


def _restart(namespace: str) -> dict[str, Any]:
    return {
        "type": "restart-workload",
        "target": {"kind": "Deployment", "namespace": namespace, "name": "web"},
    }


def _request(w: World, name: str) -> dict[str, Any]:
    return agents.get_request(w.admin, w.ns, name)


def _phase(w: World, name: str, phases: set[str], timeout: float = 30) -> dict[str, Any]:
    return agents.wait_request_phase(w.admin, w.ns, name, phases, timeout)


def _replicas(w: World, namespace: str) -> int:
    return int(client.AppsV1Api(w.admin).read_namespaced_deployment("web", namespace).spec.replicas)


def _sign_in(browser: sync_api.Browser, w: World, token: str) -> sync_api.Page:
    page = browser.new_context(viewport={"width": 420, "height": 900}).new_page()
    page.goto(f"{w.url}/login")
    page.fill("#token", token)
    page.click("form[action='/login'] button")
    page.wait_for_url(f"{w.url}/")
    return page


def _open(page: sync_api.Page, w: World, name: str) -> None:
    page.goto(f"{w.url}/requests/{w.ns}/{name}")


def _forge(page: sync_api.Page, action: str, fields: dict[str, str]) -> tuple[int, sync_api.Page]:
    """Submit a form the page did not offer, from inside the signed-in browser."""
    script = """([action, fields]) => {
        const form = document.createElement('form');
        form.method = 'post'; form.action = action;
        for (const [k, v] of Object.entries(fields)) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = k; input.value = v; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
    }"""
    with page.expect_navigation() as navigation:
        page.evaluate(script, [action, fields])
    response = navigation.value
    assert response is not None
    return response.status, page


def _csrf(page: sync_api.Page) -> str:
    value = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    assert value
    return value


def _screenshot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\n[approvals] screenshot: {path}")


# -- approving in the browser --------------------------------------------------------------------


def test_an_approver_sees_the_diff_approves_and_the_change_is_applied(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 4))
    _phase(w, name, {"AwaitingApproval"})
    page = _sign_in(browser, w, w.tokens["oncall-1"])

    row = page.locator(f"#pending tr.request[data-name='{name}']")
    assert row.count() == 1
    text = row.inner_text()
    for shown in ("scale-workload", f"Deployment/{w.shop}/web", "INC-1", "SEV2", "0 of 1"):
        assert shown in text, (shown, text)
    assert "1 pod(s)" in text or "Δreplicas 1" in text
    _screenshot(page, "list.png")

    row.locator("a").click()
    page.wait_for_url(f"{w.url}/requests/{w.ns}/{name}")
    diff = page.locator("#diff").inner_text()
    assert "replicas: 3" in diff, diff
    assert "replicas: 4" in diff, diff
    assert page.locator("#diff .del").count() >= 1
    assert page.locator("#diff .add").count() >= 1
    assert "one more replica" in page.locator("#hypothesis").inner_text()
    assert "b" * 64 in page.content()
    assert "upstream timeout" in page.content()
    assert "scale-workload" in page.locator("#inverse").inner_text()  # the recorded undo
    assert s.name in page.locator("#facts").inner_text()
    assert page.locator("#activity tr").count() > 1  # the request's and session's Events
    _screenshot(page, "detail.png")

    page.fill("#reason", "latency SLO burning; scale-out is reversible")
    page.click("button.approve")
    page.wait_for_url(f"{w.url}/requests/{w.ns}/{name}?recorded=approval")
    assert "recorded" in page.locator("#message").inner_text()

    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    approval = done["status"]["approvals"][0]
    assert approval["approver"]["username"] == w.user("oncall-1")  # stamped by the webhook
    assert approval["reason"] == "latency SLO burning; scale-out is reversible"
    assert _replicas(w, w.shop) == 4

    page.reload()
    assert page.locator("#decide").count() == 0
    assert "already decided" in page.locator("#why").inner_text()
    page.goto(f"{w.url}/")
    decided = page.locator(f"#decided tr.request[data-name='{name}']").inner_text()
    assert "Succeeded" in decided
    assert f"{w.user('oncall-1')} (approve)" in decided


def test_the_requester_and_the_session_identity_are_refused_with_the_webhooks_reason(
    world: World, browser: sync_api.Browser
) -> None:
    """Even with the approve verb (a misconfigured RBAC), an agent cannot approve its own request:
    the page shows no button and says why; a forged form is refused by the webhook."""
    w = world
    s = _session(w)
    opener = w.user("agent-rita")
    role = agents.unique("misconfigured")
    agents.cluster_role(w.admin, role, _approver_rules(w.grant), [s.account, opener])
    try:
        name = _ask(w, s, _scale(w.shop, 2))
        _phase(w, name, {"AwaitingApproval"})
        action = f"/requests/{w.ns}/{name}/decide"
        for token, rule in (
            (s.token, "SelfApproval: self-approval"),
            (w.tokens["agent-rita"], "SessionIdentity: session identity"),
        ):
            page = _sign_in(browser, w, token)
            _open(page, w, name)
            assert page.locator("#decide").count() == 0
            why = page.locator("#why").inner_text()
            assert why.startswith(rule), why
            status, page = _forge(
                page, action, {"csrf": _csrf(page), "decision": "approve", "reason": "mine"}
            )
            assert status == 403
            error = page.locator("#error").inner_text()
            # The approval webhook refuses with its rule; for a session token the apiserver's own
            # ValidatingAdmissionPolicy (session identities create requests, nothing else) may
            # refuse first. Either way the write is refused with the reason named.
            by_webhook = "admission webhook" in error and rule in error
            by_policy = "ValidatingAdmissionPolicy" in error and "SessionIdentity" in error
            assert by_webhook or by_policy, error
            page.context.close()
        body = _request(w, name)
        assert body["status"]["phase"] == "AwaitingApproval"
        assert not body["status"].get("approvals")
        assert _replicas(w, w.shop) == 4
    finally:
        rbac = client.RbacAuthorizationV1Api(w.admin)
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)


def test_without_the_approve_verb_no_button_and_a_forged_post_is_refused(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 5))
    _phase(w, name, {"AwaitingApproval"})
    page = _sign_in(browser, w, w.tokens["bystander"])
    _open(page, w, name)
    assert page.locator("#decide").count() == 0
    assert page.locator("button.approve").count() == 0
    expected = approval_view.not_an_approver(w.user("bystander"), w.grant)
    assert page.locator("#why").inner_text() == expected
    status, page = _forge(
        page,
        f"/requests/{w.ns}/{name}/decide",
        {"csrf": _csrf(page), "decision": "approve", "reason": "let me"},
    )
    assert status == 403
    error = page.locator("#error").inner_text()
    assert "admission webhook" in error, error
    assert "may not approve or deny requests" in error, error
    body = _request(w, name)
    assert body["status"]["phase"] == "AwaitingApproval"
    assert not body["status"].get("approvals")


def test_two_person_rule_across_two_browser_sessions(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _restart(w.shop))
    waiting = _phase(w, name, {"AwaitingApproval"})
    assert waiting["status"]["requiredApprovals"] == 2
    first = _sign_in(browser, w, w.tokens["oncall-1"])
    second = _sign_in(browser, w, w.tokens["oncall-2"])

    _open(first, w, name)
    first.fill("#reason", "first of two")
    first.click("button.approve")
    first.wait_for_url(f"{w.url}/requests/{w.ns}/{name}?recorded=approval")
    time.sleep(1)
    assert _request(w, name)["status"]["phase"] == "AwaitingApproval"
    assert "1 of 2" in first.locator("#facts").inner_text()
    assert first.locator("#decide").count() == 0
    assert first.locator("#why").inner_text().startswith("DuplicateApprover: duplicate approver")

    _open(second, w, name)
    assert "1 of 2" in second.locator("#facts").inner_text()
    second.fill("#reason", "second of two")
    second.click("button.approve")
    second.wait_for_url(f"{w.url}/requests/{w.ns}/{name}?recorded=approval")
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert [a["approver"]["username"] for a in done["status"]["approvals"]] == [
        w.user("oncall-1"),
        w.user("oncall-2"),
    ]
    template = client.AppsV1Api(w.admin).read_namespaced_deployment("web", w.shop).spec.template
    assert "kubectl.kubernetes.io/restartedAt" in (template.metadata.annotations or {})


def test_forms_without_the_csrf_token_are_refused_and_the_cookie_is_locked_down(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 6))
    _phase(w, name, {"AwaitingApproval"})
    page = _sign_in(browser, w, w.tokens["oncall-1"])
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "aa_login"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert 0 < cookie["expires"] - time.time() <= 900 + 5
    _open(page, w, name)
    action = f"/requests/{w.ns}/{name}/decide"
    for fields in (
        {"decision": "approve", "reason": "no token"},
        {"csrf": "forged", "decision": "approve", "reason": "wrong token"},
    ):
        status, page = _forge(page, action, fields)
        assert status == 403
        assert page.locator("#error").inner_text().startswith("csrf:")
        _open(page, w, name)
    assert not _request(w, name)["status"].get("approvals")

    stranger = browser.new_context().new_page()
    stranger.goto(f"{w.url}/login")
    status, stranger = _forge(stranger, "/login", {"token": w.tokens["oncall-1"]})
    assert status == 403
    assert stranger.locator("#error").inner_text().startswith("csrf:")
    stranger.goto(f"{w.url}/")
    assert stranger.url == f"{w.url}/login"  # not signed in
    stranger.context.add_cookies(
        [{"name": "aa_login", "value": cookie["value"][:-4] + "0000", "url": w.url}]
    )
    stranger.goto(f"{w.url}/")
    assert stranger.url == f"{w.url}/login"  # a tampered cookie signs nobody in


def test_a_token_the_apiserver_rejects_does_not_sign_in(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    page = browser.new_context().new_page()
    page.goto(f"{w.url}/login")
    page.fill("#token", "not-a-token")
    page.click("form[action='/login'] button")
    assert page.locator("#error").inner_text().startswith("token: the apiserver did not accept")
    page.goto(f"{w.url}/")
    assert page.url == f"{w.url}/login"


def test_an_agents_words_cannot_script_the_approvers_page(
    world: World, browser: sync_api.Browser
) -> None:
    """The hypothesis is the agent's text: it is shown as text and never runs (escaped, and
    the Content-Security-Policy forbids scripts besides)."""
    w = world
    s = _session(w)
    evil = (
        "<script>document.title='pwned'</script>"
        "<img src=x onerror=\"document.title='pwned'\">"
        "<form id=decide action=/logout></form>"
    )
    name = _ask(w, s, _scale(w.shop, 5), hypothesis=evil)
    _phase(w, name, {"AwaitingApproval"})
    page = _sign_in(browser, w, w.tokens["bystander"])
    _open(page, w, name)
    page.wait_for_timeout(500)
    assert page.title() != "pwned"
    assert page.locator("#hypothesis").inner_text() == evil
    assert page.locator("#hypothesis script, #hypothesis img, #hypothesis form").count() == 0
    assert page.locator("#decide").count() == 0  # the agent cannot plant a form either


# -- notifications -------------------------------------------------------------------------------


def _approve_as(w: World, account: str, name: str, reason: str) -> None:
    """Approve through the API as ``account`` (as the CLI does: re-read on a conflict)."""
    approver = client.CustomObjectsApi(agents.token_client(w.local, w.tokens[account]))
    for _ in range(10):
        body = _request(w, name)
        try:
            approver.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                w.ns,
                "remediationrequests",
                name,
                {
                    "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                    "status": {"approvals": [{"decision": "approve", "reason": reason}]},
                },
            )
            return
        except client.ApiException as e:
            if e.status != 409:
                raise
    raise AssertionError(f"{name} kept changing")


def _notices(w: World, path: str, name: str) -> list[receiver.Delivery]:
    return [d for d in w.receiver.at(path) if name in d.body.decode()]


def _metric(w: World, line_start: str) -> float:
    port = w.operator.env.options.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = [float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(line_start)]
    return sum(values)


def test_notifications_reach_every_format_signed_and_a_dead_receiver_blocks_nothing(
    world: World,
) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.shop, 3))
    _phase(w, name, {"AwaitingApproval"})
    link = f"{w.url}/requests/{w.ns}/{name}"

    slack = agents.wait_for(lambda: _notices(w, "/slack", name), 15, "the slack notice")[0].json()
    assert link in slack["text"]
    assert slack["blocks"][-1]["elements"][0]["url"] == link
    teams = agents.wait_for(lambda: _notices(w, "/teams", name), 15, "the teams notice")[0].json()
    attachment = teams["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["actions"][0]["url"] == link
    signed = agents.wait_for(lambda: _notices(w, "/json", name), 15, "the signed JSON notice")[0]
    assert signed.json()["type"] == "awaiting-approval"
    assert signed.json()["link"] == link
    timestamp = signed.headers[formats.TIMESTAMP_HEADER]
    signature = signed.headers[formats.SIGNATURE_HEADER]
    assert formats.verify(SECRET, timestamp, signed.body, signature, time.time())
    assert not formats.verify(b"another-secret-0123456", timestamp, signed.body, signature, 0)
    assert not formats.verify(SECRET, timestamp, signed.body + b" ", signature, time.time())

    # The dead receiver is retried (3 attempts) meanwhile; an approval is not held up by it.
    started = time.monotonic()
    _approve_as(w, "oncall-2", name, "back to 3")
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    print(f"\n[approvals] approved and applied in {time.monotonic() - started:.2f} s")

    def kinds() -> set[str] | None:
        found = {d.json()["type"] for d in _notices(w, "/json", name)}
        return found if {"decided", "applied"} <= found else None

    agents.wait_for(kinds, 15, "decided and applied notices")
    for path in ("/slack", "/teams"):
        agents.wait_for(lambda p=path: len(_notices(w, p, name)) >= 3, 15, f"3 notices at {path}")  # type: ignore[misc]

    def dead_attempts() -> list[receiver.Delivery] | None:
        tried = _notices(w, receiver.FAILING, name)
        return tried if len(tried) >= 9 else None

    tried = agents.wait_for(dead_attempts, 30, "3 attempts for each of 3 notices at /dead")
    first = [d.at for d in tried[:3]]
    assert first[1] - first[0] >= 0.15
    assert first[2] - first[1] >= 0.3
    agents.wait_for(
        lambda: (
            _metric(w, 'agent_authority_notifications_total{outcome="dropped",receiver="dead"}')
            >= 3
        ),
        15,
        "the dropped notices counted",
    )
    assert _metric(w, 'agent_authority_notification_attempt_failures_total{receiver="dead"}') >= 9
    assert (
        _metric(w, 'agent_authority_notifications_total{outcome="delivered",receiver="siem"}') >= 3
    )


def test_an_approved_change_that_fails_to_apply_is_announced_with_the_reason(
    world: World,
) -> None:
    """Approved, then the target moves before the operator applies: the re-plan differs from
    the reviewed diff, the request fails with ``TargetChanged`` and every receiver hears it."""
    w = world
    apps = client.AppsV1Api(w.admin)
    target = agents.unique("api")
    apps.create_namespaced_deployment(w.shop, agents.deployment(target, 2))
    s = _session(w)
    action = {
        "type": "scale-workload",
        "target": {"kind": "Deployment", "namespace": w.shop, "name": target},
        "params": {"replicas": 3},
    }
    name = _ask(w, s, action)
    _phase(w, name, {"AwaitingApproval"})
    apps.patch_namespaced_deployment(target, w.shop, {"spec": {"replicas": 1}})  # moved
    _approve_as(w, "oncall-1", name, "reviewed at 2 replicas")
    done = _phase(w, name, {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Failed", done["status"]
    assert apps.read_namespaced_deployment(target, w.shop).spec.replicas == 1  # not applied
    link = f"{w.url}/requests/{w.ns}/{name}"

    def failed(path: str) -> list[receiver.Delivery] | None:
        found = [d for d in _notices(w, path, name) if "TargetChanged" in d.body.decode()]
        return found or None

    signed = agents.wait_for(lambda: failed("/json"), 15, "the signed failed notice")[0]
    notice = signed.json()
    assert notice["type"] == "failed"
    assert notice["link"] == link
    assert notice["title"].endswith(": failed"), notice
    assert notice["facts"]["Reason"].startswith("TargetChanged: "), notice
    assert "nothing was applied" in notice["text"], notice
    assert formats.verify(
        SECRET,
        signed.headers[formats.TIMESTAMP_HEADER],
        signed.body,
        signed.headers[formats.SIGNATURE_HEADER],
        time.time(),
    )
    slack = agents.wait_for(lambda: failed("/slack"), 15, "the slack failed notice")[0].json()
    assert slack["blocks"][0]["text"]["text"].endswith(": failed")
    fields = [f["text"] for f in slack["blocks"][2]["fields"]]
    assert any(f.startswith("Reason: TargetChanged: ") for f in fields), fields
    assert slack["blocks"][-1]["elements"][0]["url"] == link
    teams = agents.wait_for(lambda: failed("/teams"), 15, "the teams failed notice")[0].json()
    card = teams["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Reason"].startswith("TargetChanged: "), facts
    assert card["actions"][0]["url"] == link


def test_a_session_revoked_for_deviation_is_announced(world: World) -> None:
    w = world
    s = _session(w)
    name = _ask(w, s, _scale(w.other, 4))  # outside the grant: denied, and the session revoked
    _phase(w, name, {"Denied"})
    agents.wait_phase(w.admin, w.ns, s.name, {"Revoked"}, timeout=15)

    def revoked() -> list[Any] | None:
        found = [
            d.json()
            for d in w.receiver.at("/json")
            if d.json()["type"] == "session-revoked" and d.json()["object"]["name"] == s.name
        ]
        return found or None

    (notice,) = agents.wait_for(revoked, 15, "the session-revoked notice")
    assert notice["title"].endswith("revoked: OutOfScopeRequest")
    assert name in notice["text"]


# -- outside the cluster -------------------------------------------------------------------------


def test_approvals_serve_runs_the_page_against_a_kubeconfig_that_may_only_review_tokens(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    agents.cluster_role(
        w.admin,
        agents.unique("page"),
        [
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"],
                "verbs": ["create"],
            }
        ],
        ["approval-page"],
    )
    kubeconfig = w.local.user_kubeconfig("approval-page", [])
    refused = subprocess.run(
        [sys.executable, "-m", "agent_authority.cli.main", "approvals", "serve",
         f"--kubeconfig={kubeconfig}", "--addr=0.0.0.0", "--port=0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "refusing plain HTTP on 0.0.0.0" in refused.stderr
    serve = subprocess.Popen(
        [sys.executable, "-m", "agent_authority.cli.main", "approvals", "serve",
         f"--kubeconfig={kubeconfig}", "--port=0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert line.startswith("approval page at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        s = _session(w)
        name = _ask(w, s, _scale(w.shop, 4))
        _phase(w, name, {"AwaitingApproval"})
        alone = dataclasses.replace(w, url=url)
        page = _sign_in(browser, alone, w.tokens["oncall-2"])
        assert page.locator(f"#pending tr.request[data-name='{name}']").count() == 1
        _open(page, alone, name)
        page.fill("#reason", "from the page outside the cluster")
        page.click("button.approve")
        page.wait_for_url(f"{url}/requests/{w.ns}/{name}?recorded=approval")
        done = _phase(w, name, {"Succeeded", "Failed"})
        assert done["status"]["approvals"][0]["approver"]["username"] == w.user("oncall-2")
    finally:
        serve.terminate()
        serve.wait(timeout=15)
        if serve.stdout is not None:
            serve.stdout.close()


def test_signing_out_or_losing_the_token_ends_the_login(
    world: World, browser: sync_api.Browser
) -> None:
    w = world
    page = _sign_in(browser, w, w.tokens["oncall-1"])
    answer = page.goto(f"{w.url}/")
    assert answer is not None
    assert "default-src 'none'" in answer.headers["content-security-policy"]  # no scripts
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "aa_login"]
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{w.url}/login")
    replay = browser.new_context()
    replay.add_cookies([{"name": "aa_login", "value": cookie["value"], "url": w.url}])
    again = replay.new_page()
    again.goto(f"{w.url}/")
    assert again.url == f"{w.url}/login"  # the old cookie names a login that is gone

    # A person whose identity is removed is signed out at their next step.
    core = client.CoreV1Api(w.admin)
    core.create_namespaced_service_account(w.people, {"metadata": {"name": "leaver"}})
    agents.cluster_role(w.admin, agents.unique("leaver"), _reader_rules(), [w.user("leaver")])
    page = _sign_in(browser, w, _token(w.admin, w.people, "leaver"))
    core.delete_namespaced_service_account("leaver", w.people)

    def signed_out() -> bool:
        page.goto(f"{w.url}/")
        return page.url.startswith(f"{w.url}/login")

    agents.wait_for(signed_out, 20, "the leaver to be signed out", every=0.5)
    assert "no longer authenticates" in page.locator("#error").inner_text()
