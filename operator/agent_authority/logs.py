"""Log levels that mean what they say: an error in the operator's log is worth a look.

kopf logs two expected things at ERROR. An admission refusal is a ``PermanentError`` to kopf, so
every refused session or request is logged as ``Webhook 'admit-session' failed permanently: …``;
that is policy doing its job (it is answered to the client, counted in
``agent_authority_admission_refusals_total``, and audited), so it becomes INFO. A request that
kopf retries after a 429 (the apiserver starting up, or busy: ``storage is (re)initializing``)
is logged as ``Request attempt #1/9 failed; will retry``; it becomes WARNING. Everything else is
left as it is.

One thing is not logged unless ``--verbose``: aiohttp's access log of the admission webhook
server (kopf's), a line per admission request that repeats kopf's own ``Webhook '...'
succeeded.`` line; two of them per session created, a fifth of the operator's log lines and
of the CPU it spent serving webhooks (issue 8). The operator's other servers log no access
lines at all.
"""

from __future__ import annotations

import logging
import re

_REFUSAL = re.compile(r"^Webhook '[^']+' failed permanently: ")
_RETRIED_429 = re.compile(r"^Request attempt #\d+/\d+ failed; will retry: .*(status=429|\b429\b)")


def level_for(message: str, level: int) -> int:
    """The level a record of ``level`` with ``message`` should have."""
    if level < logging.ERROR:
        return level
    if _REFUSAL.match(message):
        return logging.INFO
    if _RETRIED_429.match(message):
        return logging.WARNING
    return level


class ExpectedLevels(logging.Filter):
    """A handler filter applying :func:`level_for` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = level_for(record.getMessage(), record.levelno)
        if level != record.levelno:
            record.levelno = level
            record.levelname = logging.getLevelName(level)
        return True


ACCESS_LOGGER = "aiohttp.access"


def install(*, verbose: bool = False) -> None:
    """Put :class:`ExpectedLevels` on every handler of the root logger (after kopf's set-up);
    quiet the webhook server's access log unless ``verbose``."""
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ExpectedLevels) for f in handler.filters):
            handler.addFilter(ExpectedLevels())
