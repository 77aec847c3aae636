"""The operator process's memory: allocator tuning, giving freed memory back, and an opt-in
allocation dump.

:func:`tune` runs first thing in every operator process (``agent-authority run``, the chart's
Deployment, the image, ``agent-authority dev``, the tests' and benchmarks' operator), so nothing
depends on an environment variable being set where the operator happens to run. With glibc it
caps malloc's arenas at :data:`ARENA_MAX` (unless ``MALLOC_ARENA_MAX`` says otherwise): by
default every thread that allocates may get an arena of its own (8 per core), and memory freed
in one is never reused by another. :func:`trimming` hands the free pages of the heap back to the
system every :data:`TRIM_SECONDS` (``malloc_trim``), so a burst of work does not leave the
process at its high-water mark for good. And it shrinks asyncio's TLS read buffer from 256 KiB
to :data:`TLS_READ_BUFFER`: asyncio allocates (and zero-fills) one per TLS connection, and the
operator holds a few hundred (its pool to the apiserver, kopf's, the apiserver's connections to
the webhooks and the audit receiver), so at 256 KiB they alone were tens of MiB. A TLS record of
ciphertext is at most about 18 KiB, so a smaller buffer only means more, smaller reads of a large
response.

:func:`install_dump` is a diagnostic, off by default: with ``AGENT_AUTHORITY_TRACEMALLOC`` set to
a file path, allocations are traced from start-up and every ``SIGUSR1`` appends the top
allocation sites (file:line), the biggest object types and the number of asyncio tasks to that
file. Tracing costs memory and time, so never turn it on for a measurement of RSS itself.

This module must not import kopf or a Kubernetes client: it runs before either is needed.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import collections
import ctypes
import ctypes.util
import datetime
import gc
import os
import pathlib
import signal
import tracemalloc

DUMP_ENV = "AGENT_AUTHORITY_TRACEMALLOC"
"""File the allocation dump is appended to on SIGUSR1 (unset: no tracing)."""
FRAMES_ENV = "AGENT_AUTHORITY_TRACEMALLOC_FRAMES"
"""Frames kept per traced allocation (default 1: grouped by file:line)."""
TOP = 40
ARENA_MAX = 2
M_ARENA_MAX = -8
"""``mallopt`` parameter number of ``M_ARENA_MAX`` (glibc's malloc.h)."""
TRIM_SECONDS = 30.0
TLS_READ_BUFFER = 20 * 1024
"""Bytes of asyncio's read buffer per TLS connection (asyncio's default: 256 KiB); one TLS record
of ciphertext (at most 16 KiB of data plus 2 KiB of overhead) still fits in one read."""

_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    """glibc, or None (another libc, e.g. musl, has neither arenas nor ``malloc_trim``)."""
    if not _LIBC:
        lib: ctypes.CDLL | None = None
        name = ctypes.util.find_library("c")
        if name:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                lib = None
        _LIBC.append(lib if lib is not None and hasattr(lib, "malloc_trim") else None)
    return _LIBC[0]


def tune() -> bool:
    """Cap glibc's arenas (call before threads start) and shrink asyncio's TLS read buffer (call
    before any connection opens); False where there is no glibc arena to cap."""
    protocol = asyncio.sslproto.SSLProtocol
    protocol.max_size = min(protocol.max_size, TLS_READ_BUFFER)
    lib = _libc()
    if lib is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(lib.mallopt(M_ARENA_MAX, ARENA_MAX))


def trim() -> bool:
    """Give the heap's free pages back to the system now; True when some were."""
    lib = _libc()
    return lib is not None and bool(lib.malloc_trim(0))


async def trimming(every: float = TRIM_SECONDS) -> None:
    """:func:`trim` every ``every`` seconds, until cancelled. In a thread: on a fragmented heap
    of a few hundred MiB one trim takes tens of milliseconds, which the event loop need not
    wait for (ctypes releases the GIL)."""
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(trim)


def rss_kib() -> int:
    """This process's resident set (VmRSS), in KiB (0 where /proc is not there)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def install_dump(loop: asyncio.AbstractEventLoop) -> pathlib.Path | None:
    """With ``AGENT_AUTHORITY_TRACEMALLOC`` set: trace allocations, dump them on SIGUSR1."""
    target = os.environ.get(DUMP_ENV)
    if not target:
        return None
    path = pathlib.Path(target)
    if not tracemalloc.is_tracing():
        tracemalloc.start(int(os.environ.get(FRAMES_ENV) or "1"))
    loop.add_signal_handler(signal.SIGUSR1, dump, path)
    return path


def mappings(top: int = 15) -> list[str]:
    """Resident memory by mapping (``/proc/self/smaps``): a file by name, ``[heap]``, and
    anonymous mappings by size (1 MiB: Python's object arenas; 8 MiB: thread stacks; others:
    malloc's arenas of threads, large blocks)."""
    sums: dict[str, list[int]] = {}
    key = ""
    try:
        text = pathlib.Path("/proc/self/smaps").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            key = pathlib.Path(name).name if name else f"anon {(end - start) // 1024} KiB"
        elif fields and fields[0] == "Rss:":
            entry = sums.setdefault(key, [0, 0])
            entry[0] += int(fields[1])
            entry[1] += 1
    ranked = sorted(sums.items(), key=lambda kv: -kv[1][0])[:top]
    return [f"{rss / 1024:10.1f} MiB {n:6d}x {name}" for name, (rss, n) in ranked]


def dump(path: pathlib.Path) -> None:
    """Append the top allocation sites, object types and the task count to ``path``."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    stats = snapshot.statistics("lineno")
    traced, peak = tracemalloc.get_traced_memory()
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = -1
    types = collections.Counter(type(o).__name__ for o in gc.get_objects())
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    lines = [
        f"=== {now} rss={rss_kib() / 1024:.1f}MiB traced={traced / 2**20:.1f}MiB "
        f"peak={peak / 2**20:.1f}MiB tasks={tasks}",
        *(
            f"{s.size / 1024:10.1f} KiB {s.count:8d} {s.traceback[0].filename}:"
            f"{s.traceback[0].lineno}"
            for s in stats[:TOP]
        ),
        "--- resident memory by mapping",
        *mappings(),
        "--- objects tracked by gc, by type",
        *(f"{n:10d} {name}" for name, n in types.most_common(25)),
        "",
    ]
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n")
