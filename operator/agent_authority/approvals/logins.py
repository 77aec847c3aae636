"""Signed-in people: a server-side record per login, named by a signed, short-lived cookie.

The cookie holds only ``<id>.<expiry>.<mac>`` (HMAC-SHA256 with a key made at start-up), is
``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over HTTPS), and ends when the login does (at
most :data:`MAX_SECONDS`). The person's token stays in this process's memory, never in the
browser after sign-in. Each login has its own CSRF token, required on every form; the sign-in
form uses a double-submit token in a cookie of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from agent_authority.kube import api, people
from agent_authority.models import base

COOKIE = "aa_login"
CSRF_COOKIE = "aa_signin"
DEFAULT_SECONDS = 900
MAX_SECONDS = 3600
MAX_LOGINS = 1000


@dataclasses.dataclass
class Login:
    id: str
    user: base.UserInfo
    extra: dict[str, list[str]]
    kube: api.Kube
    csrf: str
    expires: float


class Logins:
    def __init__(self, seconds: int = DEFAULT_SECONDS, clock: Callable[[], float] | None = None):
        self.seconds = max(60, min(seconds, MAX_SECONDS))
        self._key = secrets.token_bytes(32)
        self._logins: dict[str, Login] = {}
        self._clock = clock or time.time

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def create(
        self, user: base.UserInfo, extra: dict[str, list[str]], kube: api.Kube
    ) -> tuple[Login, str]:
        """A new login and its cookie value."""
        self._purge()
        while len(self._logins) >= MAX_LOGINS:
            self.drop(min(self._logins.values(), key=lambda x: x.expires).id)
        login = Login(
            id=secrets.token_urlsafe(24),
            user=user,
            extra=extra,
            kube=kube,
            csrf=secrets.token_urlsafe(24),
            expires=self._clock() + self.seconds,
        )
        self._logins[login.id] = login
        value = f"{login.id}.{int(login.expires)}"
        return login, f"{value}.{self._mac(value)}"

    def find(self, cookie: str | None) -> Login | None:
        """The login a cookie names, if its signature holds and it has not ended."""
        if not cookie or cookie.count(".") != 2:
            return None
        ident, expiry, mac = cookie.split(".")
        if not hmac.compare_digest(self._mac(f"{ident}.{expiry}"), mac):
            return None
        login = self._logins.get(ident)
        now = self._clock()
        if login is None or not expiry.isdigit() or int(expiry) < now or login.expires < now:
            if login is not None and login.expires < now:
                self.drop(ident)
            return None
        return login

    def drop(self, ident: str) -> None:
        login = self._logins.pop(ident, None)
        if login is not None:
            people.close(login.kube)

    def _purge(self) -> None:
        now = self._clock()
        for ident in [i for i, x in self._logins.items() if x.expires < now]:
            self.drop(ident)

    def close(self) -> None:
        for ident in list(self._logins):
            self.drop(ident)


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return bool(given) and hmac.compare_digest(str(given), expected)


def pasted_token(text: str) -> str:
    """The token in what a person pasted: surrounding space and an ``Authorization`` header's
    ``Bearer`` prefix (any case) removed, as people copy it from a header or a kubeconfig."""
    token = text.strip()
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return token
