"""Failpoints: which are enabled, and a pause sleeps only for its own name."""

from __future__ import annotations

import asyncio

import pytest

from agent_authority import failpoints


@pytest.mark.parametrize(
    ("env", "name", "value"),
    [
        pytest.param("after-status:SessionOpened", "after-status:SessionOpened", "", id="kill"),
        pytest.param(
            "a, pause-before-status:SessionOpened=0.2",
            "pause-before-status:SessionOpened",
            "0.2",
            id="pause-with-seconds-among-others",
        ),
        pytest.param("", "after-audit:SessionOpened", None, id="nothing-enabled"),
        pytest.param("after-status:X", "after-status:Y", None, id="another-event"),
    ],
)
def test_enabled(monkeypatch: pytest.MonkeyPatch, env: str, name: str, value: str | None) -> None:
    monkeypatch.setenv(failpoints.ENV, env)
    assert failpoints._enabled().get(name) == value


def test_a_pause_sleeps_for_its_own_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, "pause-before-status:SessionOpened=60")
    asyncio.run(asyncio.wait_for(failpoints.pause("pause-before-status:SessionEnded"), 30))
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(failpoints.pause("pause-before-status:SessionOpened"), 0.5))
