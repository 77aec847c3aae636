"""``--help`` of every command ends with examples that work as pasted (against ``hack/dev``)."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any


def examples(text: str, description: str | None = None) -> dict[str, Any]:
    """``add_parser`` keyword arguments: an ``Examples:`` epilog, kept as written."""
    extra: dict[str, Any] = {
        "epilog": "Examples:\n" + textwrap.indent(textwrap.dedent(text).strip("\n"), "  "),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    if description is not None:
        extra["description"] = description
    return extra
