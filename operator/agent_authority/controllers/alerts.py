"""Sessions bound to an alert end (``IncidentResolved``) when the alert resolves.

Two paths lead to the same check, :meth:`Resolver.check`:

- Alertmanager's webhook notifications, posted to ``/alertmanager`` on the operator (its
  ``webhook_configs`` with ``send_resolved: true``). A notification is only a hint of *which*
  fingerprints may have resolved: nothing in it is trusted, the operator asks Alertmanager's API
  itself before ending anything, so whoever can reach the endpoint can at most make it look;
- polling every ``poll_seconds``, for notifications that were lost (Alertmanager restarted, the
  operator was down, the network dropped them).

The check lists the Active sessions of alert-bound grants, asks each grant's Alertmanager which
alerts fire (once per URL and check), and ends the sessions whose alert is no longer listed.
When Alertmanager cannot be asked, nothing is ended (an outage of the alerting system must not
cut incident response short; the session's TTL still bounds it) and a warning is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Collection

from aiohttp import web

from agent_authority.controllers import session_fields, session_revocation
from agent_authority.kube import alertmanager, api, resources
from agent_authority.models import grant, session
from agent_authority.policy import incidents

REASON = "IncidentResolved"
MAX_BODY = 1 << 20
NOTIFIED_CHECKS = 4
"""Checks started by notifications that may run at once (polls are not counted)."""
logger = logging.getLogger(__name__)


def notified_fingerprints(payload: object) -> set[str]:
    """Fingerprints an Alertmanager webhook notification reports as resolved."""
    if not isinstance(payload, dict):
        return set()
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        return set()
    return {
        str(a["fingerprint"])
        for a in alerts
        if isinstance(a, dict) and a.get("status") == "resolved" and a.get("fingerprint")
    }


def _binding_of(body: api.Json) -> grant.AlertBinding | None:
    """A grant's Alertmanager binding (None: not alert-bound, or a spec that does not parse)."""
    try:
        spec = grant.AgentGrantSpec.model_validate(body.get("spec") or {})
    except ValueError:
        return None
    return spec.incidents.alertmanager


class Resolver:
    """The ``/alertmanager`` receiver and the polling loop, sharing one check."""

    def __init__(self, kube: api.Kube, poll_seconds: float) -> None:
        self.kube = kube
        self.poll_seconds = poll_seconds
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._notified = asyncio.Semaphore(NOTIFIED_CHECKS)

    async def start(self, *, host: str, port: int, certfile: str, keyfile: str) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/alertmanager", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=context).start()
        await self.start_polling()

    async def start_polling(self) -> None:
        if self.poll_seconds > 0 and self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="not a JSON Alertmanager notification")
        hinted = notified_fingerprints(payload)
        if hinted:
            task = asyncio.get_running_loop().create_task(self._notified_check(hinted))
            self._pending.add(task)  # keep a reference until it finishes
            task.add_done_callback(self._pending.discard)
        return web.Response(status=200)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self._safe_check(None, "polled")

    async def _notified_check(self, fingerprints: Collection[str]) -> None:
        async with self._notified:  # bounded: anyone who reaches the endpoint can post
            await self._safe_check(fingerprints, "notified")

    async def _safe_check(self, fingerprints: Collection[str] | None, via: str) -> None:
        try:
            await self.check(fingerprints, via)
        except Exception:
            logger.exception("checking alert-bound sessions failed; the next poll retries")

    async def check(self, fingerprints: Collection[str] | None = None, via: str = "polled") -> int:
        """End the Active alert-bound sessions whose alert resolved; how many were ended.

        ``fingerprints`` limits the check to sessions of those alerts (a notification's hint);
        ``via`` (``notified``/``polled``) is recorded in the revocation message.

        Checks do not wait for one another: a notification is acted on when it arrives, even
        while a poll is still asking a slow or unreachable Alertmanager. Each Alertmanager is
        asked once per check, all at the same time, so one that hangs (up to its timeout) delays
        no other. Ending a session twice is harmless: :func:`session_revocation.revoke` ends it
        once, and the first path to see the resolution is the one recorded.
        """
        bindings = {
            g["metadata"]["name"]: b
            for g in await resources.list_grants(self.kube)
            if (b := _binding_of(g)) is not None
        }
        if not bindings:  # no grant binds sessions to alerts: no session to list (1,000 Active
            return 0  # sessions are megabytes of JSON, for the apiserver and for this process)
        candidates = [
            (s, bindings[s["spec"]["grantRef"]["name"]])
            for s in await resources.list_sessions(self.kube)
            if (s.get("status") or {}).get("phase") == session_fields.ACTIVE
            and not s["spec"].get("ended")
            and s["spec"].get("grantRef", {}).get("name") in bindings
            and (fingerprints is None or s["spec"]["incident"]["id"] in fingerprints)
        ]
        if not candidates:
            return 0
        wanted = {b.url: b for _, b in candidates}
        answers = await asyncio.gather(*(self._firing(b) for b in wanted.values()))
        firing = dict(zip(wanted, answers, strict=True))
        ended = 0
        for body, binding in candidates:
            alerts = firing[binding.url]
            fingerprint = str(body["spec"]["incident"]["id"])
            if alerts is None or not incidents.resolved(fingerprint, alerts):
                continue
            if await self._end(body, fingerprint, binding.url, via):
                ended += 1
        return ended

    async def _firing(self, binding: grant.AlertBinding) -> list[incidents.Alert] | None:
        """The alerts firing at the binding's Alertmanager, or None when it cannot be asked."""
        try:
            return await alertmanager.firing(binding.url, ca_bundle=binding.ca_bundle)
        except alertmanager.AlertmanagerError as e:
            logger.warning("Alertmanager %s could not be asked: %s", binding.url, e)
            return None

    async def _end(self, body: api.Json, fingerprint: str, url: str, via: str) -> bool:
        meta = body["metadata"]
        fresh = await resources.get_session(self.kube, meta["namespace"], meta["name"])
        if (
            fresh is None
            or fresh["metadata"]["uid"] != meta["uid"]
            or (fresh.get("status") or {}).get("phase") != session_fields.ACTIVE
        ):
            return False
        await session_revocation.revoke(
            self.kube,
            fresh,
            session.SessionPhase.ENDED,
            REASON,
            f"alert {fingerprint} resolved (Alertmanager {url} no longer lists it as firing; "
            f"{via})",
        )
        logger.info("session %s/%s ended: its alert resolved", meta["namespace"], meta["name"])
        return True
