"""What an Active session needs next, and when: end, expire, rotate its token, or wait.

The operator keeps one schedule of every Active session it watches (``controllers.
session_lifetime``); these pure functions decide, from what a session's status and spec say, the
next moment it needs attention and what is due then. Times are seconds since the epoch. No
clock: the caller passes ``now``.

:func:`leads` answers the other question the schedule asks before it acts: is this replica the
one peering lets act (kopf's rule, so the schedule pauses exactly when kopf's handlers do).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Any


class Due(enum.Enum):
    """What is due for an Active session."""

    END = "End"
    """``spec.ended`` is true: end it (the event handler normally has; this is the retry)."""
    EXPIRE = "Expire"
    """Its TTL (``status.expiresAt``) has passed."""
    ROTATE = "Rotate"
    """Its token has lived the fraction of its life after which it is replaced."""
    FINISH = "FinishRevocation"
    """A terminal session whose credentials may still exist (``CredentialsRevoked`` not True:
    their deletion failed after the terminal status was written): delete them again."""


@dataclasses.dataclass(frozen=True)
class Upkeep:
    """``due`` now (or None), and when to look again (None: never, it needs no schedule)."""

    due: Due | None
    at: float | None


NOTHING = Upkeep(None, None)


def rotation_at(
    rotated_at: float | None, token_expires_at: float | None, after: float
) -> float | None:
    """When the current token is to be replaced: ``after`` seconds after it was minted when
    ``after`` > 1, else that fraction of its lifetime; None when the status names no token."""
    if rotated_at is None or token_expires_at is None:
        return None
    lifetime = token_expires_at - rotated_at
    return rotated_at + (after if after > 1 else lifetime * after)


def upkeep(
    *,
    active: bool,
    ended: bool,
    expires_at: float | None,
    rotate_at: float | None,
    now: float,
    retry: float = 1.0,
    unrevoked_since: float | None = None,
    finish_every: float = 3.0,
) -> Upkeep:
    """What a session needs at ``now``, and when to look again.

    An end beats an expiry, which beats a rotation (an expired session gets no new token). A
    due action is looked at again ``retry`` seconds later in case it fails; the watch event of
    its success replaces that. A terminal session seen with its credentials not yet deleted
    since ``unrevoked_since`` has them deleted ``finish_every`` seconds after that, and every
    ``finish_every`` seconds until its status says they are gone. Any other session that is not
    Active needs nothing here."""
    if unrevoked_since is not None:
        at = unrevoked_since + finish_every
        return Upkeep(Due.FINISH, now + finish_every) if at <= now else Upkeep(None, at)
    if not active:
        return NOTHING
    if ended:
        return Upkeep(Due.END, now + retry)
    if expires_at is not None and expires_at <= now:
        return Upkeep(Due.EXPIRE, now + retry)
    if rotate_at is not None and rotate_at <= now:
        return Upkeep(Due.ROTATE, now + retry)
    later = [t for t in (expires_at, rotate_at) if t is not None]
    return Upkeep(None, min(later) if later else None)


def leads(peers: Mapping[str, Any], priority: int, now: datetime.datetime) -> bool:
    """Whether a replica of ``priority`` may act, given a KopfPeering's ``status`` (peer id →
    ``priority``, ``lifetime``, ``lastseen``), by kopf's rule: it pauses while a live peer has a
    higher priority, or while another live peer has the same one. A peer is dead once
    ``lastseen + lifetime`` has passed; an entry without ``lastseen`` counts as seen now.

    This replica appears among the peers itself, so one live entry of its own priority is
    itself; two or more mean another replica has it too."""
    same = 0
    for info in peers.values():
        if not isinstance(info, Mapping):
            continue
        seen_text = info.get("lastseen")
        seen = datetime.datetime.fromisoformat(seen_text) if isinstance(seen_text, str) else now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if seen + datetime.timedelta(seconds=int(info.get("lifetime", 60))) <= now:
            continue  # dead: kopf ignores it (and cleans it up)
        other = int(info.get("priority", 0))
        if other > priority:
            return False
        if other == priority:
            same += 1
    return same <= 1
