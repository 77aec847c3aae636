"""A session's identity and its token: ServiceAccount, bound Secret, TokenRequest.

Tokens are minted for the session's remaining life (:func:`token_seconds`), never below the
TokenRequest minimum of 600 s, so a token outlives its session by at most that minimum even when
nobody revokes it. A token is bound to the session's Secret (deleting the Secret kills it once
the apiserver's 10 s token cache forgets it) and stored there.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from agent_authority.kube import api, session_refs

MIN_TOKEN_SECONDS = 600
"""The TokenRequest API refuses anything shorter (kube-apiserver validation)."""
LEGACY_TOKEN_SECONDS = 3607
"""The kubelet's legacy default: the apiserver silently extends a token asked for exactly this
long to a year (``--service-account-extend-token-expiration``), so it is never asked for."""


async def ensure_identity(kube: api.Kube, ref: session_refs.SessionRef) -> str:
    """Create the session's ServiceAccount and Secret if missing; returns the Secret's uid."""
    sa = {
        "metadata": session_refs.object_meta(ref, ref.service_account, ref.namespace, "identity"),
        "automountServiceAccountToken": False,
    }
    secret = {
        "metadata": session_refs.object_meta(ref, ref.secret, ref.namespace, "token"),
        "type": "Opaque",
    }
    _, created = await asyncio.gather(
        api.create_or_get(kube.core.create_namespaced_service_account, ref.namespace, sa),
        api.create_or_get(kube.core.create_namespaced_secret, ref.namespace, secret),
    )
    if created is None:  # it existed already (a retry, or a rotation): read its uid
        created = await api.call(kube.core.read_namespaced_secret, ref.secret, ref.namespace)
    return str(created["metadata"]["uid"])


def token_seconds(remaining: float, ceiling: int) -> int:
    """How long to ask a session token to live: the session's remaining seconds, at least the
    TokenRequest minimum, at most ``ceiling``, and never the legacy 3607 s."""
    seconds = min(max(int(remaining) + 1, MIN_TOKEN_SECONDS), max(ceiling, MIN_TOKEN_SECONDS))
    return seconds - 1 if seconds == LEGACY_TOKEN_SECONDS else seconds


@dataclasses.dataclass(frozen=True)
class Token:
    token: str
    expires_at: datetime.datetime


async def mint(
    kube: api.Kube,
    ref: session_refs.SessionRef,
    secret_uid: str,
    seconds: int,
    *,
    audiences: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> Token:
    """Mint a token for the session's ServiceAccount, bound to its Secret, and store it there.

    The apiserver may shorten the lifetime (``--service-account-max-token-expiration``), so the
    expiry is read from the response, never assumed. ``audiences`` (gateway mode: the gateway's
    audience only) make the apiserver itself refuse the token; ``extra`` keys are stored in the
    Secret beside it (gateway mode: ``server`` and ``ca.crt`` of the gateway).
    """
    spec: dict[str, Any] = {
        "expirationSeconds": max(seconds, MIN_TOKEN_SECONDS),
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": ref.secret,
            "uid": secret_uid,
        },
    }
    if audiences:
        spec["audiences"] = list(audiences)
    review = await api.call(
        kube.core.create_namespaced_service_account_token,
        ref.service_account,
        ref.namespace,
        {"spec": spec},
    )
    token = Token(
        str(review["status"]["token"]),
        datetime.datetime.fromisoformat(review["status"]["expirationTimestamp"]),
    )
    data = {
        "token": _b64(token.token),
        "namespace": _b64(ref.namespace),
        "expiresAt": _b64(token.expires_at.isoformat()),
        **{key: _b64(value) for key, value in (extra or {}).items()},
    }
    await api.call(kube.core.patch_namespaced_secret, ref.secret, ref.namespace, {"data": data})
    return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
