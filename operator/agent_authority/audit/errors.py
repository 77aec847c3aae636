"""Every error the audit package raises, as one tree.

::

    AuditError                  base of everything raised by ``agent_authority.audit``
    ├── SigningKeyError         a key file is missing, unreadable, not PEM, not Ed25519, or exists
    │                           already when asked to create one
    ├── RecordError             a record cannot be built or has no canonical form (float, integer
    │                           beyond 2**53-1, lone surrogate, non-string key, invalid field)
    ├── SinkError               a sink failed to write a record
    │   └── LogLockedError      another process is appending to the same log file
    ├── LogReadError            a log file could not be read (verification, resume)
    └── ChainError              the chain refuses to append
        ├── ResumeRefusedError  the existing log fails verification: fail closed, do not continue it
        └── ChainBrokenError    an earlier write failed, so whether that record was persisted is
                                unknown; the chain refuses further appends until it is resumed

Tampering found by :func:`agent_authority.audit.verify.verify` is a finding, not an error: it is
returned as a ``VerifyResult`` and only raised (as ``ResumeRefusedError``) when a chain is asked to
continue a log that fails verification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_authority.audit import verify


class AuditError(Exception):
    """Base of every error raised by :mod:`agent_authority.audit`."""


class SigningKeyError(AuditError):
    """A signing or verification key could not be created or loaded."""


class RecordError(AuditError):
    """A record cannot be built, or a value has no canonical JSON form."""


class SinkError(AuditError):
    """A sink failed to write a record."""


class LogLockedError(SinkError):
    """Another process holds the lock on the log file: two writers would fork the chain."""


class LogReadError(AuditError):
    """A log file could not be read."""


class ChainError(AuditError):
    """The chain refuses to append."""


class ResumeRefusedError(ChainError):
    """The existing log cannot be continued: appending would launder tampering or corrupt it.

    ``result`` is the verification of the log; it is ``ok`` when the records verify but the last
    line lacks its newline (a torn or hand-made write that the next record would run into).
    """

    def __init__(self, message: str, result: verify.VerifyResult) -> None:
        super().__init__(message)
        self.result = result


class ChainBrokenError(ChainError):
    """An earlier append failed part-way; the chain's position is unknown, so it stops."""
