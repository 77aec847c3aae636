"""Turn the apiserver's ``userInfo`` of an admission request into our ``UserInfo`` model."""

from __future__ import annotations

from typing import Any

from agent_authority.models import base


def from_userinfo(userinfo: Any) -> base.UserInfo:
    """The authenticated caller (never anything the client wrote into the object)."""
    info = dict(userinfo or {})
    return base.UserInfo(
        username=str(info.get("username") or "system:anonymous"),
        uid=str(info["uid"]) if info.get("uid") else None,
        groups=[str(g) for g in info.get("groups") or []],
    )


def extra_of(userinfo: Any) -> dict[str, list[str]]:
    extra = dict(userinfo or {}).get("extra") or {}
    return {str(k): [str(v) for v in values] for k, values in dict(extra).items()}


def is_operator(userinfo: Any, memo: Any) -> bool:
    operator = getattr(memo, "operator", None)
    return operator is not None and from_userinfo(userinfo).username == operator.username
