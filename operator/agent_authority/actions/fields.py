"""Pure helpers of the actions: field paths, the diff a write makes, merge patches.

A path is a tuple of keys into nested maps (``("spec", "replicas")``). :func:`get` reads one,
:func:`put` writes one into a patch body, :func:`render` writes one as ``spec.replicas``;
:func:`field_changes` lists the leaf fields that differ under given paths (what a dry-run shows);
:func:`merge_patch_between` computes the RFC 7386 merge patch from one value to another.

No I/O here, no Kubernetes client, no clock: these take values and return values. The write, the
marker and the plan they serve are ``base``'s.
"""

from __future__ import annotations

import collections.abc
import json
import re
from typing import Any

from agent_authority.models import request

Path = tuple[str, ...]
"""Keys into nested maps, outermost first: ``("spec", "template", "metadata")``."""
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def get(obj: Any, path: Path) -> Any:
    """The value at ``path`` in nested dicts; ``None`` when any step is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def render(path: Path) -> str:
    """``spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]``."""
    where = ""
    for key in path:
        where = _child(where, key)
    return where


def _child(where: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{where}.{key}" if where else key
    return f"{where}[{key}]"


def text(value: Any) -> str | None:
    """A value as a diff shows it: strings as they are, everything else as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_changes(
    before: dict[str, Any], after: dict[str, Any], paths: collections.abc.Iterable[Path]
) -> list[request.FieldChange]:
    """The leaf fields that differ between ``before`` and ``after`` under each of ``paths``.

    Maps are walked key by key; lists whose items are maps with unique ``name``s (containers,
    env, volumes) are matched by name (``containers[name=app].image``), other lists of maps by
    index; lists of scalars and scalars are leaves.
    """
    out: list[request.FieldChange] = []
    for path in paths:
        _walk(render(path), get(before, path), get(after, path), out)
    return out


def _walk(where: str, a: Any, b: Any, out: list[request.FieldChange]) -> None:
    if a == b:
        return
    if _maps(a, b):
        a_map, b_map = a or {}, b or {}
        for key in sorted(set(a_map) | set(b_map)):
            _walk(_child(where, key), a_map.get(key), b_map.get(key), out)
        return
    if _lists_of_maps(a, b):
        a_list, b_list = a or [], b or []
        if _named(a_list) and _named(b_list):
            a_by, b_by = {i["name"]: i for i in a_list}, {i["name"]: i for i in b_list}
            for name in [*a_by, *(n for n in b_by if n not in a_by)]:
                _walk(f"{where}[name={name}]", a_by.get(name), b_by.get(name), out)
            return
        for i in range(max(len(a_list), len(b_list))):
            item_a = a_list[i] if i < len(a_list) else None
            item_b = b_list[i] if i < len(b_list) else None
            _walk(f"{where}[{i}]", item_a, item_b, out)
        return
    out.append(request.FieldChange(path=where, before=text(a), after=text(b)))


def _maps(a: Any, b: Any) -> bool:
    return isinstance(a, dict | None) and isinstance(b, dict | None)


def _lists_of_maps(a: Any, b: Any) -> bool:
    if not (isinstance(a, list | None) and isinstance(b, list | None)):
        return False
    items = [*(a or []), *(b or [])]
    return bool(items) and all(isinstance(i, dict) for i in items)


def _named(items: list[Any]) -> bool:
    names = [i.get("name") for i in items]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def merge_patch_between(before: Any, after: Any) -> Any:
    """The RFC 7386 merge patch that turns ``before`` into ``after`` (keys removed become null).

    Exact when ``after`` holds no nulls, which is true of objects read from the apiserver.
    """
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return after
    patch: dict[str, Any] = dict.fromkeys(before.keys() - after.keys())
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch_between(before[key], value)
    return patch


def put(body: dict[str, Any], path: Path, value: Any) -> None:
    """Set ``path`` in ``body``, creating maps on the way."""
    *parents, last = path
    for key in parents:
        body = body.setdefault(key, {})
    body[last] = value
