"""Opt-in tracing of the operator's Kubernetes calls, for ``bench/sessions.py --trace``.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; the benchmark puts this folder
there, for the operator process only, when ``--trace`` is given. With ``BENCH_TRACE_FILE`` set,
every ``agent_authority.kube.api.call`` and every kopf patch of an object is appended to that file
as one JSON line::

    {"h": handler id, "o": object name, "f": call, "s": submitted, "b": began, "e": ended}

(wall-clock seconds; ``b - s`` was time waiting for a worker thread before calls moved onto the
event loop, and is now 0; ``e - b`` is the HTTP call); a kopf patch also has ``"p"``, the start
of the patch it sent (what kopf wrote, e.g. a finalizer removed).
No operator code is changed: module attributes are replaced before the operator starts, and the
operator looks them up at call time. Without ``BENCH_TRACE_FILE`` this module does nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import IO, Any

_lock = threading.Lock()
_out: IO[str] | None = None


def _write(record: dict[str, Any]) -> None:
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with _lock:
        assert _out is not None
        _out.write(line)


def _current() -> tuple[str, str]:
    """The kopf handler id and object name of the running handler (or webhook), if any."""
    from kopf._core.actions import execution

    handler = execution.handler_var.get(None)
    cause = execution.cause_var.get(None)
    body = getattr(cause, "body", None)
    name = ""
    if body is not None:
        try:
            name = str(body["metadata"].get("name") or "")
        except (KeyError, TypeError):
            name = ""
    return (str(handler.id) if handler is not None else "", name)


def _install(path: str) -> None:
    global _out
    _out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    from kopf._cogs.clients import patching

    from agent_authority.kube import api

    original_call = api.call

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> api.Json:
        # The call runs on the event loop (kube/transport): no thread to wait for, so ``b == s``.
        handler, name = _current()
        submitted = time.time()
        try:
            return await original_call(fn, *args, **kwargs)
        finally:
            what = getattr(fn, "__name__", str(fn))
            _write(
                {
                    "h": handler,
                    "o": name,
                    "f": what,
                    "s": submitted,
                    "b": submitted,
                    "e": time.time(),
                }
            )

    original_patch = patching.patch_obj

    async def patch_obj(**kwargs: Any) -> Any:
        handler, _ = _current()
        submitted = time.time()
        try:
            return await original_patch(**kwargs)
        finally:
            _write(
                {
                    "h": handler,
                    "o": str(kwargs.get("name") or ""),
                    "f": "kopf.patch",
                    "p": json.dumps(kwargs.get("patch"), default=str)[:300],
                    "s": submitted,
                    "b": submitted,
                    "e": time.time(),
                }
            )

    api.call = call
    patching.patch_obj = patch_obj


if os.environ.get("BENCH_TRACE_FILE"):
    _install(os.environ["BENCH_TRACE_FILE"])
