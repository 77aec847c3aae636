"""YAML documents of an input, and where a field is in them.

Owns :func:`parse` (documents with their node trees, kept for line numbers), the lint result
(:class:`Finding`), field paths written as ``spec.read[0].verbs[1]`` and the line each starts on,
and keys written twice. Knows nothing of what an AgentGrant holds.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable

import yaml

from agent_authority.cli.grant import loading


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One lint result: where (field path and line) and what, with why and what is allowed."""

    level: Level
    field: str
    """Field path as ``spec.read[0].verbs[1]``; ``""`` for the document or file as a whole."""
    message: str
    line: int = 0
    """1-based line in the input; 0 when unknown."""

    def to_json(self) -> dict[str, object]:
        return {
            "level": self.level,
            "field": self.field,
            "message": self.message,
            "line": self.line,
        }


@dataclasses.dataclass(frozen=True)
class Document:
    """One YAML document of a source, with its node tree (for line numbers)."""

    source: loading.Source
    index: int
    line: int
    node: yaml.Node
    body: object


def parse(source: loading.Source) -> tuple[list[Document], list[Finding]]:
    """The documents of a source, and a finding if the YAML stops parsing part-way."""
    documents: list[Document] = []
    loader = yaml.SafeLoader(source.text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            body = loader.construct_document(node)
            documents.append(Document(source, len(documents), node.start_mark.line + 1, node, body))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        detail = str(e).replace("\n", " ")
        return documents, [Finding(Level.ERROR, "", f"not valid YAML: {detail}", line)]
    finally:
        loader.dispose()
    return documents, []


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def field_path(parts: Iterable[int | str]) -> str:
    """``("spec", "read", 0, "verbs", 1)`` as ``spec.read[0].verbs[1]``; odd keys as ``["a/b"]``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _segments(path: str) -> list[int | str]:
    segments: list[int | str] = []
    for name, index, quoted in _SEGMENT.findall(path):
        segments.append(name or (int(index) if index else json.loads(quoted)))
    return segments


def line_of(node: yaml.Node, path: str) -> int:
    """The line of the deepest node on ``path`` that exists (a missing field: its parent's)."""
    line = node.start_mark.line + 1
    for segment in _segments(path):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(segment, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == segment:
                    child, line = value, key.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(segment, int)
            and segment < len(node.value)
        ):
            child = node.value[segment]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def duplicate_keys(node: yaml.Node, path: tuple[int | str, ...] = ()) -> list[Finding]:
    """Keys written twice in one mapping: YAML keeps the last, a reviewer may read the first."""
    findings: list[Finding] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else ""
            line = key.start_mark.line + 1
            if name in seen:
                findings.append(
                    Finding(
                        Level.ERROR,
                        field_path((*path, name)),
                        f"key '{name}' is written twice (lines {seen[name]} and {line}): YAML "
                        "keeps the last value while a reviewer may read the first, and the "
                        "apiserver refuses it (allowed: each key once)",
                        line,
                    )
                )
            seen.setdefault(name, line)
            findings += duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            findings += duplicate_keys(item, (*path, i))
    return findings
