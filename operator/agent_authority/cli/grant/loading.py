"""Reading the inputs of ``grant`` commands: files, directories, stdin and ``REV:path``.

Owns turning a command-line argument into text (:class:`Source`), how an input and a line in it
are named in messages (:func:`location`), and :class:`InputError`, the one usage error (exit 2).
It does not parse YAML (``documents`` does) or judge what it reads (``checking`` does).
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
from collections.abc import Sequence


class InputError(Exception):
    """An input cannot be read at all: a usage error (exit 2)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """The text of one input, with the label it is shown by."""

    label: str
    text: str
    note: str = ""
    """Why the text is empty when that is not obvious (``REV:path`` missing at ``REV``)."""


def read_source(arg: str, *, allow_git: bool = False) -> Source:
    """The text behind an argument: ``-`` (stdin), a file, or (``allow_git``) ``REV:path``."""
    if arg == "-":
        return Source("<stdin>", sys.stdin.read())
    path = pathlib.Path(arg)
    if path.is_dir():
        raise InputError(f"{arg} is a directory (allowed here: a YAML file or -)")
    if path.exists():
        try:
            return Source(arg, path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {arg}: {e}") from e
    if allow_git and ":" in arg and not arg.startswith("-"):
        return _git_show(arg)
    allowed = "a file, -, /dev/null or REV:path" if allow_git else "a file, a directory or -"
    raise InputError(f"{arg}: no such file (allowed: {allowed})")


def _git_show(spec: str) -> Source:
    revision, _, path = spec.partition(":")
    try:
        done = subprocess.run(["git", "show", spec], capture_output=True, check=False)
    except OSError as e:
        raise InputError(
            f"cannot read {spec}: git could not run ({e}); REV:path needs git and a checkout"
        ) from e
    if done.returncode == 0:
        try:
            return Source(spec, done.stdout.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise InputError(f"cannot read {spec}: not UTF-8 text: {e}") from e
    message = done.stderr.decode("utf-8", errors="replace").strip()
    if "does not exist in" in message or "exists on disk, but not in" in message:
        return Source(spec, "", note=f"{path} does not exist at {revision}: read as no grant")
    raise InputError(
        f"cannot read {spec}: git show failed: {message} "
        "(allowed: REV:path with a revision git knows and a path relative to the repository root)"
    )


def lint_paths(args: Sequence[str]) -> list[str]:
    """Files to lint: each argument, or the ``*.yaml``/``*.yml`` files under a directory."""
    paths: list[str] = []
    for arg in args:
        folder = pathlib.Path(arg)
        if arg != "-" and folder.is_dir():
            found = sorted(
                str(p) for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            if not found:
                raise InputError(f"{arg}: no .yaml or .yml files in this directory")
            paths += found
        else:
            paths.append(arg)
    return paths


def location(label: str, line: int) -> str:
    """``grant.yaml:12``: an input and a line in it; the input alone when the line is unknown."""
    return f"{label}:{line}" if line else label
