"""Audit records: one hash-chained, Ed25519-signed JSON record per decision of the operator.

Three shapes, each the one before plus what the chain adds:

- :class:`AuditEntry`: what happened (event, correlation id, actor, object, reason, details),
  who asked (``requestedBy``) apart from who decided (``decidedBy``: the policy, or the people who
  approved or denied, with their reasons), and a deterministic ``recordId`` per transition, so a
  transition replayed after a crash is recognised and not recorded twice.
- :class:`UnsignedRecord`: the entry placed in the chain (``seq``, ``time``, ``prevHash``,
  ``keyId``). Its canonical form is what gets hashed.
- :class:`AuditRecord`: the unsigned record plus ``hash`` and ``signature``: one line of the log.

Shapes only: the canonical form, hashing, signing and verification live in
:mod:`agent_authority.audit`, which this module must not import (models are the lowest layer).
Every value is a JSON string, an integer within ±(2**53-1), a boolean or null, so the canonical
form has no floating-point ambiguity.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated

import pydantic

from agent_authority.models import base

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer every JSON implementation reads exactly (IEEE 754 double)."""

SHA256_HEX = r"^[a-f0-9]{64}$"
KEY_ID_PATTERN = r"^[a-f0-9]{16}$"
ED25519_SIGNATURE_BASE64 = r"^[A-Za-z0-9+/]{86}==$"
ZERO_HASH = "0" * 64
"""The ``prevHash`` of the first record of a log."""

# As metav1.Condition's reason: a CamelCase word a machine can switch on.
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
DETAIL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.\-/]*[A-Za-z0-9])?$"

SafeInt = Annotated[int, pydantic.Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
Sha256Hex = Annotated[str, pydantic.Field(pattern=SHA256_HEX)]
DetailKey = Annotated[str, pydantic.Field(min_length=1, max_length=128, pattern=DETAIL_KEY_PATTERN)]
DetailText = Annotated[str, pydantic.Field(max_length=4096)]
DetailValue = (
    DetailText | SafeInt | bool | None | Annotated[list[DetailText], pydantic.Field(max_length=256)]
)


class AuditEvent(enum.StrEnum):
    """What kind of decision a record reports."""

    GRANT_COMPILED = "GrantCompiled"
    GRANT_REJECTED = "GrantRejected"
    SESSION_OPENED = "SessionOpened"
    SESSION_DENIED = "SessionDenied"
    TOKEN_MINTED = "TokenMinted"  # noqa: S105 (an event name, not a secret)
    TOKEN_ROTATED = "TokenRotated"  # noqa: S105
    SESSION_ENDED = "SessionEnded"
    SESSION_EXPIRED = "SessionExpired"
    SESSION_REVOKED = "SessionRevoked"
    REQUEST_EVALUATED = "RequestEvaluated"
    REQUEST_APPROVED = "RequestApproved"
    REQUEST_DENIED = "RequestDenied"
    REQUEST_APPLIED = "RequestApplied"
    REQUEST_FAILED = "RequestFailed"
    REQUEST_ROLLED_BACK = "RequestRolledBack"
    REQUEST_EXPIRED = "RequestExpired"
    REQUEST_CANCELLED = "RequestCancelled"
    DEVIATION_DETECTED = "DeviationDetected"
    KEY_HANDED_OVER = "KeyHandedOver"
    """The signing key changes: signed by the outgoing key, names the next one (see details)."""
    GATEWAY_REQUEST = "GatewayRequest"
    """One request of a session forwarded (or refused) by the session gateway."""


HAND_OVER_KEY_ID = "nextKeyId"
HAND_OVER_PUBLIC_KEY = "nextPublicKey"
"""Details of a ``KeyHandedOver`` record: the next key's id and its raw public key (base64)."""
RECORD_ID_PATTERN = r"^[a-f0-9]{32}$"


class DeciderKind(enum.StrEnum):
    POLICY = "policy"
    """The operator applying the grant's policy (evaluation, auto-approval, TTL, deviation)."""
    PERSON = "person"
    """A person's approval or denial (the identity the approval webhook stamped)."""


class Decider(base.Model):
    """Who decided: the policy (named by the operator), or one approving or denying person."""

    kind: DeciderKind
    name: Annotated[str, pydantic.Field(min_length=1, max_length=512)]
    reason: Annotated[str, pydantic.Field(max_length=4096)] = ""
    """The person's stated reason, or the policy's message."""


class ObjectRef(base.Model):
    """The object a decision is about (as an Event's ``regarding``).

    Only lengths are checked: the audit trail must be able to name any object it is told about.
    """

    api_version: Annotated[str, pydantic.Field(min_length=1, max_length=253)] | None = None
    kind: Annotated[str, pydantic.Field(min_length=1, max_length=63)]
    namespace: Annotated[str, pydantic.Field(min_length=1, max_length=63)] | None = None
    name: Annotated[str, pydantic.Field(min_length=1, max_length=253)]
    uid: Annotated[str, pydantic.Field(min_length=1, max_length=128)] | None = None


class AuditEntry(base.Model):
    """One decision, as the code that made it reports it."""

    event: AuditEvent
    correlation_id: Annotated[str, pydantic.Field(min_length=1, max_length=256)]
    """The session UID; for decisions outside a session (grants), the UID of the object."""
    actor: Annotated[str, pydantic.Field(min_length=1, max_length=512)]
    """The username on whose behalf the decision was made (the operator's own, if nobody's)."""
    object: ObjectRef
    reason: Annotated[str, pydantic.Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    details: dict[DetailKey, DetailValue] = pydantic.Field(default_factory=dict, max_length=64)
    """Facts a reader needs (rules added, replicas before/after, approvers): scalars or strings."""
    record_id: Annotated[str, pydantic.Field(pattern=RECORD_ID_PATTERN)] | None = None
    """Deterministic id of the transition (object uid + event + discriminator): a log holds each
    id at most once. Absent in logs written before record ids existed."""
    requested_by: Annotated[str, pydantic.Field(min_length=1, max_length=512)] | None = None
    """Who asked (the session's or request's stamped requester), when someone did."""
    decided_by: list[Decider] = pydantic.Field(default_factory=list, max_length=64)
    """Who decided: the policy, or the people whose approvals or denials made the decision.
    Empty when the transition was a client's own act (``spec.ended``) or predates this field."""


class UnsignedRecord(AuditEntry):
    """An entry placed in the chain; its canonical form is what :attr:`AuditRecord.hash` covers."""

    seq: Annotated[int, pydantic.Field(ge=0, le=MAX_SAFE_INTEGER)]
    """Position in the log: 0 for the first record, then +1 with no gaps."""
    time: pydantic.AwareDatetime
    """When the record was appended, in UTC."""
    prev_hash: Sha256Hex
    """``hash`` of the previous record; 64 zeros for the first."""
    key_id: Annotated[str, pydantic.Field(pattern=KEY_ID_PATTERN)]
    """Fingerprint of the public key that verifies ``signature``."""

    @pydantic.field_validator("time")
    @classmethod
    def _in_utc(cls, value: datetime.datetime) -> datetime.datetime:
        return value.astimezone(datetime.UTC)


class AuditRecord(UnsignedRecord):
    """A sealed record: one line of the audit log."""

    hash: Sha256Hex
    """SHA-256 (hex) of the canonical form of this record without ``hash`` and ``signature``."""
    signature: Annotated[str, pydantic.Field(pattern=ED25519_SIGNATURE_BASE64)]
    """Base64 Ed25519 signature over the 64 ASCII bytes of ``hash``."""


class Checkpoint(base.Model):
    """The head of a log: enough to notice, later, that records after it went missing.

    Publish it somewhere the log's writer cannot rewrite (an Event, a remote store, the output of
    the last verification) and pass it back to the verifier as an anchor.
    """

    seq: Annotated[int, pydantic.Field(ge=0, le=MAX_SAFE_INTEGER)]
    hash: Sha256Hex
