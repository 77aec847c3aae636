"""Output helpers shared by the offline commands (``grant``, ``audit``): formats, words, exits.

Commands build their results as plain data and render them here as text for people, Markdown for
pull-request comments, or JSON for machines. Nothing here reads files or talks to a cluster.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence

EXIT_OK = 0
"""The command did what was asked and found nothing to object to."""
EXIT_FINDINGS = 1
"""The command ran and found something: lint errors, a widening diff, a tampered log."""
EXIT_USAGE = 2
"""The command could not run: bad arguments, unreadable input, invalid key (as argparse)."""


class Format(enum.StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


def add_output_argument(parser: argparse.ArgumentParser, formats: Sequence[Format]) -> None:
    """Register ``-o/--output`` with the given formats, the first one being the default.

    The value stays a ``str``; :class:`Format` is a ``StrEnum``, so ``args.output == Format.JSON``
    holds.
    """
    parser.add_argument(
        "-o",
        "--output",
        choices=[str(f) for f in formats],
        default=str(formats[0]),
        help=f"output format (default: {formats[0]})",
    )


def usage_error(message: str) -> int:
    """Print ``agent-authority: error: <message>`` to stderr and return :data:`EXIT_USAGE`."""
    print(f"agent-authority: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def to_json(value: object) -> str:
    """Stable, indented JSON text (keys in the order they were built)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def human_list(items: Iterable[str], conjunction: str = "and", empty: str = "none") -> str:
    """``a``, ``a and b``, ``a, b and c``; ``empty`` when there are no items."""
    values = list(items)
    if not values:
        return empty
    if len(values) == 1:
        return values[0]
    return f"{', '.join(values[:-1])} {conjunction} {values[-1]}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 approver``, ``2 approvers``."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def duration(seconds: int) -> str:
    """A duration for people: ``90 s``, ``30 min``, ``1 h 30 min``, ``7 d``."""
    if seconds <= 0:
        return "0 s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}")
    return " ".join(parts)


def md_code(text: str) -> str:
    """Inline Markdown code that survives backticks in ``text``."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_escape(text: str) -> str:
    """Escape the characters that would turn plain text into Markdown markup."""
    for char in "\\`*_[]<>|#":
        text = text.replace(char, "\\" + char)
    return text


def bullet(text: str, width: int = 100) -> str:
    """``  - text``, wrapped at ``width`` with continuation lines indented under the text."""
    return textwrap.fill(text, width=width, initial_indent="  - ", subsequent_indent="    ")


def md_fence(lines: Iterable[str]) -> str:
    """A code fence longer than any run of backticks in ``lines``, which cannot close it early.

    Names in grants (subjects, above all) are free text; a fixed three-backtick fence would let
    one end the block and write Markdown into a pull-request comment.
    """
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


Sections = Sequence[tuple[str, Sequence[str]]]
"""Titled sections of sentences, as ``grant explain`` builds them."""


def sections_text(title: str, sections: Sections) -> str:
    """A title, then each section's title and its sentences as wrapped bullets."""
    lines = [title]
    for heading, sentences in sections:
        lines += [heading, *(bullet(sentence) for sentence in sentences)]
    return "\n".join(lines) + "\n"


def sections_markdown(title: str, sections: Sections) -> str:
    """The same as :func:`sections_text`, as Markdown (a level-3 heading, bold titles, bullets)."""
    lines = [f"### {md_escape(title)}", ""]
    for heading, sentences in sections:
        lines += [f"**{heading}**", "", *(f"- {md_escape(s)}" for s in sentences), ""]
    return "\n".join(lines)
