"""Fault injection for crash tests: kill the operator at a named point (as etcd's gofail does).

Inert unless ``AGENT_AUTHORITY_FAILPOINTS`` names the point (comma-separated). Used by the e2e
tests to SIGKILL the operator at the exact moment that matters — e.g. after a change was applied
but before its status was recorded — instead of hoping a timed kill lands there.
"""

from __future__ import annotations

import asyncio
import os
import signal

ENV = "AGENT_AUTHORITY_FAILPOINTS"

BEFORE_APPLY = "before-apply"
"""The request is persisted as Applying; the change is not made yet."""
AFTER_APPLY = "after-apply"
"""The change is made; the request is not yet marked Succeeded."""
AFTER_AUDIT = "after-audit"
"""``after-audit:<Event>``: a record of that event is in the trail (written after its status)."""
AFTER_STATUS = "after-status"
"""``after-status:<Event>``: the transition recorded as that event is committed to the status;
its audit record is not written yet."""
PAUSE_BEFORE_STATUS = "pause-before-status"
"""``pause-before-status:<Event>=<seconds>``: wait that long before the conditional status patch
of that transition (so a test can make another writer win the race meanwhile)."""


def _enabled() -> dict[str, str]:
    points = (p.strip() for p in os.environ.get(ENV, "").split(","))
    return {p.partition("=")[0]: p.partition("=")[2] for p in points if p}


def hit(name: str) -> None:
    """SIGKILL this process if the failpoint ``name`` is enabled."""
    if name in _enabled():
        os.kill(os.getpid(), signal.SIGKILL)


async def pause(name: str) -> None:
    """Sleep for the seconds given to the failpoint ``name`` (``name=seconds``), if enabled."""
    value = _enabled().get(name)
    if value:
        await asyncio.sleep(float(value))
