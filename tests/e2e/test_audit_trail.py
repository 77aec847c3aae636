"""The operator's signed audit trail on the real cluster: complete, correlated, verifiable."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

from kubernetes import client, config

from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_sessions import World, _active, world

__all__ = ["world"]


def _verify(log: pathlib.Path, key: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_authority.cli.main",
            "audit",
            "verify",
            str(log),
            "--public-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_session_is_recorded_in_a_verifiable_trail(
    world: World, operator: OperatorProcess, tmp_path: pathlib.Path
) -> None:
    w = world
    body, _ = _active(w)
    name, uid = body["metadata"]["name"], body["metadata"]["uid"]
    agents.end_session(w.agent, w.ns, name)
    ended = agents.wait_phase(w.admin, w.ns, name, {"Ended"})
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    public_key = log.with_name(log.name + ".key.pub")

    def mine() -> list[dict[str, Any]] | None:
        lines = log.read_text().splitlines()
        records = [json.loads(line) for line in lines]
        found = [r for r in records if r["correlationId"] == uid]
        return found if any(r["event"] == "SessionEnded" for r in found) else None

    records = agents.wait_for(mine, 10, "the session's records in the trail")
    events = [r["event"] for r in records]
    assert events[:2] == ["TokenMinted", "SessionOpened"]
    assert events[-1] == "SessionEnded"
    assert records[1]["actor"] == "agent-alice"
    assert records[1]["requestedBy"] == "agent-alice"
    assert records[1]["decidedBy"] == [
        {"kind": "policy", "name": "agent-authority", "reason": records[1]["message"]}
    ]
    assert records[-1]["decidedBy"] == []  # spec.ended: the client's own act
    assert all(r["recordId"] and r["keyId"] for r in records)
    # The record follows the committed status; the digest follows the record.
    agents.wait_for(
        lambda: (
            agents.get_session(w.admin, w.ns, name)["status"].get("auditDigest")
            == records[-1]["hash"]
            or None
        ),
        10,
        "the session's audit digest",
    )
    assert ended["status"]["phase"] == "Ended"

    verified = _verify(log, public_key)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK:")

    tampered = tmp_path / "tampered.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if json.loads(line)["correlationId"] == uid)
    lines[index] = lines[index].replace('"actor":"agent-alice"', '"actor":"someone-else"')
    tampered.write_text("".join(lines))
    caught = _verify(tampered, public_key)
    assert caught.returncode == 1
    assert f"TAMPERED at seq {json.loads(log.read_text().splitlines()[index])['seq']}" in (
        caught.stdout
    )


def _records_of(log: pathlib.Path, uid: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in records if r["correlationId"] == uid]


def _digest_is(w: World, name: str, record: dict[str, Any]) -> None:
    agents.wait_for(
        lambda: (
            agents.get_session(w.admin, w.ns, name)["status"].get("auditDigest") == record["hash"]
            or None
        ),
        30,
        f"status.auditDigest of {name} to be the hash of its {record['event']} record",
    )


def _crash_at_activation(w: World, operator: OperatorProcess, failpoint: str) -> tuple[str, str]:
    """Restart the operator with ``failpoint``, open a session, see it die there, restart it."""
    operator.stop()
    operator.start(failpoints=failpoint)
    name = agents.unique("crash")
    agents.open_session(w.agent, w.ns, agents.session_body(name, w.grant))
    assert operator.wait_exit(30) != 0, f"the operator did not stop at {failpoint}"
    before = agents.get_session(w.admin, w.ns, name)
    # Records follow the status: at either failpoint the activation is committed already.
    assert (before.get("status") or {}).get("phase") == "Active", before.get("status")
    operator.start()
    return name, before["metadata"]["uid"]


def test_a_crash_after_the_record_before_its_digest_records_once(
    world: World, operator: OperatorProcess
) -> None:
    """SIGKILL right after SessionOpened is in the trail (the session is Active, its digest not
    written): the restarted operator writes no record twice and sets the digest."""
    w = world
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    name, uid = _crash_at_activation(w, operator, "after-audit:SessionOpened")
    agents.wait_phase(w.admin, w.ns, name, {"Active"}, timeout=30)
    opened = agents.wait_for(
        lambda: next((r for r in _records_of(log, uid) if r["event"] == "SessionOpened"), None),
        30,
        "SessionOpened in the trail",
    )
    _digest_is(w, name, opened)
    events = [r["event"] for r in _records_of(log, uid)]
    assert events.count("SessionOpened") == 1, events
    assert events.count("TokenMinted") == 1, events


def test_a_crash_between_the_status_and_its_record_loses_nothing(
    world: World, operator: OperatorProcess
) -> None:
    """SIGKILL right after the session's status says Active, before any record of it: the
    restarted operator writes the missing TokenMinted and SessionOpened, once each."""
    w = world
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    name, uid = _crash_at_activation(w, operator, "after-status:SessionOpened")
    opened = agents.wait_for(
        lambda: next((r for r in _records_of(log, uid) if r["event"] == "SessionOpened"), None),
        30,
        "the SessionOpened record written on resume",
    )
    _digest_is(w, name, opened)
    agents.end_session(w.agent, w.ns, name)
    agents.wait_phase(w.admin, w.ns, name, {"Ended"}, timeout=30)
    ended = agents.wait_for(
        lambda: next((r for r in _records_of(log, uid) if r["event"] == "SessionEnded"), None),
        30,
        "SessionEnded in the trail",
    )
    events = [r["event"] for r in _records_of(log, uid)]
    assert events == ["TokenMinted", "SessionOpened", "SessionEnded"], events
    _digest_is(w, name, ended)


def test_a_transition_that_loses_the_race_records_nothing(
    world: World, operator: OperatorProcess
) -> None:
    """Another writer (a second replica, here the test with the operator's own credentials)
    moves the session to Denied while this operator is about to activate it: the operator's
    conditional status patch fails, the session stays Denied, and this operator's trail holds
    no record of an activation that never happened (before: TokenMinted and SessionOpened)."""
    w = world
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    operator.stop()
    operator.start(failpoints="pause-before-status:SessionOpened=8")
    try:
        name = agents.unique("race")
        created = agents.open_session(w.agent, w.ns, agents.session_body(name, w.grant))
        uid = created["metadata"]["uid"]
        # The operator read the session as Pending and is creating its credentials.
        agents.wait_service_account(w.admin, w.ns, name, uid, "the session's ServiceAccount")
        other = config.new_client_from_config(config_file=str(operator.env.kubeconfig))
        client.CustomObjectsApi(other).patch_namespaced_custom_object_status(
            "agentauthority.io",
            "v1alpha1",
            w.ns,
            "incidentsessions",
            name,
            {"status": {"phase": "Denied", "reason": "OtherReplica"}},
        )
        agents.wait_service_account_gone(
            w.admin, w.ns, name, uid, "the loser to take its credentials back"
        )
        body = agents.get_session(w.admin, w.ns, name)
        assert body["status"]["phase"] == "Denied", body["status"]
        events = [r["event"] for r in _records_of(log, uid)]
        assert "SessionOpened" not in events, events
        assert "TokenMinted" not in events, events
    finally:
        operator.stop()
        operator.start()


def _metric(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_what_happened(world: World, operator: OperatorProcess) -> None:
    import urllib.request

    url = f"http://127.0.0.1:{operator.env.options.metrics_port}/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    before = scrape()
    body, _ = _active(world)
    agents.end_session(world.agent, world.ns, body["metadata"]["name"])
    agents.wait_phase(world.admin, world.ns, body["metadata"]["name"], {"Ended"})
    ended = 'reason="Ended"'
    revocations = "agent_authority_revocations_total"

    # The phase is visible before the operator has written the session's audit record and
    # digest, and the revocation is counted after those: wait for the count, then check it
    # moved by exactly one.
    def counted() -> str | None:
        text = scrape()
        moved = _metric(text, revocations, ended) > _metric(before, revocations, ended)
        return text if moved else None

    after = agents.wait_for(counted, 15, "the revocation to be counted", every=0.2)
    minted = "agent_authority_tokens_minted_total"
    assert _metric(after, minted) == _metric(before, minted) + 1
    assert _metric(after, revocations, ended) == _metric(before, revocations, ended) + 1
    ready = "agent_authority_session_ready_latency_seconds_count"
    assert _metric(after, ready) == _metric(before, ready) + 1
