"""Attacks on IncidentSessions, made for real on the real control plane with the real operator.

Each test is one attack of the hardening issue: an agent (or a colleague sharing its namespace and
Role) tries to keep, widen, steal or outlive a session; the test asserts the attack fails and the
session still ends when it should.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import json
import pathlib
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.controllers import session_revocation
from agent_authority.kube import api
from agent_authority.models import FINALIZER, GROUP, VERSION
from agent_authority.models import session as session_model
from agent_authority.policy import exemption
from agent_authority.webhooks import configuration as webhook_configuration
from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_sessions import AGENT_GROUP, World, _active, grant_spec, world

__all__ = ["world"]  # the module-scoped fixture, shared with test_sessions

COLLEAGUE = "agent-carol"
RBAC = "rbac.authorization.k8s.io"
PLURAL = "incidentsessions"
SPEC_POLICY = f"{GROUP}-session-spec-only-ends"
METADATA_POLICY = f"{GROUP}-session-metadata-by-the-operator"
STATUS_POLICY = f"{GROUP}-session-status-by-the-operator"
WEBHOOKS = "agentauthority.io"
IDENTITIES_POLICY = f"{GROUP}-session-identities-only-request"


def _custom(api_client: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def _patch(api_client: Any, w: World, name: str, body: dict[str, Any]) -> Any:
    return _custom(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, w.ns, PLURAL, name, body
    )


def _refused(call: Any) -> str:
    with pytest.raises(client.ApiException) as refused:
        call()
    assert refused.value.status in (400, 403, 422), refused.value
    return agents.refusal(refused.value)


def _grant(w: World, **session: Any) -> str:
    name = agents.unique("g")
    agents.create_grant(w.admin, name, grant_spec(w.shop, **session))
    return name


def _delete_grant(w: World, name: str) -> None:
    _custom(w.admin).delete_cluster_custom_object(GROUP, VERSION, "agentgrants", name)


# 1. Keeping a session past its TTL by rewriting kopf's diff base -----------------------------


def _diff_base(w: World, name: str, key: str) -> str:
    """A diff base as kopf writes one (the session's essence: its spec), to forge with. kopf
    keeps none of a session in its annotations (controllers/persistence.py), so the
    attack adds one instead of rewriting it; the annotation is refused all the same."""
    session = agents.get_session(w.admin, w.ns, name)
    assert key not in (session["metadata"].get("annotations") or {})
    return json.dumps({"spec": session["spec"]})


def test_rewriting_the_operators_annotations_does_not_keep_a_session_past_its_ttl(
    world: World,
) -> None:
    w = world
    body, token = _active(w, ttlSeconds=15)
    name = body["metadata"]["name"]
    pods = f"/api/v1/namespaces/{w.shop}/pods"
    key = "agentauthority.io/last-handled-configuration"
    last = json.loads(_diff_base(w, name, key))
    last.setdefault("spec", {})["ended"] = True
    attack = {
        "metadata": {"annotations": {key: json.dumps(last)}},
        "spec": {"ended": True},
    }
    # Refused at admission (by the apiserver's policy, or the operator's webhook behind it),
    # naming the annotation.
    assert f"metadata.annotations[{key}]" in _refused(lambda: _patch(w.agent, w, name, attack))
    # The session is over by its TTL (+ slack) and its token is refused.
    expires = datetime.datetime.fromisoformat(body["status"]["expiresAt"])
    left = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
    final = agents.wait_phase(w.admin, w.ns, name, {"Ended", "Expired"}, timeout=left + 10)
    assert final["status"]["phase"] in {"Ended", "Expired"}
    assert probe.status(w.local, pods, token) in (401, 403)


def test_the_webhook_alone_refuses_a_rewritten_diff_base_naming_the_annotation(
    world: World,
) -> None:
    """The same attack with the admission policy's binding removed: the operator's UPDATE
    webhook refuses it on its own, with its own reason."""
    w = world
    body, _ = _active(w)
    name = body["metadata"]["name"]
    key = "agentauthority.io/last-handled-configuration"
    last = json.loads(_diff_base(w, name, key))
    last.setdefault("spec", {})["ended"] = True
    attack = {"metadata": {"annotations": {key: json.dumps(last)}}, "spec": {"ended": True}}
    with agents.without_policy_bindings(w.admin, METADATA_POLICY):
        message = _refused(lambda: _patch(w.agent, w, name, attack))
    assert "ValidatingAdmissionPolicy" not in message, message
    assert f"OperatorOwned: metadata.annotations[{key}]" in message, message
    assert agents.get_session(w.admin, w.ns, name)["status"]["phase"] == "Active"
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})


def test_without_the_update_webhook_a_rewritten_diff_base_still_ends_the_session(
    world: World, operator: OperatorProcess
) -> None:
    """Defence in depth: with the validating webhook configuration gone (deleted by mistake) and
    the binding of the admission policy guarding the operator's annotations gone too, the same
    attack goes through the apiserver, and the operator still ends the session, because it reads
    spec.ended on the live object instead of trusting kopf's diff base."""
    w = world
    body, token = _active(w)
    name = body["metadata"]["name"]
    key = "agentauthority.io/last-handled-configuration"
    last = json.loads(_diff_base(w, name, key))
    last.setdefault("spec", {})["ended"] = True
    webhooks = client.AdmissionregistrationV1Api(w.admin)
    with agents.without_policy_bindings(w.admin, METADATA_POLICY):
        webhooks.delete_validating_webhook_configuration("agentauthority.io")
        try:
            time.sleep(2)  # the apiserver stops calling the webhooks
            attack = {
                "metadata": {"annotations": {key: json.dumps(last)}},
                "spec": {"ended": True},
            }
            patched = _patch(w.agent, w, name, attack)  # nothing refuses it now
            assert patched["metadata"]["annotations"][key] == json.dumps(last)
            ended = agents.wait_phase(w.admin, w.ns, name, {"Ended"}, timeout=10)
            assert ended["status"]["revocation"]["reason"] == "Ended"
            assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) in (401, 403)
        finally:
            operator.restart()  # the operator puts its webhook configuration back when it starts
    assert webhooks.read_validating_webhook_configuration("agentauthority.io")


def test_only_the_operator_writes_its_annotations_labels_and_finalizer(world: World) -> None:
    w = world
    body, _ = _active(w)
    name = body["metadata"]["name"]
    for what, attack in {
        "progress annotation": {"metadata": {"annotations": {"agentauthority.io/x": "done"}}},
        "grant label": {"metadata": {"labels": {"agentauthority.io/grant": "other"}}},
        "finalizer": {"metadata": {"finalizers": []}},
    }.items():
        message = _refused(lambda a=attack: _patch(w.agent, w, name, a))
        assert "operator" in message, what
    # Annotations of one's own (not the operator's) are fine.
    _patch(w.agent, w, name, {"metadata": {"annotations": {"team.example/ticket": "T-1"}}})
    assert agents.get_session(w.admin, w.ns, name)["status"]["phase"] == "Active"


# 2. Ending or rewriting someone else's session ------------------------------------------------


def test_another_agent_cannot_end_rewrite_or_unfinalize_a_session(world: World) -> None:
    w = world
    body, token = _active(w)
    name = body["metadata"]["name"]
    colleague = agents.as_user(w.local, COLLEAGUE, [AGENT_GROUP])
    ended = _refused(lambda: _patch(colleague, w, name, {"spec": {"ended": True}}))
    assert "spec.ended" in ended
    assert COLLEAGUE in ended
    purpose = _refused(lambda: _patch(colleague, w, name, {"spec": {"purpose": "mine now"}}))
    assert "spec.purpose" in purpose
    _refused(lambda: _patch(colleague, w, name, {"metadata": {"finalizers": []}}))
    # Not even the requester may rewrite the spec: only end it.
    assert "spec.purpose" in _refused(
        lambda: _patch(w.agent, w, name, {"spec": {"purpose": "rewritten"}})
    )
    still = agents.get_session(w.admin, w.ns, name)
    assert still["status"]["phase"] == "Active"
    assert still["spec"]["purpose"] == "e2e"
    assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) == 200
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})


def test_the_webhook_alone_refuses_another_agents_rewrite_naming_the_field(world: World) -> None:
    """With the admission policies' bindings removed, the operator's UPDATE webhook refuses the
    same rewrites on its own, with its own reasons."""
    w = world
    body, token = _active(w)
    name = body["metadata"]["name"]
    colleague = agents.as_user(w.local, COLLEAGUE, [AGENT_GROUP])
    with agents.without_policy_bindings(w.admin, SPEC_POLICY, METADATA_POLICY):
        purpose = _refused(lambda: _patch(colleague, w, name, {"spec": {"purpose": "mine now"}}))
        finalizers = _refused(lambda: _patch(colleague, w, name, {"metadata": {"finalizers": []}}))
        own = _refused(lambda: _patch(w.agent, w, name, {"spec": {"purpose": "rewritten"}}))
    for message in (purpose, finalizers, own):
        assert "ValidatingAdmissionPolicy" not in message, message
    assert "SpecImmutable: spec.purpose" in purpose, purpose
    assert "OperatorOwned: metadata.finalizers" in finalizers, finalizers
    assert "SpecImmutable: spec.purpose" in own, own
    still = agents.get_session(w.admin, w.ns, name)
    assert (still["status"]["phase"], still["spec"]["purpose"]) == ("Active", "e2e")
    assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) == 200
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})


def _lookalikes(namespace: str) -> list[str]:
    """Usernames that resemble the operator's (``dev.OPERATOR_USER`` here) without being it."""
    operator = dev.OPERATOR_USER
    return [
        f"{operator}-2",
        f"x{operator}",
        operator.upper(),
        f"system:serviceaccount:{namespace}:{operator}",
    ]


def test_the_operator_installs_the_charts_webhooks_exempting_only_itself(world: World) -> None:
    """The live configurations are the chart's definition (webhooks/configuration.py) with the
    operator's own username, learnt from a SelfSubjectReview at start."""
    w = world
    api_ = client.AdmissionregistrationV1Api(w.admin)
    live = [
        w.admin.sanitize_for_serialization(api_.read_validating_webhook_configuration(WEBHOOKS)),
        w.admin.sanitize_for_serialization(api_.read_mutating_webhook_configuration(WEBHOOKS)),
    ]
    skipping = {
        webhook["name"]: webhook["matchConditions"]
        for config in live
        for webhook in config["webhooks"]
        if webhook.get("matchConditions")
    }
    condition = [
        {
            "name": "not-the-operator",
            "expression": f'request.userInfo.username != "{dev.OPERATOR_USER}"',
        }
    ]
    assert skipping == {f"{name}.{WEBHOOKS}": condition for name in exemption.OPERATOR_EXEMPT}
    for config in live:
        for webhook in config["webhooks"]:
            assert webhook["timeoutSeconds"] == webhook_configuration.TIMEOUT_SECONDS
            assert webhook["failurePolicy"] == "Fail"


def test_names_resembling_the_operators_are_not_exempt_from_the_update_guards(
    world: World,
) -> None:
    """The webhooks skip exactly the operator's name: users whose names merely resemble it, with
    RBAC to patch sessions and their status and the admission policies' bindings removed, are
    refused by the operator's webhooks on their own."""
    w = world
    body, token = _active(w)
    name = body["metadata"]["name"]
    users = _lookalikes(w.ns)
    role = agents.unique("lookalike")
    agents.cluster_role(
        w.admin,
        role,
        [
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL, f"{PLURAL}/status"],
                "verbs": ["get", "patch"],
            }
        ],
        users,
    )
    for user in users:
        agents.wait_allowed(w.admin, user, "patch", GROUP, PLURAL, w.ns)
    forged = {"status": {"expiresAt": "2099-01-01T00:00:00Z", "phase": "Active"}}
    try:
        with agents.without_policy_bindings(w.admin, STATUS_POLICY, SPEC_POLICY, METADATA_POLICY):
            for user in users:
                as_user = agents.as_user(w.local, user)
                status = _refused(
                    lambda a=as_user: _custom(a).patch_namespaced_custom_object_status(
                        GROUP, VERSION, w.ns, PLURAL, name, forged
                    )
                )
                finalizers = _refused(
                    lambda a=as_user: _patch(a, w, name, {"metadata": {"finalizers": []}})
                )
                assert "ValidatingAdmissionPolicy" not in status + finalizers, user
                assert "guard-session-status" in status, (user, status)
                assert "OperatorOwned: status" in status, (user, status)
                assert "OperatorOwned: metadata.finalizers" in finalizers, (user, finalizers)
    finally:
        rbac = client.RbacAuthorizationV1Api(w.admin)
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)
    still = agents.get_session(w.admin, w.ns, name)
    assert still["status"]["expiresAt"] == body["status"]["expiresAt"]
    assert FINALIZER in still["metadata"]["finalizers"]
    assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) == 200
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})


def test_a_person_holding_the_end_verb_may_end_anyones_session(world: World) -> None:
    w = world
    body, _ = _active(w)
    name = body["metadata"]["name"]
    agents.cluster_role(
        w.admin,
        f"end-{w.ns}",
        [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["patch", "end"]}],
        ["oncall-human"],
    )
    agents.end_session(agents.as_user(w.local, "oncall-human"), w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})


# 3. The concurrent-session cap under parallel creates -----------------------------------------


def test_the_concurrent_session_cap_holds_under_parallel_creates(world: World) -> None:
    w = world
    grant = _grant(w, maxConcurrentSessions=2, maxDeniedRequests=1000)
    names = [agents.unique("race") for _ in range(6)]

    def create(name: str) -> bool:
        try:
            agents.open_session(w.agent, w.ns, agents.session_body(name, grant))
            return True
        except client.ApiException as e:
            refusals.append(f"{e.status} {agents.refusal(e)}")
            return False

    refusals: list[str] = []

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        created = [n for n, ok in zip(names, pool.map(create, names), strict=True) if ok]
    assert all("TooManySessions" in r for r in refusals), refusals
    phases = {
        n: agents.wait_phase(w.admin, w.ns, n, {"Active", "Denied"}, timeout=40) for n in created
    }
    time.sleep(3)  # late corrections would show here
    final = {n: agents.get_session(w.admin, w.ns, n)["status"] for n in created}
    active = [n for n, s in final.items() if s["phase"] == "Active"]
    assert len(active) == 2, {n: s["phase"] for n, s in final.items()}
    for s in final.values():
        if s["phase"] == "Denied":
            assert s["revocation"]["reason"] == "TooManySessions", s
            assert "maxConcurrentSessions" in s["revocation"]["message"]
    assert phases
    # The cap frees up again when a session ends.
    agents.end_session(w.agent, w.ns, active[0])
    agents.wait_phase(w.admin, w.ns, active[0], {"Ended"})
    again = agents.unique("again")
    # Admission counts from the operator's index, which learns of the end a moment later.
    agents.wait_for(lambda: create(again), 15, "a session to fit under the cap again", every=0.5)
    assert agents.wait_phase(w.admin, w.ns, again, {"Active", "Denied"})["status"]["phase"] == (
        "Active"
    )
    _delete_grant(w, grant)


# 4. A session token opening a session --------------------------------------------------------


def test_a_session_token_cannot_open_a_session_root_or_sub_agent(world: World) -> None:
    """Session identities create RemediationRequests and nothing else: not a root session, not
    even a sub-agent of their own session, and they end no session, not even their own. Both
    layers refuse: the apiserver's admission policy,
    and (with its binding removed) the operator's webhook. Sub-agents are opened by the agent's
    base identity, naming the parent it opened."""
    w = world
    grant = agents.unique("sa-group")
    spec = grant_spec(w.shop, maxDeniedRequests=1000)
    spec["subjects"].append({"kind": "Group", "name": f"system:serviceaccounts:{w.ns}"})
    agents.create_grant(w.admin, grant, spec)
    rbac = client.RbacAuthorizationV1Api(w.admin)
    # RBAC lets every ServiceAccount of the namespace open sessions, so what refuses is admission.
    rbac.create_namespaced_role_binding(
        w.ns,
        {
            "metadata": {"name": "every-sa-opens-sessions"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "open-sessions"},
            "subjects": [
                {"kind": "Group", "name": f"system:serviceaccounts:{w.ns}", "apiGroup": RBAC}
            ],
        },
    )
    try:
        body, token = _active(w, grant=grant)
        parent = body["metadata"]["name"]
        as_session = agents.token_client(w.local, token)

        def root() -> dict[str, Any]:
            return agents.session_body(agents.unique("escape"), grant, ttlSeconds=900)

        def child() -> dict[str, Any]:
            return agents.session_body(
                agents.unique("child"), grant, parentSession=parent, scopes=[{"name": "workloads"}]
            )

        def end_itself() -> Any:
            return _patch(as_session, w, parent, {"spec": {"ended": True}})

        for attempt in (root(), child()):
            message = _refused(lambda a=attempt: agents.open_session(as_session, w.ns, a))
            assert f"ValidatingAdmissionPolicy '{IDENTITIES_POLICY}'" in message, message
            assert "SessionIdentity" in message, message
        # Nor does it change a session, not even end its own (RBAC would let it patch).
        assert "refused: UPDATE incidentsessions" in _refused(end_itself)
        with agents.without_policy_bindings(w.admin, IDENTITIES_POLICY):
            for attempt in (root(), child()):
                message = _refused(lambda a=attempt: agents.open_session(as_session, w.ns, a))
                assert "ValidatingAdmissionPolicy" not in message, message
                assert "SessionIdentity" in message, message
                assert "spec.requester: 'system:serviceaccount:" in message, message
            message = _refused(end_itself)
            assert "ValidatingAdmissionPolicy" not in message, message
            assert "SessionIdentity: spec: " in message, message
        assert agents.get_session(w.admin, w.ns, parent)["status"]["phase"] == "Active"
        # The sub-agent, opened by the base identity that opened the parent, is fine.
        allowed = child()
        agents.open_session(w.agent, w.ns, allowed)
        opened = agents.wait_phase(w.admin, w.ns, allowed["metadata"]["name"], {"Active", "Denied"})
        assert opened["status"]["phase"] == "Active", opened["status"]
        agents.end_session(w.agent, w.ns, parent)
    finally:
        rbac.delete_namespaced_role_binding("every-sa-opens-sessions", w.ns)
        _delete_grant(w, grant)


# 5. A sub-agent naming someone else's parent -------------------------------------------------


def test_a_sub_agent_cannot_name_someone_elses_session_as_its_parent(world: World) -> None:
    w = world
    parent, _ = _active(w)
    colleague = agents.as_user(w.local, COLLEAGUE, [AGENT_GROUP])
    body = agents.session_body(
        agents.unique("hijack"), w.grant, parentSession=parent["metadata"]["name"]
    )
    message = _refused(lambda: agents.open_session(colleague, w.ns, body))
    assert "ParentNotOwned" in message
    assert "spec.parentSession" in message


# 9 and issue 14 item 2. Token lifetime bound to the session ---------------------------------


def _jwt_exp(token: str) -> datetime.datetime:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return datetime.datetime.fromtimestamp(int(claims["exp"]), datetime.UTC)


def test_a_short_sessions_token_expires_within_the_tokenrequest_minimum(world: World) -> None:
    w = world
    body, token = _active(w, ttlSeconds=20)
    rotated = datetime.datetime.fromisoformat(body["status"]["tokenRotatedAt"])
    expires = datetime.datetime.fromisoformat(body["status"]["tokenExpiresAt"])
    # What the apiserver enforces is the token's own exp claim: it is what status says.
    assert abs((_jwt_exp(token) - expires).total_seconds()) <= 1
    bound = max(600.0, 20.0) + 15  # the TokenRequest minimum, plus clock and scheduling slack
    assert (expires - rotated).total_seconds() <= bound, body["status"]
    review = client.AuthenticationV1Api(w.admin).create_token_review({"spec": {"token": token}})
    assert review.status.authenticated
    agents.end_session(w.agent, w.ns, body["metadata"]["name"])  # no expiry in later tests


def test_with_the_operator_down_access_ends_with_the_token_and_restart_revokes_once(
    world: World, operator: OperatorProcess
) -> None:
    """Issue 14 item 2 (the bound while the operator is down) and issue 13's gauge: resumed
    sessions are counted in, and expired ones are revoked exactly once after a restart."""
    w = world
    grant = _grant(w, maxDeniedRequests=1000)
    short = [_active(w, grant=grant, ttlSeconds=12) for _ in range(2)]
    long, _ = _active(w, grant=grant)
    metrics_url = f"http://127.0.0.1:{operator.env.options.metrics_port}/metrics"
    gauge = f'agent_authority_active_sessions{{grant="{grant}"}}'
    # The gauge follows the Active transitions a moment later (read 2 once under load).
    agents.wait_for(
        lambda: _metric(_scrape(metrics_url), gauge) == 3 or None, 15, "the gauge to count 3"
    )
    operator.stop()
    try:
        time.sleep(14)  # both short sessions are past their TTL while nobody enforces it
        for body, token in short:
            # The documented bound: the token itself, minted for the session's remaining life
            # and never shorter than the TokenRequest minimum of 600 s.
            opened = datetime.datetime.fromisoformat(body["status"]["tokenRotatedAt"])
            assert (_jwt_exp(token) - opened).total_seconds() <= 600 + 15
    finally:
        operator.start()
    for body, token in short:
        agents.wait_phase(w.admin, w.ns, body["metadata"]["name"], {"Expired"}, timeout=30)
        pods = f"/api/v1/namespaces/{w.shop}/pods"
        assert probe.status(w.local, pods, token) in (401, 403)
    time.sleep(2)  # a second, racing revocation would land here
    text = _scrape(metrics_url)
    assert _metric(text, gauge) == 1, "the gauge must count the resumed session, and only it"
    assert _metric(text, 'agent_authority_revocations_total{reason="Expired"}') == 2
    assert operator.env.options.audit_trail is not None
    records = [
        json.loads(line)
        for line in pathlib.Path(operator.env.options.audit_trail).read_text().splitlines()
    ]
    for body, _ in short:
        uid = body["metadata"]["uid"]
        expired = [r for r in records if r["correlationId"] == uid and r["event"] != "TokenMinted"]
        assert [r["event"] for r in expired].count("SessionExpired") == 1, expired
    assert agents.get_session(w.admin, w.ns, long["metadata"]["name"])["status"]["phase"] == (
        "Active"
    )
    agents.end_session(w.agent, w.ns, long["metadata"]["name"])
    _delete_grant(w, grant)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own local port
        return str(resp.read().decode())


def _metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


# Issue 14 item 6. A terminal phase never changes ----------------------------------------------


async def _late_revoke(w: World, stale: dict[str, Any]) -> None:
    kube = api.Kube.from_kubeconfig(str(w.local.kubeconfig))
    api.set_default(kube)  # Events are posted with the default client
    await session_revocation.revoke(
        kube, stale, session_model.SessionPhase.REVOKED, "Deviation", "late 403"
    )


def test_a_late_revocation_does_not_change_a_terminal_phase(world: World) -> None:
    """The deviation path read the session while it was Active; by the time it revokes, the
    session has Ended. The revocation is conditional on the phase, so Ended stays Ended."""
    import asyncio

    w = world
    body, _ = _active(w)
    name = body["metadata"]["name"]
    stale = agents.get_session(w.admin, w.ns, name)
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"})
    asyncio.run(_late_revoke(w, stale))
    final = agents.get_session(w.admin, w.ns, name)
    assert final["status"]["phase"] == "Ended"
    assert final["status"]["revocation"]["reason"] == "Ended"


# 10 and own reads. Sessions see their own requests and their own session only ---------------


def _ask(w: World, api_client: Any, session_name: str) -> str:
    """A request the grant allows (restart, propose): it waits for approval, no deviation."""
    name = agents.unique("rr")
    restart = {
        "type": "restart-workload",
        "target": {"kind": "Deployment", "namespace": w.shop, "name": "web"},
    }
    agents.create_request(
        api_client, w.ns, name, agents.request_spec(session_name, restart, "a restart clears it")
    )
    return name


def _restart_grant(w: World, **session: Any) -> str:
    name = agents.unique("fix")
    spec = grant_spec(w.shop, **session)
    spec["remediations"] = [
        {"action": "restart-workload", "namespaces": [w.shop], "autonomy": "propose"}
    ]
    agents.create_grant(w.admin, name, spec)
    return name


def test_a_session_reads_its_own_session_and_requests_and_nobody_elses(world: World) -> None:
    w = world
    client.AppsV1Api(w.admin).create_namespaced_deployment(w.shop, agents.deployment("web", 1))
    strict = _restart_grant(w)  # maxDeniedRequests 0: any counted denial would revoke
    a_body, a_token = _active(w, grant=strict)
    lenient = _restart_grant(w, maxDeniedRequests=1000)
    _, b_token = _active(w, grant=lenient)
    a = agents.token_client(w.local, a_token)
    a_name = a_body["metadata"]["name"]
    mine = _ask(w, a, a_name)
    # A reads its own request (as soon as the operator has seen it) and its own session.
    agents.wait_for(
        lambda: (
            probe.status(
                w.local,
                f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/remediationrequests/{mine}",
                a_token,
            )
            == 200
        ),
        10,
        "the session to read its own request",
    )
    own = _custom(a).get_namespaced_custom_object(GROUP, VERSION, w.ns, PLURAL, a_name)
    assert own["metadata"]["name"] == a_name
    # B sees nothing of A's: no get, list or watch of requests.
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/remediationrequests"
    assert probe.status(w.local, f"{base}/{mine}", b_token) == 403
    assert probe.status(w.local, base, b_token) == 403
    assert probe.status(w.local, f"{base}?watch=true", b_token) == 403
    assert (
        probe.status(
            w.local, f"/apis/{GROUP}/{VERSION}/namespaces/{w.ns}/{PLURAL}/{a_name}", b_token
        )
        == 403
    )
    # The request is A's and stays waiting: nothing of it was denied.
    request = agents.wait_for(
        lambda: (
            _custom(w.admin)
            .get_namespaced_custom_object(GROUP, VERSION, w.ns, "remediationrequests", mine)
            .get("status")
        ),
        20,
        "the request to be evaluated",
    )
    assert request["phase"] == "AwaitingApproval", request
    # A's own reads were not deviations: still Active, nothing counted.
    time.sleep(3)  # audit batches arrive within about a second
    status = agents.get_session(w.admin, w.ns, a_name)["status"]
    assert status["phase"] == "Active", status
    assert status.get("deniedRequests", 0) == 0
    for g in (strict, lenient):
        _delete_grant(w, g)


# Issue 14 item 4 (session side). Wrong types are refused naming the field --------------------

MALFORMED = [
    pytest.param({"grantRef": "fz"}, "spec.grantRef", id="grantRef-a-string"),
    pytest.param({"grantRef": {"name": 7}}, "spec.grantRef.name", id="grantRef-name-a-number"),
    pytest.param({"parentSession": 3}, "spec.parentSession", id="parentSession-a-number"),
    pytest.param({"ttlSeconds": 0}, "spec.ttlSeconds", id="ttl-zero"),
    pytest.param({"ttlSeconds": ""}, "spec.ttlSeconds", id="ttl-empty-string"),
    pytest.param({"ttlSeconds": []}, "spec.ttlSeconds", id="ttl-a-list"),
    pytest.param({"ttlSeconds": False}, "spec.ttlSeconds", id="ttl-false"),
    pytest.param({"ttlSeconds": {"s": 1}}, "spec.ttlSeconds", id="ttl-an-object"),
    pytest.param({"incident": "SEV1"}, "spec.incident", id="incident-a-string"),
]


@pytest.mark.parametrize(("spec", "field"), MALFORMED)
def test_a_malformed_session_is_refused_naming_the_field(
    world: World, spec: dict[str, Any], field: str
) -> None:
    body = agents.session_body(agents.unique("bad"), world.grant)
    body["spec"].update(spec)
    with pytest.raises(client.ApiException) as refused:
        agents.open_session(world.agent, world.ns, body)
    assert refused.value.status in (400, 403, 422), refused.value
    assert field in agents.refusal(refused.value)
