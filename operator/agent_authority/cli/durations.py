"""Durations on the command line as kubectl takes them: ``90``, ``90s``, ``30m``, ``1h``, ``1h30m``.

A bare number is seconds. Units: ``s``, ``m``, ``h``, ``d``; parts are added up and each unit may
appear once, largest first.
"""

from __future__ import annotations

import argparse
import re

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def seconds(text: str) -> int:
    """``text`` in seconds; ``ValueError`` with what is allowed when it is not a duration."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration (allowed: 600, 90s, 30m, 1h, 1h30m, 1d)")
    return sum(int(n) * size for n, size in zip(match.groups(), _UNITS.values(), strict=True) if n)


def argument(text: str) -> int:
    """An argparse ``type=`` that turns a duration into seconds (a usage error otherwise)."""
    try:
        return seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
