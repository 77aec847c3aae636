from __future__ import annotations

import asyncio
import datetime
import hashlib
import itertools
import json
import pathlib
import stat
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, errors, signing, sinks, verify
from agent_authority.models import audit as audit_models

SIGNER = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER_SIGNER = signing.Signer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)))
T0 = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def ticking_clock(start: datetime.datetime = T0) -> Callable[[], datetime.datetime]:
    ticks = itertools.count()
    return lambda: start + datetime.timedelta(seconds=next(ticks))


def entry(n: int = 0, **changes: object) -> audit_models.AuditEntry:
    fields: dict[str, object] = {
        "event": audit_models.AuditEvent.TOKEN_MINTED,
        "correlation_id": "6f1c2a3e-0000-4000-8000-000000000001",
        "actor": "system:serviceaccount:agent-authority:operator",
        "object": {
            "apiVersion": "agentauthority.io/v1alpha1",
            "kind": "IncidentSession",
            "namespace": "payments",
            "name": "inc-42",
        },
        "reason": "TokenMinted",
        "message": f"token {n} minted for 900s",
        "details": {"ttlSeconds": 900, "audience": "kubernetes", "rotated": False},
    }
    fields.update(changes)
    return audit_models.AuditEntry.model_validate(fields)


def mode_of(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- canonical form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            {"b": 1, "a": {"d": [], "c": None}},
            b'{"a":{"c":null,"d":[]},"b":1}',
            id="keys sorted at every depth, no whitespace",
        ),
        pytest.param({"B": 1, "a": 2, "_": 3}, b'{"B":1,"_":3,"a":2}', id="code point order"),
        pytest.param(["é", "日本"], '["é","日本"]'.encode(), id="non-ASCII as UTF-8, not escaped"),
        pytest.param(
            'a"b\\c\n\t\x01\x7f/',
            b'"a\\"b\\\\c\\n\\t\\u0001\x7f/"',
            id="only quote, backslash and controls escaped; controls in lowercase hex",
        ),
        pytest.param(
            [True, False, None, 0, -7, 2**53 - 1],
            b"[true,false,null,0,-7,9007199254740991]",
            id="literals and safe integers",
        ),
    ],
)
def test_canonical_json(value: object, expected: bytes) -> None:
    assert chain.canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"a": 1.5}, r"\$\.a: a float has no canonical", id="a float"),
        pytest.param([2**53], "beyond", id="an integer beyond 2**53-1"),
        pytest.param({1: "a"}, "not a string", id="a non-string key"),
        pytest.param(("a",), "tuple has no canonical", id="a tuple"),
        pytest.param("\ud800", "lone surrogate", id="a lone surrogate"),
    ],
)
def test_canonical_json_refuses(value: object, message: str) -> None:
    with pytest.raises(errors.RecordError, match=message):
        chain.canonical_json(value)


def test_record_hash_covers_everything_but_hash_and_signature() -> None:
    body = {"seq": 0, "message": "x"}

    assert chain.record_hash(body) == hashlib.sha256(b'{"message":"x","seq":0}').hexdigest()
    assert chain.record_hash({**body, "hash": "h", "signature": "s"}) == chain.record_hash(body)
    assert chain.record_hash({**body, "keyId": "k"}) != chain.record_hash(body)


def test_first_record_canonical_form_is_pinned() -> None:
    # Written out by hand: changing the canonical form breaks every existing log. (Members added
    # later, such as recordId, requestedBy and decidedBy, are covered when present; lines written
    # before they existed still verify: the hash covers the line as read.)
    record = chain.seal(
        entry(details={"n": 1}), head=None, now=T0.replace(microsecond=250000), signer=SIGNER
    )

    expected = (
        '{"actor":"system:serviceaccount:agent-authority:operator",'
        '"correlationId":"6f1c2a3e-0000-4000-8000-000000000001","decidedBy":[],'
        '"details":{"n":1},"event":"TokenMinted",'
        f'"keyId":"{SIGNER.key_id}","message":"token 0 minted for 900s",'
        '"object":{"apiVersion":"agentauthority.io/v1alpha1","kind":"IncidentSession",'
        '"name":"inc-42","namespace":"payments","uid":null},'
        f'"prevHash":"{"0" * 64}","reason":"TokenMinted","recordId":null,"requestedBy":null,'
        '"seq":0,"time":"2025-01-02T03:04:05.250000Z"}'
    )
    assert record.hash == hashlib.sha256(expected.encode()).hexdigest()
    assert signing.signature_valid(SIGNER.public_key, record.hash, record.signature)
    line = json.loads(chain.encode_line(record))
    assert line == {**json.loads(expected), "hash": record.hash, "signature": record.signature}


# --- sealing and appending --------------------------------------------------------------------


def test_records_are_numbered_from_zero_and_each_links_to_the_previous() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=ticking_clock())

    returned = [trail.append(entry(n)) for n in range(4)]

    assert memory.records == returned
    assert [r.seq for r in returned] == [0, 1, 2, 3]
    assert [r.prev_hash for r in returned] == [chain.ZERO_HASH] + [r.hash for r in returned[:3]]
    assert [r.time for r in returned] == [T0 + datetime.timedelta(seconds=n) for n in range(4)]
    assert all(r.key_id == SIGNER.key_id for r in returned)
    assert all(r.hash == chain.record_hash(chain.wire(r)) for r in returned)
    assert trail.head == audit_models.Checkpoint(seq=3, hash=returned[3].hash)
    assert verify.verify(memory.lines, SIGNER.public_key).ok


def test_time_is_stored_in_utc() -> None:
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    trail = chain.Chain(SIGNER, sinks.Memory(), clock=lambda: T0.astimezone(tokyo))

    record = trail.append(entry())

    assert record.time == T0
    assert record.time.utcoffset() == datetime.timedelta(0)
    assert chain.wire(record)["time"] == "2025-01-02T03:04:05Z"


def test_a_naive_clock_is_refused_before_anything_is_written() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=lambda: datetime.datetime(2025, 1, 1))

    with pytest.raises(errors.RecordError, match="timezone"):
        trail.append(entry())

    assert memory.records == []
    assert trail.head is None


def test_a_failed_write_stops_the_chain_for_good() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=ticking_clock())
    trail.append(entry(0))
    memory.error = OSError("disk full")

    with pytest.raises(errors.SinkError, match=r"seq 1 .* disk full"):
        trail.append(entry(1))
    memory.error = None
    with pytest.raises(errors.ChainBrokenError, match="disk full"):
        trail.append(entry(2))

    assert [r.seq for r in memory.records] == [0]
    assert trail.head is not None
    assert trail.head.seq == 0


def test_concurrent_appends_from_threads_keep_one_gapless_chain() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=ticking_clock())

    def worker() -> None:
        for n in range(25):
            trail.append(entry(n))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.seq for r in memory.records] == list(range(200))
    assert verify.verify(memory.lines, SIGNER.public_key).records_checked == 200


def test_append_is_a_plain_call_from_asyncio() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=ticking_clock())

    async def main() -> None:
        trail.append(entry(0))
        await asyncio.gather(*(asyncio.to_thread(trail.append, entry(n)) for n in range(1, 5)))

    asyncio.run(main())

    assert verify.verify(memory.lines, SIGNER.public_key).records_checked == 5


# --- sinks ------------------------------------------------------------------------------------


def test_fan_out_writes_every_sink_even_after_one_fails() -> None:
    broken, healthy = sinks.Memory(), sinks.Memory()
    broken.error = RuntimeError("apiserver unavailable")
    record = chain.seal(entry(), head=None, now=T0, signer=SIGNER)

    with pytest.raises(errors.SinkError, match=r"1 of 2 audit sinks failed.*apiserver unavailable"):
        sinks.FanOut(broken, healthy).write(record)

    assert healthy.records == [record]


def test_best_effort_hands_failures_to_its_handler() -> None:
    broken = sinks.Memory()
    broken.error = RuntimeError("apiserver unavailable")
    seen: list[tuple[int, str]] = []
    mirror = sinks.BestEffort(broken, on_error=lambda record, e: seen.append((record.seq, str(e))))
    log = sinks.Memory()
    trail = chain.Chain(SIGNER, sinks.FanOut(log, mirror), clock=ticking_clock())

    trail.append(entry(0))
    trail.append(entry(1))

    assert seen == [(0, "apiserver unavailable"), (1, "apiserver unavailable")]
    assert [r.seq for r in log.records] == [0, 1]


def test_json_lines_file_writes_one_canonical_line_per_record(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    record = chain.seal(entry(), head=None, now=T0, signer=SIGNER)

    with sinks.JsonLinesFile(path, fsync=True) as log:
        log.write(record)
        log.write(record)

    assert mode_of(path) == 0o600
    assert path.read_text() == 2 * (chain.encode_line(record) + "\n")


def test_json_lines_file_admits_one_writer(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"

    with sinks.JsonLinesFile(path), pytest.raises(errors.LogLockedError, match="locked"):
        sinks.JsonLinesFile(path)
    with sinks.JsonLinesFile(path):  # released on close
        pass


def test_a_closed_json_lines_file_refuses_writes(tmp_path: pathlib.Path) -> None:
    log = sinks.JsonLinesFile(tmp_path / "audit.jsonl")
    log.close()
    log.close()

    with pytest.raises(errors.SinkError, match="closed"):
        log.write(chain.seal(entry(), head=None, now=T0, signer=SIGNER))


# --- resuming from a log file -----------------------------------------------------------------


def write_log(path: pathlib.Path, records: int, signer: signing.Signer = SIGNER) -> None:
    with chain.Chain.resume(path, signer, clock=ticking_clock(), fsync=False) as trail:
        for n in range(records):
            trail.append(entry(n))


def test_resume_creates_a_new_log_with_mode_0600(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"

    with chain.Chain.resume(path, SIGNER, clock=ticking_clock()) as trail:
        assert trail.head is None
        assert trail.append(entry()).seq == 0

    assert mode_of(path) == 0o600


def test_resume_continues_seq_and_prev_hash_across_restarts(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    last = json.loads(path.read_text().splitlines()[-1])

    mirror = sinks.Memory()
    with chain.Chain.resume(path, SIGNER, clock=ticking_clock(), mirrors=[mirror]) as trail:
        assert trail.head == audit_models.Checkpoint(seq=2, hash=last["hash"])
        first_after_restart = trail.append(entry(3))
        trail.append(entry(4))

    assert first_after_restart.seq == 3
    assert first_after_restart.prev_hash == last["hash"]
    assert [r.seq for r in mirror.records] == [3, 4]
    result = verify.verify(path.read_text().splitlines(), SIGNER.public_key)
    assert result.ok
    assert result.records_checked == 5


def _edit_second_record(path: pathlib.Path) -> None:
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["message"] = "nothing happened"
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def _delete_second_record(path: pathlib.Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")


def _tear_last_line(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _drop_final_newline(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


@pytest.mark.parametrize(
    ("tamper", "signer", "message", "bad_seq"),
    [
        pytest.param(_edit_second_record, SIGNER, r"seq 1 .*hash mismatch", 1, id="edited record"),
        pytest.param(
            _delete_second_record, SIGNER, r"seq 1 .*sequence gap", 1, id="deleted record"
        ),
        pytest.param(_tear_last_line, SIGNER, r"seq 2 .*unparseable line", 2, id="torn last line"),
        pytest.param(lambda path: None, OTHER_SIGNER, r"seq 0 .*unknown key", 0, id="another key"),
        pytest.param(
            _drop_final_newline, SIGNER, "no newline", None, id="complete last line, no newline"
        ),
    ],
)
def test_resume_refuses_a_log_that_fails_verification(
    tmp_path: pathlib.Path,
    tamper: Callable[[pathlib.Path], None],
    signer: signing.Signer,
    message: str,
    bad_seq: int | None,
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    tamper(path)
    before = path.read_bytes()

    with pytest.raises(errors.ResumeRefusedError, match=message) as refused:
        chain.Chain.resume(path, signer, clock=ticking_clock())

    assert refused.value.result.first_bad_seq == bad_seq
    assert path.read_bytes() == before, "a refused log is left as it was, as evidence"
    with sinks.JsonLinesFile(path):  # and its lock is released
        pass


def test_resume_refuses_a_log_another_process_is_writing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"

    with (
        chain.Chain.resume(path, SIGNER, clock=ticking_clock()),
        pytest.raises(errors.LogLockedError),
    ):
        chain.Chain.resume(path, SIGNER, clock=ticking_clock())


# --- batches -----------------------------------------------------------------------------------


def test_a_batch_is_one_write_and_one_fsync_and_verifies_like_single_appends(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    fsyncs: list[int] = []
    real_fsync = sinks.os.fsync
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with chain.Chain.resume(path, SIGNER, clock=ticking_clock()) as trail:
        first = trail.append(entry(0))
        fsyncs.clear()
        batch = trail.append_many([entry(n) for n in range(1, 6)])
        assert len(fsyncs) == 1, "one fsync for the whole batch"
        assert trail.head == audit_models.Checkpoint(seq=5, hash=batch[-1].hash)
        after = trail.append(entry(6))

    assert [r.seq for r in [first, *batch, after]] == list(range(7))
    assert batch[0].prev_hash == first.hash
    result = verify.verify(path.read_text().splitlines(), SIGNER.public_key)
    assert result.ok
    assert result.records_checked == 7


def test_a_batch_holds_a_record_id_once_even_when_it_repeats() -> None:
    memory = sinks.Memory()
    trail = chain.Chain(SIGNER, memory, clock=ticking_clock())
    held = trail.append(entry(0, record_id="0" * 32))

    out = trail.append_many([entry(1, record_id="0" * 32), entry(2), entry(3, record_id="0" * 32)])

    assert [r.seq for r in memory.records] == [0, 1]
    assert out[0] == out[2] == audit_models.Checkpoint(seq=0, hash=held.hash)


def test_a_failed_batch_write_moves_nothing_and_stops_the_chain(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    with chain.Chain.resume(path, SIGNER, clock=ticking_clock()) as trail:
        trail.append(entry(0))
        head = trail.head
        assert trail._log is not None
        trail._log.close()  # the next write fails

        with pytest.raises(errors.SinkError, match=r"seq 1-2 .*closed"):
            trail.append_many([entry(1), entry(2)])
        assert trail.head == head
        with pytest.raises(errors.ChainBrokenError):
            trail.append_many([entry(3)])


def test_the_audit_package_imports_neither_kopf_nor_a_kubernetes_client() -> None:
    code = (
        "import sys\n"
        "from agent_authority.audit import chain, errors, signing, sinks, verify\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert found.strip() == "[]"
