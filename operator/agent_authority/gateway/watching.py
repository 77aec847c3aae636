"""Feed the gateway's view from its own watch of IncidentSessions (every replica runs one).

Its own watch, not kopf's: kopf batches events per object before handlers see them, which would
delay a revocation; this loop hands each event to :meth:`server.Gateway.observe` as it arrives.
After every (re)list, sessions that vanished meanwhile are dropped (and their streams cut).
Errors reconnect with a short back-off; until the first listing completes the view is empty and
every request is refused (fail closed).
"""

from __future__ import annotations

import asyncio
import logging

from agent_authority.gateway import server
from agent_authority.kube import upstream
from agent_authority.models import GROUP, VERSION

PATH = f"/apis/{GROUP}/{VERSION}/incidentsessions"
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
logger = logging.getLogger(__name__)


async def run(gw: server.Gateway, synced: asyncio.Event | None = None) -> None:
    """Watch until cancelled; ``synced`` is set once the first listing is in the view."""
    failures = 0
    while True:
        listed: set[str] = set()
        try:
            async for kind, body in upstream.watch_events(gw.upstream, PATH):
                if kind == upstream.SYNCED:
                    for entry in list(gw.view.entries()):
                        if entry.uid not in listed:
                            gw.observe("DELETED", entry.body)
                    listed = set()
                    failures = 0
                    if synced is not None:
                        synced.set()
                    continue
                if kind is None:
                    listed.add(str(body["metadata"]["uid"]))
                gw.observe(kind, body)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            logger.warning("session watch of the gateway failed (%s); again in %.1f s", e, delay)
            await asyncio.sleep(delay)
