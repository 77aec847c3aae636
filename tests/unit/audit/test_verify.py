from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, errors, signing, sinks, verify
from agent_authority.models import audit as audit_models

SIGNER = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
ATTACKER = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)))
T0 = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
EVENTS = [
    audit_models.AuditEvent.SESSION_OPENED,
    audit_models.AuditEvent.TOKEN_MINTED,
    audit_models.AuditEvent.REQUEST_EVALUATED,
    audit_models.AuditEvent.REQUEST_APPROVED,
    audit_models.AuditEvent.REQUEST_APPLIED,
    audit_models.AuditEvent.SESSION_REVOKED,
]
N = len(EVENTS)


def build_log(signer: signing.Signer = SIGNER, start: datetime.datetime = T0) -> list[str]:
    """Six records of one session, as a file sink would have written them."""
    ticks = itertools.count()
    memory = sinks.Memory()
    trail = chain.Chain(
        signer, memory, clock=lambda: start + datetime.timedelta(seconds=next(ticks))
    )
    for event in EVENTS:
        trail.append(
            audit_models.AuditEntry(
                event=event,
                correlation_id="6f1c2a3e-0000-4000-8000-000000000001",
                actor="alice@example.com",
                object=audit_models.ObjectRef(
                    kind="RemediationRequest", namespace="payments", name="restart-api"
                ),
                reason=event.value,
                message=f"{event.value} by alice",
                details={"replicas": 3, "dryRun": False, "approvers": ["bob", "carol"]},
            )
        )
    return memory.lines


LOG = build_log()
HEAD = audit_models.Checkpoint(seq=N - 1, hash=json.loads(LOG[-1])["hash"])


# --- tampering, as an attacker without the signing key would do it ------------------------------


def load(line: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(line)
    return record


def dump(record: dict[str, Any]) -> str:
    return json.dumps(record)


def edited(k: int, **changes: Any) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        lines[k] = dump({**load(lines[k]), **changes})
        return lines

    return tamper


def edited_and_rehashed(k: int) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        record = {**load(lines[k]), "message": "nothing to see here"}
        lines[k] = dump({**record, "hash": chain.record_hash(record)})
        return lines

    return tamper


def deleted(k: int) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        del lines[k]
        return lines

    return tamper


def swapped(k: int) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        lines[k], lines[k + 1] = lines[k + 1], lines[k]
        return lines

    return tamper


def duplicated(k: int) -> Callable[[list[str]], list[str]]:
    """Replay record k right after itself."""

    def tamper(lines: list[str]) -> list[str]:
        lines.insert(k + 1, lines[k])
        return lines

    return tamper


def forge(record: dict[str, Any], signer: signing.Signer, key_id: str) -> dict[str, Any]:
    body = {**record, "keyId": key_id}
    digest = chain.record_hash(body)
    return {**body, "hash": digest, "signature": signer.sign(digest)}


def inserted(k: int, key_id: str) -> Callable[[list[str]], list[str]]:
    """A forged record at position k, correctly numbered and chained, signed by the attacker."""

    def tamper(lines: list[str]) -> list[str]:
        previous = load(lines[k - 1])
        record = {
            **previous,
            "seq": k,
            "prevHash": previous["hash"],
            "event": "RequestApproved",
            "actor": "mallory@example.com",
        }
        lines.insert(k, dump(forge(record, ATTACKER, key_id)))
        return lines

    return tamper


def resigned(signer: signing.Signer, key_id: str) -> Callable[[list[str]], list[str]]:
    """Every record rewritten and re-chained with ``signer``: a complete, consistent history."""

    def tamper(lines: list[str]) -> list[str]:
        rewritten: list[str] = []
        prev = chain.ZERO_HASH
        for n, line in enumerate(lines):
            record = {**load(line), "prevHash": prev}
            if n == 2:
                record["actor"] = "mallory@example.com"
            record = forge(record, signer, key_id)
            prev = record["hash"]
            rewritten.append(dump(record))
        return rewritten

    return tamper


def spliced(k: int) -> Callable[[list[str]], list[str]]:
    """Record k replaced by record k of another genuine log signed with the same key."""

    def tamper(lines: list[str]) -> list[str]:
        lines[k] = build_log(start=T0 + datetime.timedelta(days=1))[k]
        return lines

    return tamper


def cut(k: int) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        lines[k] = lines[k][: len(lines[k]) // 2]
        return lines

    return tamper


def replaced(k: int, line: str) -> Callable[[list[str]], list[str]]:
    def tamper(lines: list[str]) -> list[str]:
        lines[k] = line
        return lines

    return tamper


def reformatted(lines: list[str]) -> list[str]:
    return [json.dumps(load(line), indent=2, sort_keys=False).replace("\n", " ") for line in lines]


def truncated_tail(lines: list[str]) -> list[str]:
    return lines[:-2]


def emptied(lines: list[str]) -> list[str]:
    return []


def untouched(lines: list[str]) -> list[str]:
    return lines


@dataclasses.dataclass(frozen=True)
class Case:
    tamper: Callable[[list[str]], list[str]]
    reason: verify.Reason | None
    """``None``: the log verifies."""
    seq: int | None = None
    anchor: audit_models.Checkpoint | None = None


VALID_LINE_WITH_FLOAT = dump({**load(LOG[1]), "details": {"replicas": 3.0}})

CASES = {
    "clean log verifies": Case(untouched, None),
    "clean log verifies against its head as anchor": Case(untouched, None, anchor=HEAD),
    "empty log verifies": Case(emptied, None),
    # modified
    "editing a field of the first record: hash mismatch at 0": Case(
        edited(0, message="nothing"), verify.Reason.HASH_MISMATCH, 0
    ),
    "editing a field of record 3: hash mismatch at 3": Case(
        edited(3, actor="mallory@example.com"), verify.Reason.HASH_MISMATCH, 3
    ),
    "editing a detail of the last record: hash mismatch at 5": Case(
        edited(5, details={"replicas": 0, "dryRun": False, "approvers": ["bob", "carol"]}),
        verify.Reason.HASH_MISMATCH,
        5,
    ),
    "editing seq: hash mismatch at the position": Case(
        edited(2, seq=7), verify.Reason.HASH_MISMATCH, 2
    ),
    "editing time: hash mismatch": Case(
        edited(4, time="2024-01-01T00:00:00Z"), verify.Reason.HASH_MISMATCH, 4
    ),
    "editing and recomputing the hash without the key: bad signature": Case(
        edited_and_rehashed(3), verify.Reason.BAD_SIGNATURE, 3
    ),
    "swapping in the signature of another record: bad signature": Case(
        edited(2, signature=load(LOG[3])["signature"]), verify.Reason.BAD_SIGNATURE, 2
    ),
    # deleted, reordered, inserted
    "deleting the first record: sequence gap at 0": Case(deleted(0), verify.Reason.SEQUENCE_GAP, 0),
    "deleting record 3: sequence gap at 3": Case(deleted(3), verify.Reason.SEQUENCE_GAP, 3),
    "swapping records 2 and 3: sequence gap at 2": Case(swapped(2), verify.Reason.SEQUENCE_GAP, 2),
    "replaying record 2 after itself: out of order at 3": Case(
        duplicated(2), verify.Reason.SEQUENCE_OUT_OF_ORDER, 3
    ),
    "inserting a forged record claiming the real key id: bad signature at 3": Case(
        inserted(3, SIGNER.key_id), verify.Reason.BAD_SIGNATURE, 3
    ),
    "inserting a record signed with the attacker's key id: unknown key at 3": Case(
        inserted(3, ATTACKER.key_id), verify.Reason.UNKNOWN_KEY, 3
    ),
    "splicing in a genuine record of another log: broken chain at 2": Case(
        spliced(2), verify.Reason.BROKEN_CHAIN, 2
    ),
    # re-signed
    "re-signing the whole log with another key: unknown key at 0": Case(
        resigned(ATTACKER, ATTACKER.key_id), verify.Reason.UNKNOWN_KEY, 0
    ),
    "re-signing with another key, keeping the key id: bad signature at 0": Case(
        resigned(ATTACKER, SIGNER.key_id), verify.Reason.BAD_SIGNATURE, 0
    ),
    # damaged lines
    "truncating line 4 mid-record: unparseable at 4": Case(
        cut(4), verify.Reason.UNPARSEABLE_LINE, 4
    ),
    "torn last line: unparseable at 5": Case(cut(5), verify.Reason.UNPARSEABLE_LINE, 5),
    "a blank line: unparseable": Case(replaced(1, ""), verify.Reason.UNPARSEABLE_LINE, 1),
    "a JSON array: unparseable": Case(replaced(1, "[]"), verify.Reason.UNPARSEABLE_LINE, 1),
    "NaN: unparseable": Case(
        replaced(1, LOG[1].replace('"replicas":3', '"replicas":NaN')),
        verify.Reason.UNPARSEABLE_LINE,
        1,
    ),
    "a duplicate key, which parsers resolve differently: unparseable": Case(
        replaced(1, LOG[1][:-1] + ',"seq":1}'), verify.Reason.UNPARSEABLE_LINE, 1
    ),
    "an extra member: invalid record": Case(
        edited(1, note="added later"), verify.Reason.INVALID_RECORD, 1
    ),
    "a malformed hash: invalid record": Case(
        edited(1, hash="abc"), verify.Reason.INVALID_RECORD, 1
    ),
    "a float, which has no canonical form: invalid record": Case(
        replaced(1, VALID_LINE_WITH_FLOAT), verify.Reason.INVALID_RECORD, 1
    ),
    # what the log alone cannot show
    "cutting whole records off the end is not detectable alone": Case(truncated_tail, None),
    "cutting records off the end is caught by an anchor": Case(
        truncated_tail, verify.Reason.TRUNCATED, 4, anchor=HEAD
    ),
    "emptying the log is caught by an anchor": Case(
        emptied, verify.Reason.TRUNCATED, 0, anchor=HEAD
    ),
    "a key holder's rewrite is not detectable alone": Case(resigned(SIGNER, SIGNER.key_id), None),
    "a key holder's rewrite is caught at the anchor": Case(
        resigned(SIGNER, SIGNER.key_id), verify.Reason.ANCHOR_MISMATCH, 5, anchor=HEAD
    ),
    "reformatting lines changes no content and verifies": Case(reformatted, None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verify(case: Case) -> None:
    lines = case.tamper(list(LOG))

    result = verify.verify(lines, SIGNER.public_key, anchor=case.anchor)

    assert result.reason == case.reason, result.detail
    assert result.ok is (case.reason is None)
    assert result.first_bad_seq == case.seq
    if case.reason is None:
        assert result.records_checked == len(lines)
    else:
        assert result.records_checked == case.seq
        expected_line = None if case.reason is verify.Reason.TRUNCATED else case.seq + 1
        assert result.line == expected_line


def test_head_of_a_clean_log_is_its_last_record() -> None:
    result = verify.verify(LOG, SIGNER.public_key)

    assert result.head == HEAD
    assert str(result) == f"ok: {N} records verified, head seq {N - 1} hash {HEAD.hash}"


def test_a_failure_names_position_reason_and_detail() -> None:
    result = verify.verify(deleted(3)(list(LOG)), SIGNER.public_key)

    assert str(result) == (
        "verification failed at seq 3 (line 4): sequence gap: expected seq 3, found 4: "
        "records missing or out of order; 3 records before it verified"
    )
    assert result.head == audit_models.Checkpoint(seq=2, hash=load(LOG[2])["hash"])


def test_lines_may_be_bytes_with_newlines() -> None:
    lines = [(line + "\n").encode() for line in LOG]

    assert verify.verify(lines, SIGNER.public_key).ok


def test_bytes_that_are_not_utf8_are_unparseable() -> None:
    lines = [line.encode() for line in LOG]
    lines[2] = lines[2].replace(b"alice", b"\xffalice")

    result = verify.verify(lines, SIGNER.public_key)

    assert (result.reason, result.first_bad_seq) == (verify.Reason.UNPARSEABLE_LINE, 2)
    assert "not UTF-8" in result.detail


def write_files(tmp_path: pathlib.Path, lines: list[str]) -> tuple[pathlib.Path, pathlib.Path]:
    log_path, key_path = tmp_path / "audit.jsonl", tmp_path / "audit.pub"
    log_path.write_text("".join(line + "\n" for line in lines))
    signing.write_public_key(SIGNER.public_key, key_path)
    return log_path, key_path


def test_verify_file_accepts_a_clean_log(tmp_path: pathlib.Path) -> None:
    log_path, key_path = write_files(tmp_path, LOG)

    result = verify.verify_file(log_path, key_path, anchor=HEAD)

    assert result.ok
    assert result.records_checked == N


def test_verify_file_pinpoints_a_tampered_record(tmp_path: pathlib.Path) -> None:
    log_path, key_path = write_files(tmp_path, edited(4, reason="Nothing")(list(LOG)))

    result = verify.verify_file(log_path, key_path)

    assert (result.reason, result.first_bad_seq, result.line) == (
        verify.Reason.HASH_MISMATCH,
        4,
        5,
    )


def test_verify_file_reports_a_missing_log(tmp_path: pathlib.Path) -> None:
    _, key_path = write_files(tmp_path, LOG)

    with pytest.raises(errors.LogReadError, match="cannot read the audit log"):
        verify.verify_file(tmp_path / "missing.jsonl", key_path)


def test_verify_file_reports_a_missing_key(tmp_path: pathlib.Path) -> None:
    log_path, _ = write_files(tmp_path, LOG)

    with pytest.raises(errors.SigningKeyError, match="cannot read audit public key"):
        verify.verify_file(log_path, tmp_path / "missing.pub")
