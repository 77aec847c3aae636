"""Offline verification of an audit log: find the first record that is not what was written.

Each line is checked, in this order, and the walk stops at the first failure:

1. it is UTF-8 JSON text of one object with no duplicate keys       (``unparseable line``)
2. it is a valid :class:`~agent_authority.models.audit.AuditRecord`
   and has a canonical form                                          (``invalid record``)
3. ``hash`` is the SHA-256 of the canonical form of the line as read (``hash mismatch``)
4. ``keyId`` is the fingerprint of the current key                  (``unknown key``)
5. ``signature`` is that key's Ed25519 signature of ``hash``        (``bad signature``)
6. ``seq`` is one more than the previous record's (0 first)          (``sequence gap`` /
                                                                      ``sequence out of order``)
7. ``prevHash`` is the previous record's ``hash`` (64 zeros first)   (``broken chain (prev_hash)``)
8. at the anchor's ``seq``, ``hash`` is the anchor's                 (``anchor mismatch``)
9. a ``recordId`` appears at most once in the log                   (``duplicate record id``)
10. a ``KeyHandedOver`` record names a well-formed next key whose
    fingerprint is the ``nextKeyId`` it states                       (``bad key hand-over``)

The current key starts as the verifying key (the key the log began with) and becomes the next
key after each verified hand-over: a hand-over is trusted because the key it replaces signed it.

and at the end, if an anchor says the log went further than it does, ``truncated``.

The position reported is the ``seq`` the bad line should have had: the number of records that
verified before it. So an edited, inserted or truncated line k, a deleted record k, and records
k and k+1 swapped are all reported at k.

Detected without the private key: any edit of a record's content (including ``seq``, ``time``,
``keyId``), a record deleted, inserted, duplicated or moved anywhere except off the end, a record
spliced in from another log, a log re-signed with another key, a torn or garbled line.
Not detected: records cut off the end, unless an anchor (:attr:`VerifyResult.head` or
``Chain.head`` kept somewhere else) says they existed; a whole log replaced by an empty file, same;
anything done by a holder of the private key, who can write a new, valid history (anchors held
elsewhere then show it as ``anchor mismatch``); whitespace or key order changed inside a line
(the content is unchanged: the hash covers the canonical form, not the bytes); ``time`` going
backwards (clocks do; ``seq`` is the order).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import chain, errors, signing
from agent_authority.models import audit as audit_models


class Reason(enum.StrEnum):
    UNPARSEABLE_LINE = "unparseable line"
    INVALID_RECORD = "invalid record"
    HASH_MISMATCH = "hash mismatch"
    UNKNOWN_KEY = "unknown key"
    BAD_SIGNATURE = "bad signature"
    SEQUENCE_GAP = "sequence gap"
    SEQUENCE_OUT_OF_ORDER = "sequence out of order"
    BROKEN_CHAIN = "broken chain (prev_hash)"
    ANCHOR_MISMATCH = "anchor mismatch"
    DUPLICATE_RECORD_ID = "duplicate record id"
    BAD_HAND_OVER = "bad key hand-over"
    TRUNCATED = "truncated"


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records_checked: int
    """Records that verified: all of them if ``ok``, else those before the bad one."""
    head: audit_models.Checkpoint | None
    """The last record that verified (``None`` if none did): an anchor for the next verification."""
    first_bad_seq: int | None = None
    """The ``seq`` the first bad record should have had (= ``records_checked``)."""
    line: int | None = None
    """1-based line number where the failure was found (``None`` for ``truncated``)."""
    reason: Reason | None = None
    detail: str = ""
    next_key_id: str | None = None
    """The key the next record must be signed with (after hand-overs); None for an empty log."""
    key_ids: tuple[str, ...] = ()
    """Every key that signed records that verified, in hand-over order."""
    record_ids: Mapping[str, audit_models.Checkpoint] = dataclasses.field(default_factory=dict)
    """With ``collect_ids``: each ``recordId`` of the verified records and the record holding it."""

    def __str__(self) -> str:
        if self.ok:
            if self.head is None:
                return "ok: empty log"
            return (
                f"ok: {self.records_checked} records verified, "
                f"head seq {self.head.seq} hash {self.head.hash}"
            )
        where = f"seq {self.first_bad_seq}" + (f" (line {self.line})" if self.line else "")
        plural = "" if self.records_checked == 1 else "s"
        return (
            f"verification failed at {where}: {self.reason}: {self.detail}; "
            f"{self.records_checked} record{plural} before it verified"
        )


def verify(
    lines: Iterable[str | bytes],
    public_key: ed25519.Ed25519PublicKey,
    *,
    anchor: audit_models.Checkpoint | None = None,
    collect_ids: bool = False,
) -> VerifyResult:
    """Verify a log given as lines (with or without their newline), stopping at the first failure.

    ``public_key`` is the key the log began with. ``anchor`` is a checkpoint obtained out of
    band: the log must reach it and agree with it. ``collect_ids`` returns the record ids seen.
    """
    key_id = signing.key_id(public_key)
    keys = [key_id]
    head: audit_models.Checkpoint | None = None
    checked = 0
    ids: dict[str, audit_models.Checkpoint] = {}

    def failed(reason: Reason, detail: str, line: int | None) -> VerifyResult:
        return VerifyResult(
            False, checked, head, checked, line, reason, detail, None, tuple(keys), ids
        )

    for number, raw in enumerate(lines, start=1):
        parsed = _parse(raw)
        if isinstance(parsed, _Finding):
            return failed(parsed.reason, parsed.detail, number)
        record = _check(parsed, head, public_key, key_id)
        if isinstance(record, _Finding):
            return failed(record.reason, record.detail, number)
        if anchor is not None and record.seq == anchor.seq and record.hash != anchor.hash:
            return failed(
                Reason.ANCHOR_MISMATCH,
                f"the anchor says seq {anchor.seq} has hash {anchor.hash}, "
                f"the log has {record.hash}: this history was rewritten with the signing key",
                number,
            )
        if record.record_id is not None and record.record_id in ids:
            return failed(
                Reason.DUPLICATE_RECORD_ID,
                f"recordId {record.record_id} was recorded at seq {ids[record.record_id].seq} "
                "already: a transition is in the log twice",
                number,
            )
        if record.event is audit_models.AuditEvent.KEY_HANDED_OVER:
            successor = _successor(record)
            if isinstance(successor, _Finding):
                return failed(successor.reason, successor.detail, number)
            public_key, key_id = successor, signing.key_id(successor)
            keys.append(key_id)
        head = audit_models.Checkpoint(seq=record.seq, hash=record.hash)
        if record.record_id is not None:
            ids[record.record_id] = head
        checked += 1
    if anchor is not None and (head is None or head.seq < anchor.seq):
        last = "the log is empty" if head is None else f"the log ends at seq {head.seq}"
        return failed(
            Reason.TRUNCATED,
            f"{last} but the anchor says seq {anchor.seq} was written: records "
            f"{checked}..{anchor.seq} are missing",
            None,
        )
    return VerifyResult(
        True,
        checked,
        head,
        next_key_id=key_id if head is not None else None,
        key_ids=tuple(keys),
        record_ids=ids if collect_ids else {},
    )


def verify_file(
    path: pathlib.Path,
    public_key_path: pathlib.Path,
    *,
    anchor: audit_models.Checkpoint | None = None,
) -> VerifyResult:
    """Verify the JSON-lines log at ``path`` with the PEM public key at ``public_key_path``."""
    public_key = signing.load_public_key(public_key_path)
    try:
        with path.open("rb") as f:
            return verify(f, public_key, anchor=anchor)
    except OSError as e:
        raise errors.LogReadError(f"cannot read the audit log {path}: {e}") from e


@dataclasses.dataclass(frozen=True)
class _Finding:
    reason: Reason
    detail: str


def _parse(raw: str | bytes) -> dict[str, Any] | _Finding:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return _Finding(Reason.UNPARSEABLE_LINE, f"not UTF-8: {e}")
    if not raw.strip():
        return _Finding(Reason.UNPARSEABLE_LINE, "blank line")
    try:
        value = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        return _Finding(Reason.UNPARSEABLE_LINE, f"not JSON: {e}")
    if not isinstance(value, dict):
        return _Finding(Reason.UNPARSEABLE_LINE, f"a JSON {type(value).__name__}, not an object")
    return value


def _check(
    wire: dict[str, Any],
    previous: audit_models.Checkpoint | None,
    public_key: ed25519.Ed25519PublicKey,
    key_id: str,
) -> audit_models.AuditRecord | _Finding:
    try:
        record = audit_models.AuditRecord.model_validate(wire)
        computed = chain.record_hash(wire)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return _Finding(Reason.INVALID_RECORD, f"{where}: {first['msg']}{more}")
    except errors.RecordError as e:
        return _Finding(Reason.INVALID_RECORD, f"no canonical form: {e}")
    if computed != record.hash:
        return _Finding(
            Reason.HASH_MISMATCH,
            f"the line says {record.hash}, its content hashes to {computed}: it was modified",
        )
    if record.key_id != key_id:
        return _Finding(
            Reason.UNKNOWN_KEY, f"signed by key {record.key_id}, the verifying key is {key_id}"
        )
    if not signing.signature_valid(public_key, record.hash, record.signature):
        return _Finding(Reason.BAD_SIGNATURE, f"key {key_id} did not sign hash {record.hash}")
    expected_seq = 0 if previous is None else previous.seq + 1
    if record.seq > expected_seq:
        return _Finding(
            Reason.SEQUENCE_GAP,
            f"expected seq {expected_seq}, found {record.seq}: records missing or out of order",
        )
    if record.seq < expected_seq:
        return _Finding(
            Reason.SEQUENCE_OUT_OF_ORDER,
            f"expected seq {expected_seq}, found {record.seq}: a record is repeated or moved",
        )
    expected_prev = chain.ZERO_HASH if previous is None else previous.hash
    if record.prev_hash != expected_prev:
        return _Finding(
            Reason.BROKEN_CHAIN,
            f"prevHash is {record.prev_hash}, the previous record's hash is {expected_prev}",
        )
    return record


def _successor(record: audit_models.AuditRecord) -> ed25519.Ed25519PublicKey | _Finding:
    """The next key a verified hand-over record names."""
    named = record.details.get(audit_models.HAND_OVER_KEY_ID)
    encoded = record.details.get(audit_models.HAND_OVER_PUBLIC_KEY)
    if not isinstance(named, str) or not isinstance(encoded, str):
        return _Finding(
            Reason.BAD_HAND_OVER,
            f"details.{audit_models.HAND_OVER_KEY_ID} and details."
            f"{audit_models.HAND_OVER_PUBLIC_KEY} must both be strings",
        )
    try:
        successor = signing.public_key_from_base64(encoded)
    except errors.SigningKeyError as e:
        return _Finding(Reason.BAD_HAND_OVER, f"the next public key is not an Ed25519 key: {e}")
    if signing.key_id(successor) != named:
        return _Finding(
            Reason.BAD_HAND_OVER,
            f"the next key's fingerprint is {signing.key_id(successor)}, the record says {named}",
        )
    return successor


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
