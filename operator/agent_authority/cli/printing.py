"""Output of the cluster-facing commands, as kubectl prints: a table, ``-o wide|json|yaml|name``.

``json`` and ``yaml`` print the objects as the apiserver returned them (a list as a ``v1/List``),
``name`` prints ``kind.group/name`` one a line, ``wide`` the table with more columns. An empty
table says so on stderr (``No … found in namespace agents.``), as kubectl does, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from agent_authority.models import GROUP

FORMATS = ("wide", "json", "yaml", "name")
Row = list[str]


def add_output(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    """``-o/--output``; without it, the table."""
    parser.add_argument(
        "-o",
        "--output",
        choices=list(formats),
        default="",
        help=f"output format: {'|'.join(formats)} (default: a table)",
    )


def dump(value: Any, output: str) -> str:
    """``value`` as JSON or YAML text."""
    if output == "json":
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    return text


def object_name(item: dict[str, Any]) -> str:
    """``remediationrequest.agentauthority.io/NAME``, as ``kubectl get -o name``."""
    return f"{str(item.get('kind', 'object')).lower()}.{GROUP}/{item['metadata']['name']}"


def print_table(rows: list[Row]) -> None:
    """Print rows as left-aligned columns, the first row being the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def emit_list(
    items: list[dict[str, Any]],
    output: str,
    *,
    header: Callable[[bool], Row],
    row: Callable[[dict[str, Any], bool], Row],
    empty: str,
    kind: str,
) -> None:
    """Print ``items`` in the chosen format; ``empty`` (on stderr) when a table has no rows."""
    for item in items:
        item.setdefault("kind", kind)
    if output in ("json", "yaml"):
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, output))
        return
    if output == "name":
        for item in items:
            print(object_name(item))
        return
    if not items:
        print(empty, file=sys.stderr)
        return
    wide = output == "wide"
    print_table([header(wide), *(row(item, wide) for item in items)])
