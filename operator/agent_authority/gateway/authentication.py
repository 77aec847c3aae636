"""Who is calling: a bearer token → the session it belongs to, or a refusal (HTTP 401).

A TokenReview for the gateway's audience says whose token it is (the answer is cached for
:data:`CACHE_SECONDS` and renewed in the background after :data:`REFRESH_AFTER_SECONDS`;
concurrent look-ups of one token share a single review); the gateway's
own watched :class:`view.View` then says whether that session may act *now*. The cache therefore
never delays a revocation: a token of an ended session keeps authenticating at the apiserver for
its cache window, but the view refuses it at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import time

from agent_authority.gateway import view
from agent_authority.kube import errors, upstream
from agent_authority.policy import gateway

CACHE_SECONDS = 10.0
REFRESH_AFTER_SECONDS = 5.0
"""A cached answer older than this is renewed in the background while it is still served, so
requests never queue behind a TokenReview under steady use."""
NEGATIVE_CACHE_SECONDS = 2.0
CACHE_LIMIT = 10000
SA_PREFIX = "system:serviceaccount:"


def _clock() -> float:
    return time.monotonic()


@dataclasses.dataclass(frozen=True)
class _Review:
    username: str | None
    """The token's ServiceAccount user, or None when it does not authenticate for us."""
    why: str
    until: float
    renew_at: float = float("inf")


class Authenticator:
    def __init__(self, up: upstream.Upstream, audience: str, sessions: view.View) -> None:
        self._upstream = up
        self._audience = audience
        self._view = sessions
        self._cache: dict[str, _Review] = {}
        self._pending: dict[str, asyncio.Future[_Review]] = {}

    async def authenticate(self, authorization: str | None) -> view.Entry | gateway.Refused:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthenticated("no bearer token: use the session's kubeconfig")
        review = await self._review(token.strip())
        if review.username is None:
            return _unauthenticated(review.why)
        namespace, _, account = review.username[len(SA_PREFIX) :].partition(":")
        entry = self._view.lookup(namespace, account)
        if entry is None:
            return _unauthenticated(f"{review.username} belongs to no session this gateway knows")
        why = self._view.stopped(entry.uid) or entry.refusal(datetime.datetime.now(datetime.UTC))
        if why is not None:
            return gateway.Refused(
                gateway.Refusal.SESSION_NOT_ACTIVE,
                f"{why}: its credentials are revoked",
                code=401,
                deviation=False,
            )
        return entry

    async def _review(self, token: str) -> _Review:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = _clock()
        cached = self._cache.get(key)
        if cached is not None and cached.until > now:
            if cached.renew_at <= now:
                self._start(key, token)  # renewed in the background; this answer still holds
            return cached
        return await asyncio.shield(self._start(key, token))

    def _start(self, key: str, token: str) -> asyncio.Future[_Review]:
        """The review of ``token`` under way, or a new one. One per token at a time, in its own
        task: a caller that goes away (and is cancelled) does not cancel the others' answer."""
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(token))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        return pending

    def _settle(self, key: str, done: asyncio.Future[_Review]) -> None:
        self._pending.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return
        now = _clock()
        if len(self._cache) >= CACHE_LIMIT:
            self._cache = {k: v for k, v in self._cache.items() if v.until > now}
        self._cache[key] = done.result()

    async def _ask(self, token: str) -> _Review:
        try:
            status = await self._upstream.token_review(token, [self._audience])
        except errors.KubeError as e:
            # Cannot tell: refuse (fail closed) and do not cache the failure.
            return _Review(None, f"the token could not be reviewed: {e}", 0.0)
        now = _clock()
        username = str((status.get("user") or {}).get("username") or "")
        if not status.get("authenticated") or self._audience not in (status.get("audiences") or []):
            return _Review(
                None,
                f"the token does not authenticate for the gateway's audience {self._audience!r}"
                + (f": {status['error']}" if status.get("error") else ""),
                now + NEGATIVE_CACHE_SECONDS,
            )
        account = username[len(SA_PREFIX) :].partition(":")[2]
        if not username.startswith(SA_PREFIX) or not account.startswith("aa-"):
            return _Review(
                None, f"{username} is not a session identity", now + NEGATIVE_CACHE_SECONDS
            )
        return _Review(username, "", now + CACHE_SECONDS, now + REFRESH_AFTER_SECONDS)


def _unauthenticated(message: str) -> gateway.Refused:
    return gateway.Refused(gateway.Refusal.UNAUTHENTICATED, message, code=401, deviation=False)
