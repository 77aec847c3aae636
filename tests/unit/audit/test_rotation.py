"""Idempotent appends, key hand-overs, and refusing a new chain beside an existing log."""

from __future__ import annotations

import json
import pathlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, errors, signing, trail, verify
from agent_authority.models import audit as models
from tests.unit.audit.test_chain import entry, ticking_clock

OLD = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
NEW = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))
ID_A, ID_B = "a" * 32, "b" * 32


def lines(path: pathlib.Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_record_id_the_log_holds_is_not_appended_again(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "trail.jsonl"
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        first = c.append(entry(record_id=ID_A))
        c.append(entry(1, record_id=ID_B))
    # A crash replays the transition after a restart: the resumed chain knows the id.
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        again = c.append(entry(2, record_id=ID_A))
    assert isinstance(first, models.AuditRecord)
    assert again == models.Checkpoint(seq=first.seq, hash=first.hash)
    assert len(lines(log)) == 2
    assert verify.verify(lines(log), OLD.public_key).ok


def test_a_log_with_a_repeated_record_id_fails_verification(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "trail.jsonl"
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        c.append(entry(record_id=ID_A))
    forged = chain.Chain(OLD, _Lines(log), clock=ticking_clock(), head=c.head)
    forged.append(entry(1, record_id=ID_A))  # a writer that ignores ids
    result = verify.verify(lines(log), OLD.public_key)
    assert not result.ok
    assert result.reason is verify.Reason.DUPLICATE_RECORD_ID
    assert result.first_bad_seq == 1


class _Lines:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def write(self, record: models.AuditRecord) -> None:
        with self.path.open("a") as f:
            f.write(chain.encode_line(record) + "\n")


def test_rotation_hands_over_and_the_verifier_follows(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "trail.jsonl"
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        c.append(entry())
    with chain.Chain.resume(
        log, NEW, clock=ticking_clock(), fsync=False, root_key=OLD.public_key, outgoing=OLD
    ) as c:
        c.append(entry(1))
    records = [json.loads(line) for line in lines(log)]
    assert [r["event"] for r in records] == ["TokenMinted", "KeyHandedOver", "TokenMinted"]
    assert [r["keyId"] for r in records] == [OLD.key_id, OLD.key_id, NEW.key_id]
    assert records[1]["details"]["nextKeyId"] == NEW.key_id
    result = verify.verify(lines(log), OLD.public_key)
    assert result.ok, str(result)
    assert result.key_ids == (OLD.key_id, NEW.key_id)
    # Restarted with the new key only: it continues, no second hand-over.
    with chain.Chain.resume(
        log, NEW, clock=ticking_clock(), fsync=False, root_key=OLD.public_key
    ) as c:
        c.append(entry(2))
    assert verify.verify(lines(log), OLD.public_key).ok
    assert len(lines(log)) == 4


def test_a_forged_hand_over_is_caught(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "trail.jsonl"
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        c.hand_over(NEW)
        c.append(entry())
    records = [json.loads(line) for line in lines(log)]
    # Someone with neither key rewrites the hand-over to name their own key: the hash and the
    # signature no longer match, so the walk stops there.
    records[0]["details"]["nextKeyId"] = "0" * 16
    tampered = [json.dumps(r) for r in records]
    result = verify.verify(tampered, OLD.public_key)
    assert not result.ok
    assert result.first_bad_seq == 0
    # Verifying with the newer key alone does not work: trust starts with the first key.
    assert verify.verify(lines(log), NEW.public_key).reason is verify.Reason.UNKNOWN_KEY


def test_a_log_continuing_with_another_key_is_refused(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "trail.jsonl"
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        c.append(entry())
    with pytest.raises(errors.ResumeRefusedError, match="continues with key"):
        chain.Chain.resume(log, NEW, clock=ticking_clock(), fsync=False, root_key=OLD.public_key)


def test_a_missing_key_beside_an_existing_log_refuses_to_start(tmp_path: pathlib.Path) -> None:
    log, key = tmp_path / "trail.jsonl", tmp_path / "trail.jsonl.key"
    trail.open_trail(log, key).record(
        models.AuditEvent.SESSION_OPENED,
        {"metadata": {"uid": "u", "name": "s"}},
        correlation_id="u",
        actor="a",
        reason="Active",
    )
    trail.TRAIL.close()
    key.unlink()
    with pytest.raises(errors.SigningKeyError, match="refusing to start a new chain"):
        trail.open_trail(log, key)
    assert not key.exists()


def test_open_trail_rotates_with_the_previous_key(tmp_path: pathlib.Path) -> None:
    log, old, new = tmp_path / "t.jsonl", tmp_path / "old.key", tmp_path / "new.key"
    body = {"metadata": {"uid": "u", "name": "s"}, "spec": {"requester": {"username": "alice"}}}
    opened = trail.open_trail(log, old)
    opened.record(
        models.AuditEvent.SESSION_OPENED, body, correlation_id="u", actor="alice", reason="Active"
    )
    trail.TRAIL.close()
    rotated = trail.open_trail(log, new, previous_key_path=old)
    again = rotated.record(
        models.AuditEvent.SESSION_OPENED, body, correlation_id="u", actor="alice", reason="Active"
    )
    rotated.record(
        models.AuditEvent.SESSION_ENDED, body, correlation_id="u", actor="alice", reason="Ended"
    )
    trail.TRAIL.close()
    assert isinstance(again, models.Checkpoint)  # the replayed opening was not written twice
    events = [json.loads(line)["event"] for line in lines(log)]
    assert events == ["SessionOpened", "KeyHandedOver", "SessionEnded"]
    root = signing.load_public_key(trail.root_key_path(log))
    assert verify.verify(lines(log), root).ok
    last = json.loads(lines(log)[-1])
    assert last["requestedBy"] == "alice"
    assert last["decidedBy"] == []


def test_a_replayed_record_does_not_fire_its_after_audit_failpoint(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed operator re-records the phase each object is in; a record the log already holds
    is no new append, so a crash test's ``after-audit:`` failpoint must not fire for it."""
    from agent_authority import failpoints

    fired: list[str] = []
    monkeypatch.setattr(failpoints, "hit", fired.append)
    log = tmp_path / "trail.jsonl"
    body = {"metadata": {"name": "s", "namespace": "n", "uid": "u-1"}, "kind": "IncidentSession"}
    with chain.Chain.resume(log, OLD, clock=ticking_clock(), fsync=False) as c:
        t = trail.Trail(c)
        event = models.AuditEvent.SESSION_OPENED
        t.record(event, body, correlation_id="u-1", actor="op", reason="Opened")
        t.record(event, body, correlation_id="u-1", actor="op", reason="Opened")
        t.record_many([trail.entry(event, body, correlation_id="u-1", actor="op", reason="Opened")])
    assert fired == [f"{failpoints.AFTER_AUDIT}:{event.value}"]
    assert len(lines(log)) == 1
