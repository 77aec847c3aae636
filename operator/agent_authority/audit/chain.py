"""The hash chain: canonical form, hashing, sealing, and the :class:`Chain` that appends records.

Canonical form
--------------
The canonical form of a JSON value is the UTF-8 encoding of its JSON text where:

- object members are sorted by key (Unicode code point order), at every depth;
- there is no whitespace at all: ``,`` between items, ``:`` between key and value;
- strings are written as they are, except ``"`` and ``\\`` (escaped with a backslash) and
  U+0000..U+001F (``\\b \\t \\n \\f \\r``, else ``\\u00xx`` in lowercase hex); no other escapes,
  so non-ASCII text appears as UTF-8; lone surrogates are refused;
- numbers are integers within ±(2**53-1), in plain decimal; floats are refused;
- ``true``, ``false``, ``null`` as such.

For every value an audit record can hold (ASCII keys, no floats) this is byte for byte RFC 8785
(JSON Canonicalization Scheme), so a verifier in another language can reproduce it.

A record's ``hash`` is the lowercase hex SHA-256 of the canonical form of its wire object
(camelCase members, nulls kept) without the ``hash`` and ``signature`` members; ``keyId``, ``seq``
and ``prevHash`` are covered. Its ``signature`` is Ed25519 over the 64 ASCII bytes of ``hash``.
A log line is the canonical form of the whole record followed by ``\\n``.

The chain
---------
Record 0 has ``prevHash`` = 64 zeros; record n has ``seq`` = n and ``prevHash`` = the ``hash`` of
record n-1. :class:`Chain` is the only writer: it holds a lock while it seals and writes, so
records reach the sink in ``seq`` order from any thread. ``append`` is a short synchronous call;
from asyncio call it directly, or through ``asyncio.to_thread`` if the sink fsyncs slow storage.

Idempotence: an entry with a ``recordId`` the log already holds is not appended again; ``append``
returns the checkpoint of the record that holds it. The ids are loaded when a log is resumed.

Keys: every record carries the ``keyId`` of the key that signed it. :meth:`Chain.hand_over`
appends a ``KeyHandedOver`` record signed by the outgoing key that names the next key (its id and
raw public key); every later record must be signed by that key. A verifier that trusts the key a
log started with follows the hand-overs (:mod:`agent_authority.audit.verify`).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import pathlib
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

import pydantic

from agent_authority.audit import errors, signing
from agent_authority.models import audit as audit_models

if typing.TYPE_CHECKING:
    from agent_authority.audit import sinks, verify

ZERO_HASH = audit_models.ZERO_HASH
SEAL_MEMBERS = frozenset({"hash", "signature"})
"""Wire members left out of the canonical form that ``hash`` covers."""

Clock = Callable[[], datetime.datetime]


def system_clock() -> datetime.datetime:
    """The wall clock, in UTC: the clock a running operator passes to :class:`Chain`."""
    return datetime.datetime.now(datetime.UTC)


def canonical_json(value: object) -> bytes:
    """The canonical form of a JSON value (see the module docstring); ``RecordError`` if none."""
    _check_canonical(value, "$")
    text = json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise errors.RecordError(f"text is not valid Unicode (lone surrogate): {e}") from e


def record_hash(wire: Mapping[str, object]) -> str:
    """Hex SHA-256 of a record's canonical form, leaving out ``hash`` and ``signature``."""
    body = {key: value for key, value in wire.items() if key not in SEAL_MEMBERS}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def wire(record: audit_models.UnsignedRecord) -> dict[str, object]:
    """A record as a JSON object: camelCase members, every member present (``null`` if unset)."""
    return record.model_dump(mode="json", by_alias=True)


def encode_line(record: audit_models.AuditRecord) -> str:
    """One log line (without the newline): the canonical form of the whole record."""
    return canonical_json(wire(record)).decode("utf-8")


def seal(
    entry: audit_models.AuditEntry,
    *,
    head: audit_models.Checkpoint | None,
    now: datetime.datetime,
    signer: signing.Signer,
) -> audit_models.AuditRecord:
    """Place ``entry`` after ``head`` (``None``: first record), hash and sign it. Pure."""
    fields = entry.model_dump(include=set(audit_models.AuditEntry.model_fields))
    try:
        unsigned = audit_models.UnsignedRecord.model_validate(
            {
                **fields,
                "seq": 0 if head is None else head.seq + 1,
                "time": now,
                "prev_hash": ZERO_HASH if head is None else head.hash,
                "key_id": signer.key_id,
            }
        )
    except pydantic.ValidationError as e:
        raise errors.RecordError(f"cannot place a {entry.event} record in the chain: {e}") from e
    body = wire(unsigned)
    digest = record_hash(body)
    return audit_models.AuditRecord.model_validate(
        {**body, "hash": digest, "signature": signer.sign(digest)}
    )


class Chain:
    """Appends sealed records to a sink, one after the other.

    A failed write stops the chain for good: the sink may or may not hold the record, so the next
    ``seq`` is unknown and guessing would fork or gap the log. Build a new chain with
    :meth:`resume`, which re-reads and verifies the log. Wrap sinks whose failures must not stop
    auditing (Kubernetes Events) in :class:`~agent_authority.audit.sinks.BestEffort`.
    """

    def __init__(
        self,
        signer: signing.Signer,
        sink: sinks.Sink,
        *,
        clock: Clock,
        head: audit_models.Checkpoint | None = None,
        record_ids: Mapping[str, audit_models.Checkpoint] | None = None,
    ) -> None:
        """``head`` is the last record already in the sink's log; ``None`` starts a new log.
        ``record_ids`` are the ids that log holds already, with the record holding each."""
        self._signer = signer
        self._ids: dict[str, audit_models.Checkpoint] = dict(record_ids or {})
        self._sink = sink
        self._clock = clock
        self._head = head
        self._lock = threading.Lock()
        self._failure: Exception | None = None
        self._log: sinks.JsonLinesFile | None = None

    @classmethod
    def resume(
        cls,
        path: pathlib.Path,
        signer: signing.Signer,
        *,
        clock: Clock,
        fsync: bool = True,
        mirrors: Sequence[sinks.Sink] = (),
        root_key: signing.PublicKey | None = None,
        outgoing: signing.Signer | None = None,
    ) -> Chain:
        """Continue the JSON-lines log at ``path`` (created, mode 0600, if missing).

        Takes the file's lock, verifies every line, starting with ``root_key`` (the key the log
        began with; default ``signer``'s) and following key hand-overs, and continues from the
        last record with ``signer``. If the log continues with ``outgoing``'s key instead, a
        hand-over to ``signer`` is appended first (key rotation). Fails closed:
        ``ResumeRefusedError`` if the log does not verify (tampered, torn last line, signed by an
        unknown key) or continues with a key that is neither ``signer`` nor ``outgoing``;
        ``LogLockedError`` if another process writes it. Records go to the file first, then to
        each of ``mirrors``.
        """
        # sinks and verify build on this module (line encoding, hashing); resuming is the one place
        # the chain needs them at run time, so they are imported here instead of at the top.
        from agent_authority.audit import sinks

        log = sinks.JsonLinesFile(path, fsync=fsync)  # locked first: nobody appends while we read
        try:
            result = _verified(path, root_key or signer.public_key)
            expected = result.next_key_id or signing.key_id(root_key or signer.public_key)
            writer = signer
            if expected != signer.key_id:
                if outgoing is None or expected != outgoing.key_id:
                    raise errors.ResumeRefusedError(
                        f"refusing to continue the audit log {path}: it continues with key "
                        f"{expected}, the signing key given is {signer.key_id}. To rotate keys, "
                        "pass the outgoing key as well (it signs the hand-over); never start a "
                        "new chain beside an existing log",
                        result,
                    )
                writer = outgoing
        except BaseException:
            log.close()
            raise
        sink: sinks.Sink = sinks.FanOut(log, *mirrors) if mirrors else log
        chain = cls(writer, sink, clock=clock, head=result.head, record_ids=result.record_ids)
        chain._log = log
        if writer is not signer:
            chain.hand_over(signer)
        return chain

    @property
    def head(self) -> audit_models.Checkpoint | None:
        """The last record appended (or resumed from): publish it as an anchor for verifiers."""
        with self._lock:
            return self._head

    @property
    def key_id(self) -> str:
        """The id of the key signing the next record."""
        with self._lock:
            return self._signer.key_id

    def holds(self, record_id: str) -> audit_models.Checkpoint | None:
        """The record holding ``record_id``, if the log has one."""
        with self._lock:
            return self._ids.get(record_id)

    def append(
        self, entry: audit_models.AuditEntry
    ) -> audit_models.AuditRecord | audit_models.Checkpoint:
        """Seal ``entry`` as the next record, write it to the sink, and return it.

        If the log already holds ``entry.record_id``, nothing is written and the checkpoint of
        the record that holds it is returned (a replayed transition).
        """
        with self._lock:
            if entry.record_id is not None and entry.record_id in self._ids:
                return self._ids[entry.record_id]
            return self._append_locked(entry)

    def append_many(
        self, entries: Sequence[audit_models.AuditEntry]
    ) -> list[audit_models.AuditRecord | audit_models.Checkpoint]:
        """:meth:`append` each of ``entries`` in order, written to the sink as one batch when it
        can take one (``write_many``: one write and one fsync for the lot), else one by one.

        All or nothing for the chain: the head moves only once the whole batch is written; a
        failed write stops the chain as in :meth:`append`.
        """
        with self._lock:
            if self._failure is not None:
                return [self._append_locked(entry) for entry in entries]  # raises ChainBroken
            write_many = getattr(self._sink, "write_many", None)
            if write_many is None:
                return [
                    self._ids[entry.record_id]
                    if entry.record_id is not None and entry.record_id in self._ids
                    else self._append_locked(entry)
                    for entry in entries
                ]
            head, ids = self._head, dict[str, audit_models.Checkpoint]()
            out: list[audit_models.AuditRecord | audit_models.Checkpoint] = []
            records: list[audit_models.AuditRecord] = []
            for entry in entries:
                held = None if entry.record_id is None else self._ids.get(entry.record_id)
                held = held or (None if entry.record_id is None else ids.get(entry.record_id))
                if held is not None:
                    out.append(held)
                    continue
                record = seal(entry, head=head, now=self._clock(), signer=self._signer)
                head = audit_models.Checkpoint(seq=record.seq, hash=record.hash)
                if record.record_id is not None:
                    ids[record.record_id] = head
                records.append(record)
                out.append(record)
            if not records:
                return out
            try:
                write_many(records)
            except Exception as e:
                self._failure = e
                raise errors.SinkError(
                    f"audit records seq {records[0].seq}-{records[-1].seq} could not be "
                    f"written, so the chain stops: {e}"
                ) from e
            self._head = head
            self._ids.update(ids)
            return out

    def hand_over(self, successor: signing.Signer) -> audit_models.AuditRecord:
        """Append a ``KeyHandedOver`` record signed by the current key naming ``successor``;
        every later record is signed by ``successor``."""
        with self._lock:
            outgoing = self._signer.key_id
            entry = audit_models.AuditEntry(
                event=audit_models.AuditEvent.KEY_HANDED_OVER,
                correlation_id=f"key:{outgoing}",
                actor="agent-authority",
                object=audit_models.ObjectRef(kind="SigningKey", name=successor.key_id),
                reason="KeyRotated",
                message=f"signing key {outgoing} hands the log over to {successor.key_id}",
                details={
                    audit_models.HAND_OVER_KEY_ID: successor.key_id,
                    audit_models.HAND_OVER_PUBLIC_KEY: base64.b64encode(
                        signing.raw_public_key(successor.public_key)
                    ).decode("ascii"),
                },
            )
            record = self._append_locked(entry)
            self._signer = successor
            return record

    def _append_locked(self, entry: audit_models.AuditEntry) -> audit_models.AuditRecord:
        if self._failure is not None:
            raise errors.ChainBrokenError(
                "the audit chain stopped after a failed write and accepts no more records; "
                f"close it and resume from the log (first failure: {self._failure})"
            ) from self._failure
        record = seal(entry, head=self._head, now=self._clock(), signer=self._signer)
        try:
            self._sink.write(record)
        except Exception as e:
            self._failure = e
            raise errors.SinkError(
                f"audit record seq {record.seq} ({record.event}) could not be written, "
                f"so the chain stops: {e}"
            ) from e
        self._head = audit_models.Checkpoint(seq=record.seq, hash=record.hash)
        if record.record_id is not None:
            self._ids[record.record_id] = self._head
        return record

    def close(self) -> None:
        """Release the log file opened by :meth:`resume`, if any."""
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _verified(path: pathlib.Path, root_key: signing.PublicKey) -> verify.VerifyResult:
    from agent_authority.audit import verify  # see Chain.resume

    try:
        with path.open("rb") as f:
            result = verify.verify(f, root_key, collect_ids=True)
            ends_with_newline = _ends_with_newline(f)
    except OSError as e:
        raise errors.LogReadError(f"cannot read the audit log {path}: {e}") from e
    if not result.ok:
        raise errors.ResumeRefusedError(
            f"refusing to continue the audit log {path}: {result}. Keep the file as evidence, "
            "move it aside and start a new log",
            result,
        )
    if not ends_with_newline:
        raise errors.ResumeRefusedError(
            f"refusing to continue the audit log {path}: its last line has no newline "
            "(a torn or hand-edited write); appending would corrupt it",
            result,
        )
    return result


def _ends_with_newline(f: typing.BinaryIO) -> bool:
    size = f.seek(0, 2)
    if size == 0:
        return True
    f.seek(size - 1)
    return f.read(1) == b"\n"


def _check_canonical(value: object, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > audit_models.MAX_SAFE_INTEGER:
            raise errors.RecordError(f"{where}: integer {value} is beyond ±(2**53-1)")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_canonical(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise errors.RecordError(f"{where}: object key {key!r} is not a string")
            _check_canonical(item, f"{where}.{key}")
        return
    raise errors.RecordError(
        f"{where}: a {type(value).__name__} has no canonical JSON form "
        "(only objects, arrays, strings, integers, booleans and null)"
    )
