"""The operator's signed audit trail on the real cluster: complete, correlated, verifiable."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

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
    assert ended["status"]["auditDigest"] == records[-1]["hash"]

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


def test_a_crash_between_the_record_and_the_status_patch_records_once(
    world: World, operator: OperatorProcess
) -> None:
    """SIGKILL right after SessionOpened is in the trail, before the session's status says so:
    the restarted operator replays the activation, and the trail still holds each record once."""
    w = world
    assert operator.env.options.audit_trail is not None
    log = pathlib.Path(operator.env.options.audit_trail)
    operator.stop()
    operator.start(failpoints="after-audit:SessionOpened")
    name = agents.unique("crash")
    agents.open_session(w.agent, w.ns, agents.session_body(name, w.grant))
    assert operator.wait_exit(30) != 0, "the operator did not stop at the failpoint"
    before = agents.get_session(w.admin, w.ns, name)
    assert (before.get("status") or {}).get("phase") != "Active"
    operator.start()
    body = agents.wait_phase(w.admin, w.ns, name, {"Active"}, timeout=30)
    uid = body["metadata"]["uid"]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    events = [r["event"] for r in records if r["correlationId"] == uid]
    assert events.count("SessionOpened") == 1, events
    assert events.count("TokenMinted") == 1, events
    opened = next(r for r in records if r["correlationId"] == uid and r["event"] == "SessionOpened")
    assert body["status"]["auditDigest"] == opened["hash"]


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
    after = scrape()
    minted = "agent_authority_tokens_minted_total"
    assert _metric(after, minted) == _metric(before, minted) + 1
    ended = 'reason="Ended"'
    revocations = "agent_authority_revocations_total"
    assert _metric(after, revocations, ended) == _metric(before, revocations, ended) + 1
    ready = "agent_authority_session_ready_latency_seconds_count"
    assert _metric(after, ready) == _metric(before, ready) + 1
