"""Fault injection for crash tests: kill the operator at a named point (as etcd's gofail does).

Inert unless ``AGENT_AUTHORITY_FAILPOINTS`` names the point (comma-separated). Used by the e2e
tests to SIGKILL the operator at the exact moment that matters — e.g. after a change was applied
but before its status was recorded — instead of hoping a timed kill lands there.
"""

from __future__ import annotations

import os
import signal

ENV = "AGENT_AUTHORITY_FAILPOINTS"

BEFORE_APPLY = "before-apply"
"""The request is persisted as Applying; the change is not made yet."""
AFTER_APPLY = "after-apply"
"""The change is made; the request is not yet marked Succeeded."""
AFTER_AUDIT = "after-audit"
"""``after-audit:<Event>``: a record of that event is in the trail; its status patch is not."""


def hit(name: str) -> None:
    """SIGKILL this process if the failpoint ``name`` is enabled."""
    enabled = {p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()}
    if name in enabled:
        os.kill(os.getpid(), signal.SIGKILL)
