"""What an Active session needs next (end, expire, rotate, wait), and who may act on it."""

from __future__ import annotations

import datetime

import pytest

from agent_authority.policy import lifetimes

NOW = 1_000_000.0
Due = lifetimes.Due


@pytest.mark.parametrize(
    ("active", "ended", "expires_at", "rotate_at", "expected"),
    [
        pytest.param(
            False, False, NOW - 5, NOW - 5, lifetimes.NOTHING, id="not-active-needs-nothing"
        ),
        pytest.param(
            False, True, None, None, lifetimes.NOTHING, id="ended-but-not-active-is-not-ours"
        ),
        pytest.param(
            True,
            True,
            NOW + 60,
            NOW + 30,
            lifetimes.Upkeep(Due.END, NOW + 1),
            id="ended-ends-now-and-retries-in-1s",
        ),
        pytest.param(
            True,
            True,
            NOW - 5,
            NOW - 5,
            lifetimes.Upkeep(Due.END, NOW + 1),
            id="an-end-beats-an-expiry",
        ),
        pytest.param(
            True,
            False,
            NOW,
            NOW - 5,
            lifetimes.Upkeep(Due.EXPIRE, NOW + 1),
            id="expiry-at-now-expires-and-beats-a-rotation",
        ),
        pytest.param(
            True,
            False,
            NOW - 0.001,
            None,
            lifetimes.Upkeep(Due.EXPIRE, NOW + 1),
            id="expiry-just-past-expires",
        ),
        pytest.param(
            True,
            False,
            NOW + 60,
            NOW,
            lifetimes.Upkeep(Due.ROTATE, NOW + 1),
            id="rotation-due-rotates",
        ),
        pytest.param(
            True,
            False,
            NOW + 60,
            NOW + 30,
            lifetimes.Upkeep(None, NOW + 30),
            id="waits-for-the-rotation-first",
        ),
        pytest.param(
            True,
            False,
            NOW + 20,
            NOW + 30,
            lifetimes.Upkeep(None, NOW + 20),
            id="waits-for-the-expiry-first",
        ),
        pytest.param(
            True,
            False,
            None,
            NOW + 30,
            lifetimes.Upkeep(None, NOW + 30),
            id="no-ttl-waits-for-rotation",
        ),
        pytest.param(
            True,
            False,
            None,
            None,
            lifetimes.Upkeep(None, None),
            id="nothing-known-needs-no-schedule",
        ),
    ],
)
def test_upkeep_of_an_active_session(
    active: bool,
    ended: bool,
    expires_at: float | None,
    rotate_at: float | None,
    expected: lifetimes.Upkeep,
) -> None:
    got = lifetimes.upkeep(
        active=active, ended=ended, expires_at=expires_at, rotate_at=rotate_at, now=NOW
    )
    assert got == expected


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        pytest.param(NOW, lifetimes.Upkeep(None, NOW + 3), id="first-try-3s-after-it-was-seen"),
        pytest.param(NOW - 3, lifetimes.Upkeep(Due.FINISH, NOW + 3), id="then-due-and-every-3s"),
        pytest.param(NOW - 30, lifetimes.Upkeep(Due.FINISH, NOW + 3), id="until-they-are-gone"),
    ],
)
def test_upkeep_of_a_terminal_session_whose_credentials_may_remain(
    since: float, expected: lifetimes.Upkeep
) -> None:
    got = lifetimes.upkeep(
        active=False, ended=True, expires_at=None, rotate_at=None, now=NOW, unrevoked_since=since
    )
    assert got == expected


@pytest.mark.parametrize(
    ("rotated", "expires", "after", "expected"),
    [
        pytest.param(NOW, NOW + 1000, 0.8, NOW + 800, id="fraction-of-the-token-lifetime"),
        pytest.param(NOW, NOW + 1000, 30, NOW + 30, id="seconds-when-above-one"),
        pytest.param(NOW, NOW + 1000, 1, NOW + 1000, id="one-is-the-whole-lifetime"),
        pytest.param(None, NOW + 1000, 0.8, None, id="no-rotation-time-no-rotation"),
        pytest.param(NOW, None, 0.8, None, id="no-token-expiry-no-rotation"),
    ],
)
def test_rotation_at(
    rotated: float | None, expires: float | None, after: float, expected: float | None
) -> None:
    assert lifetimes.rotation_at(rotated, expires, after) == expected


T = datetime.datetime(2026, 12, 2, 6, 0, tzinfo=datetime.UTC)


def _peer(priority: int, seen_ago: float = 1.0, lifetime: int = 15) -> dict[str, object]:
    seen = (T - datetime.timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        pytest.param({}, True, id="no-peers-yet-acts"),
        pytest.param({"me": _peer(-100)}, True, id="alone-acts"),
        pytest.param(
            {"me": _peer(-100), "old": _peer(-50)}, False, id="a-live-higher-priority-peer-pauses"
        ),
        pytest.param(
            {"me": _peer(-100), "new": _peer(-200)}, True, id="a-lower-priority-peer-does-not"
        ),
        pytest.param(
            {"me": _peer(-100), "old": _peer(-50, seen_ago=20)},
            True,
            id="a-dead-higher-priority-peer-does-not",
        ),
        pytest.param(
            {"me": _peer(-100), "old": _peer(-50, seen_ago=14)},
            False,
            id="alive-until-its-lifetime-passes",
        ),
        pytest.param(
            {"me": _peer(-100), "twin": _peer(-100)},
            False,
            id="another-live-peer-of-the-same-priority-pauses-both",
        ),
        pytest.param(
            {"me": _peer(-100), "twin": _peer(-100, seen_ago=60)}, True, id="a-dead-twin-does-not"
        ),
        pytest.param(
            {"me": {"priority": -100}, "old": {"priority": -50}},
            False,
            id="no-lastseen-counts-as-seen-now",
        ),
    ],
)
def test_leads(peers: dict[str, dict[str, object]], expected: bool) -> None:
    assert lifetimes.leads(peers, -100, T) is expected
