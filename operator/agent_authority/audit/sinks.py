"""Where sealed records go: the :class:`Sink` protocol and the sinks this package ships.

- :class:`JsonLinesFile`: the audit log, one canonical JSON line per record, appended and fsynced.
- :class:`Memory`: a test double that keeps records and lines in lists (and can be told to fail).
- :class:`FanOut`: one record to several sinks, in order.
- :class:`BestEffort`: a sink whose failures are logged and swallowed (mirrors such as Events).

Kubernetes Events are not written here: this package must not import kopf or a Kubernetes client.
The operator's kube layer implements :class:`Sink` and is passed in as a mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
import typing
from collections.abc import Callable, Sequence
from types import TracebackType

from agent_authority.audit import chain, errors
from agent_authority.models import audit as audit_models

logger = logging.getLogger(__name__)

LOG_FILE_MODE = 0o600


class Sink(typing.Protocol):
    """Anything that takes a sealed record. Raise if the record was not stored."""

    def write(self, record: audit_models.AuditRecord) -> None: ...


class JsonLinesFile:
    """Append-only JSON-lines audit log, held under an exclusive lock while open.

    The file is created with mode 0600. Each record is one ``write(2)`` of one line on an
    ``O_APPEND`` descriptor (no user-space buffer to flush), followed by ``fsync`` unless
    ``fsync=False`` (tests, or storage that makes it meaningless). The ``flock`` lock is advisory:
    it stops a second operator process from forking the chain, not a hostile user.
    """

    def __init__(self, path: pathlib.Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        existed = path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
        except OSError as e:
            raise errors.SinkError(f"cannot open the audit log {path}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise errors.LogLockedError(
                f"the audit log {path} is locked by another process; only one writer may "
                "append to a chain"
            ) from e
        except OSError as e:
            os.close(fd)
            raise errors.SinkError(f"cannot lock the audit log {path}: {e}") from e
        self._fd: int | None = fd
        if not existed and fsync:
            _fsync_directory(path.parent)

    def write(self, record: audit_models.AuditRecord) -> None:
        if self._fd is None:
            raise errors.SinkError(f"the audit log {self.path} is closed")
        data = (chain.encode_line(record) + "\n").encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self._fsync:
                os.fsync(self._fd)
        except OSError as e:
            raise errors.SinkError(f"cannot append to the audit log {self.path}: {e}") from e

    def write_many(self, records: Sequence[audit_models.AuditRecord]) -> None:
        """Append ``records`` as one ``write(2)`` and one ``fsync``: a batch costs what one
        record does, so the chain keeps up with a stream of records (the session gateway's)."""
        if self._fd is None:
            raise errors.SinkError(f"the audit log {self.path} is closed")
        data = "".join(chain.encode_line(record) + "\n" for record in records).encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self._fsync:
                os.fsync(self._fd)
        except OSError as e:
            raise errors.SinkError(f"cannot append to the audit log {self.path}: {e}") from e

    def close(self) -> None:
        """Release the lock and the descriptor. Idempotent."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> JsonLinesFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Memory:
    """Keeps what it is given: ``records`` and the log ``lines`` a file sink would have written.

    Set ``error`` to make every following write raise it (and store nothing).
    """

    def __init__(self) -> None:
        self.records: list[audit_models.AuditRecord] = []
        self.lines: list[str] = []
        self.error: Exception | None = None

    def write(self, record: audit_models.AuditRecord) -> None:
        if self.error is not None:
            raise self.error
        self.lines.append(chain.encode_line(record))
        self.records.append(record)


class FanOut:
    """Writes each record to every sink, in order; raises ``SinkError`` if any of them failed.

    A failing sink does not keep the record from the sinks after it.
    """

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def write(self, record: audit_models.AuditRecord) -> None:
        failures: list[tuple[Sink, Exception]] = []
        for sink in self.sinks:
            try:
                sink.write(record)
            except Exception as e:
                failures.append((sink, e))
        if failures:
            described = "; ".join(f"{type(sink).__name__}: {e}" for sink, e in failures)
            raise errors.SinkError(
                f"{len(failures)} of {len(self.sinks)} audit sinks failed to write "
                f"seq {record.seq}: {described}"
            ) from failures[0][1]


ErrorHandler = Callable[[audit_models.AuditRecord, Exception], None]


class BestEffort:
    """Wraps a sink whose failures must not stop the chain: they go to ``on_error`` instead.

    The default handler logs a warning. Use it for mirrors (Kubernetes Events), never for the log.
    """

    def __init__(self, sink: Sink, *, on_error: ErrorHandler | None = None) -> None:
        self.sink = sink
        self._on_error = on_error or _log_failure

    def write(self, record: audit_models.AuditRecord) -> None:
        try:
            self.sink.write(record)
        except Exception as e:
            self._on_error(record, e)


def _log_failure(record: audit_models.AuditRecord, error: Exception) -> None:
    logger.warning("audit mirror failed to write seq %d (%s): %s", record.seq, record.event, error)


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make a newly created file's directory entry durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
