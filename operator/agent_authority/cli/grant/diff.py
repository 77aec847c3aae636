"""``grant diff OLD NEW``: what a grant change adds or removes in effective authority.

Owns the comparison (:func:`diff_grants`: read permissions per namespace, subjects, incidents,
remediations, approvals, session limits, each change signed ``+`` widens, ``-`` narrows, ``~``
neither), the notes on what a change means for live sessions, and the text, Markdown and JSON
output. Grants are matched by name; reading them is ``checking.load_grants``'.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence

from agent_authority.cli import render
from agent_authority.cli.grant import authority, checking, loading
from agent_authority.models import grant
from agent_authority.policy import blast, incidents, rbac

NO_GRANT = "/dev/null"
"""How a side without the grant is shown (``/dev/null`` is also how it is given)."""
_AUTONOMY_RANK = {grant.Autonomy.NEVER: 0, grant.Autonomy.PROPOSE: 1, grant.Autonomy.AUTO: 2}
SECTIONS = {
    "read": "Read permissions",
    "subjects": "Subjects",
    "incidents": "Incidents",
    "remediations": "Remediations",
    "approval": "Approval",
    "session": "Session limits",
}
WIDENS, NARROWS, NEUTRAL = "+", "-", "~"


@dataclasses.dataclass(frozen=True)
class Change:
    """One line of a diff: ``+`` widens the grant, ``-`` narrows it, ``~`` does neither."""

    section: str
    group: str
    """Heading the line sits under: a namespace (read), an action (remediations), or ``""``."""
    sign: str
    text: str


@dataclasses.dataclass(frozen=True)
class GrantDiff:
    """What changes for one AgentGrant (matched by name) between OLD and NEW."""

    name: str
    old: str | None
    """Label of the input holding the old grant; ``None``: there was none."""
    new: str | None
    added: list[rbac.Permission]
    removed: list[rbac.Permission]
    changes: list[Change]
    notes: list[str]

    @property
    def widens(self) -> bool:
        return any(c.sign == WIDENS for c in self.changes)

    @property
    def status(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed" if self.changes else "unchanged"

    @property
    def summary(self) -> str:
        if self.old is None:
            return "new grant"
        if self.new is None:
            return "grant removed"
        if self.widens:
            return "widens the grant"
        if any(c.sign == NARROWS for c in self.changes):
            return "narrows the grant"
        return "changes settings only" if self.changes else "no change in effective authority"


def diff_specs(old: grant.AgentGrantSpec | None, new: grant.AgentGrantSpec | None) -> list[Change]:
    """Every change in effective authority from ``old`` to ``new`` (``None``: no grant)."""
    changes = _read_changes(authority.permissions(old), authority.permissions(new))
    changes += _set_changes(
        "subjects",
        "",
        {authority.subject_label(s) for s in old.subjects} if old else set(),
        {authority.subject_label(s) for s in new.subjects} if new else set(),
    )
    changes += _set_changes(
        "incidents",
        "",
        {f"severity {s}" for s in old.incidents.severities} if old else set(),
        {f"severity {s}" for s in new.incidents.severities} if new else set(),
    )
    changes += _class_changes("incidents", "", _classes(old), _classes(new))
    changes += _alert_changes(old, new)
    changes += _remedy_changes(authority.remedies(old), authority.remedies(new))
    changes += _setting_changes(old, new)
    return changes


def _alert_changes(
    old: grant.AgentGrantSpec | None, new: grant.AgentGrantSpec | None
) -> list[Change]:
    """A required alert narrows (the alert, not the agent, decides the incident); dropping it
    or a matcher widens; other binding changes are neutral."""
    was = old.incidents.alertmanager if old else None
    now = new.incidents.alertmanager if new else None
    if was == now:
        return []
    if old is None or new is None:
        side = now if old is None else was
        assert side is not None
        return [Change("incidents", "", NEUTRAL, f"only {incidents.describe(side)}")]
    if was is None:
        assert now is not None
        return [Change("incidents", "", NARROWS, f"only {incidents.describe(now)}")]
    if now is None:
        text = "sessions no longer need a firing alert: the agent declares severity and class"
        return [Change("incidents", "", WIDENS, text)]
    changes = _set_changes(
        "incidents",
        "",
        {f"alert matcher {incidents.matcher_text(m)}" for m in was.matchers},
        {f"alert matcher {incidents.matcher_text(m)}" for m in now.matchers},
    )
    changes = [  # a matcher added narrows, one removed widens: the reverse of other sets
        dataclasses.replace(c, sign=NARROWS if c.sign == WIDENS else WIDENS) for c in changes
    ]
    rest_was = was.model_copy(update={"matchers": []})
    rest_now = now.model_copy(update={"matchers": []})
    if rest_was != rest_now:
        changes.append(Change("incidents", "", NEUTRAL, f"alerts: {incidents.describe(rest_now)}"))
    return changes


def _read_changes(
    before: frozenset[rbac.Permission], after: frozenset[rbac.Permission]
) -> list[Change]:
    changes = []
    namespaces = {p.namespace for p in before | after}
    for namespace in sorted(namespaces, key=lambda ns: (authority.is_symbolic(ns), ns)):
        old = {p for p in before if p.namespace == namespace}
        new = {p for p in after if p.namespace == namespace}
        if old == new:
            continue
        heading = namespace if authority.is_symbolic(namespace) else f"namespace {namespace}"
        heading += " (new)" if not old else " (no read access left)" if not new else ""
        for sign, perms in ((WIDENS, new - old), (NARROWS, old - new)):
            changes += [Change("read", heading, sign, _rule(rule)) for rule in rbac.compact(perms)]
    return changes


def _rule(rule: grant.PolicyRule) -> str:
    """``get, list pods, deployments.apps``: verbs, then resources as ``resource.group``."""
    kinds = [f"{r}.{g}" if g else r for g in rule.api_groups for r in rule.resources]
    names = f" named {', '.join(rule.resource_names)}" if rule.resource_names else ""
    return f"{', '.join(rule.verbs)} {', '.join(kinds)}{names}"


def _set_changes(section: str, group: str, before: set[str], after: set[str]) -> list[Change]:
    return [Change(section, group, WIDENS, item) for item in sorted(after - before)] + [
        Change(section, group, NARROWS, item) for item in sorted(before - after)
    ]


def _classes(spec: grant.AgentGrantSpec | None) -> frozenset[str] | None:
    """Allowed incident classes; ``None`` means any class, an empty set none (no grant)."""
    if spec is None:
        return frozenset()
    return frozenset(spec.incidents.classes) if spec.incidents.classes else None


def _class_changes(
    section: str, group: str, before: frozenset[str] | None, after: frozenset[str] | None
) -> list[Change]:
    if before == after:
        return []
    if before is None:
        listed = ", ".join(sorted(after or ())) or "none"
        return [Change(section, group, NARROWS, f"incident classes: any → only {listed}")]
    if after is None:
        was = f"{', '.join(sorted(before))} → " if before else ""
        return [Change(section, group, WIDENS, f"incident classes: {was}any")]
    return _set_changes(
        section, group, {f"class {c}" for c in before}, {f"class {c}" for c in after}
    )


def _remedy_changes(
    before: Mapping[grant.ActionType, authority.Remedy],
    after: Mapping[grant.ActionType, authority.Remedy],
) -> list[Change]:
    changes = []
    for action in sorted(set(before) | set(after)):
        old, new = before.get(action), after.get(action)
        if old == new:
            continue
        if new is None:
            assert old is not None
            text = (
                f"may no longer be requested (was: autonomy {old.autonomy} in {_remedy_where(old)})"
            )
            changes.append(Change("remediations", f"{action} (removed)", NARROWS, text))
            continue
        heading = f"{action} (new)" if old is None else str(action)
        lines = _new_remedy(new) if old is None else _changed_remedy(old, new)
        changes += [Change("remediations", heading, sign, text) for sign, text in lines]
    return changes


def _remedy_where(remedy: authority.Remedy) -> str:
    return authority.where(
        sorted(remedy.namespaces, key=lambda ns: (authority.is_symbolic(ns), ns))
    )


def _autonomy_note(remedy: authority.Remedy) -> str:
    if remedy.autonomy is grant.Autonomy.AUTO and not blast.is_reversible(remedy.action):
        return " (no effect: irreversible actions always wait for approval)"
    return ""


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _new_remedy(new: authority.Remedy) -> list[tuple[str, str]]:
    limits = [f"{key} {value}" for key, value in new.limits if value is not None]
    classes = "any" if new.classes is None else ", ".join(sorted(new.classes)) or "none"
    return [
        (WIDENS, f"autonomy {new.autonomy}{_autonomy_note(new)}"),
        (WIDENS, f"in {_remedy_where(new)}"),
        (WIDENS, f"limits: {', '.join(limits)}" if limits else "limits: none (any size)"),
        (WIDENS, "evidence required" if new.require_evidence else "no evidence required"),
        (WIDENS, f"incident severities: {', '.join(sorted(new.severities)) or 'none'}"),
        (WIDENS, f"incident classes: {classes}"),
    ]


def _changed_remedy(old: authority.Remedy, new: authority.Remedy) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    if old.autonomy is not new.autonomy:
        up = _AUTONOMY_RANK[new.autonomy] > _AUTONOMY_RANK[old.autonomy]
        note = _autonomy_note(new) or _autonomy_note(old)
        sign = NEUTRAL if note else WIDENS if up else NARROWS
        lines.append((sign, f"autonomy: {old.autonomy} → {new.autonomy}{note}"))
    lines += [(WIDENS, _namespace(ns)) for ns in sorted(new.namespaces - old.namespaces)]
    lines += [(NARROWS, _namespace(ns)) for ns in sorted(old.namespaces - new.namespaces)]
    for (key, was), (_, now) in zip(old.limits, new.limits, strict=True):
        if was != now:
            wider = now is None or (was is not None and now > was)
            lines.append((WIDENS if wider else NARROWS, f"{key}: {_limit(was)} → {_limit(now)}"))
    if old.require_evidence != new.require_evidence:
        evidence = "now required" if new.require_evidence else "no longer required"
        lines.append((NARROWS if new.require_evidence else WIDENS, f"evidence {evidence}"))
    lines += [(WIDENS, f"severity {s}") for s in sorted(new.severities - old.severities)]
    lines += [(NARROWS, f"severity {s}") for s in sorted(old.severities - new.severities)]
    lines += [(c.sign, c.text) for c in _class_changes("", "", old.classes, new.classes)]
    return lines


def _namespace(namespace: str) -> str:
    return namespace if authority.is_symbolic(namespace) else f"namespace {namespace}"


_Getter = Callable[[grant.AgentGrantSpec], int]
_SETTINGS: list[tuple[str, str, _Getter, int]] = [
    # section, field, value, +1 if a higher value widens, -1 if a lower one does, 0 neither
    (
        "approval",
        "requiredApprovals.reversible",
        lambda s: s.approval.required_approvals.reversible,
        -1,
    ),
    (
        "approval",
        "requiredApprovals.irreversible",
        lambda s: s.approval.required_approvals.irreversible,
        -1,
    ),
    ("approval", "timeoutSeconds", lambda s: s.approval.timeout_seconds, 0),
    ("session", "maxTtlSeconds", lambda s: s.session.max_ttl_seconds, 1),
    ("session", "maxConcurrentSessions", lambda s: s.session.max_concurrent_sessions, 1),
    ("session", "maxSubAgentDepth", lambda s: s.session.max_sub_agent_depth, 1),
    ("session", "maxDeniedRequests", lambda s: s.session.max_denied_requests, 1),
]


def _setting(field: str, value: int) -> str:
    return f"{value} ({render.duration(value)})" if field.endswith("Seconds") else str(value)


def _setting_changes(
    old: grant.AgentGrantSpec | None, new: grant.AgentGrantSpec | None
) -> list[Change]:
    changes = []
    for section, field, get, direction in _SETTINGS:
        if old is None or new is None:
            side, sign = (new, WIDENS) if old is None else (old, NARROWS)
            if side is not None:
                changes.append(Change(section, "", sign, f"{field}: {_setting(field, get(side))}"))
            continue
        was, now = get(old), get(new)
        if was != now:
            sign = NEUTRAL if not direction else WIDENS if (now - was) * direction > 0 else NARROWS
            text = f"{field}: {_setting(field, was)} → {_setting(field, now)}"
            changes.append(Change(section, "", sign, text))
    return changes


def diff_grants(name: str, old: checking.Checked | None, new: checking.Checked | None) -> GrantDiff:
    """The diff of one grant; ``old``/``new`` are ``None`` where it does not exist."""
    old_spec = old.model.spec if old and old.model else None
    new_spec = new.model.spec if new and new.model else None
    changes = diff_specs(old_spec, new_spec)
    before, after = authority.permissions(old_spec), authority.permissions(new_spec)
    result = GrantDiff(
        name=name,
        old=old.document.source.label if old else None,
        new=new.document.source.label if new else None,
        added=sorted(after - before),
        removed=sorted(before - after),
        changes=changes,
        notes=[],
    )
    notes = result.notes
    symbolic = {p.namespace for p in before | after} | {
        ns
        for r in [*authority.remedies(old_spec).values(), *authority.remedies(new_spec).values()]
        for ns in r.namespaces
    }
    if any(authority.is_symbolic(ns) and ns != authority.ANY_NODE for ns in symbolic):
        notes.append(
            "Selector scopes cannot be resolved offline: their namespaces are shown as "
            "'namespaces matching <selector>'. The operator resolves them from the cluster's "
            "namespace labels, so relabelling a namespace changes access without a grant change."
        )
    if result.status == "changed" and result.widens:
        notes.append(
            "Live sessions keep what they hold: what this change adds reaches only sessions "
            "opened after it is applied."
        )
    access = ("read", "subjects", "incidents")
    if result.status == "changed" and any(
        c.sign == NARROWS and c.section in access for c in changes
    ):
        notes.append(
            "Live sessions lose what this change removes as soon as it is applied; a session left "
            "with no permission, or whose subject or incident is no longer allowed, is revoked."
        )
    if result.status == "removed":
        notes.append("Deleting the grant revokes every live session under it.")
    for side, checked in (("OLD", old), ("NEW", new)):
        if checked is not None and checked.errors:
            first = checked.errors[0]
            notes.append(
                f"{side} has {render.plural(len(checked.errors), 'problem')} the operator refuses "
                f"(first: {first.field}: {first.message}); `agent-authority grant lint "
                f"{checked.document.source.label}` lists them."
            )
    return result


def run(args: argparse.Namespace) -> int:
    """``grant diff OLD NEW``: print what changes; 1 with ``--exit-code`` when it widens."""
    try:
        sources = [
            loading.read_source(args.old, allow_git=True),
            loading.read_source(args.new, allow_git=True),
        ]
        old, new = (checking.load_grants(source) for source in sources)
    except loading.InputError as e:
        return render.usage_error(str(e))
    if not old and not new:
        return render.usage_error(
            f"neither {sources[0].label} nor {sources[1].label} holds an {checking.KIND}: "
            "nothing to compare (allowed: grant YAML, /dev/null for no grant, REV:path)"
        )
    diffs = [diff_grants(name, old.get(name), new.get(name)) for name in sorted({*old, *new})]
    for diff, source_notes in ((d, [s.note for s in sources if s.note]) for d in diffs):
        diff.notes.extend(source_notes)
    output = render.Format(args.output)
    if output is render.Format.JSON:
        print(render.to_json(_diff_json(diffs)))
    elif output is render.Format.MARKDOWN:
        print("\n".join(_diff_markdown(d) for d in diffs), end="")
    else:
        print("\n".join(_diff_text(d) for d in diffs), end="")
    widens = any(d.widens for d in diffs)
    return render.EXIT_FINDINGS if args.exit_code and widens else render.EXIT_OK


def _grouped(diff: GrantDiff) -> list[tuple[str, str, list[tuple[str, list[Change]]]]]:
    """Sections (key, title, [(group, changes)]) in display order, empty ones left out."""
    sections = []
    for key, title in SECTIONS.items():
        groups: dict[str, list[Change]] = {}
        for change in diff.changes:
            if change.section == key:
                groups.setdefault(change.group, []).append(change)
        if groups:
            if key == "read":
                title += f" ({len(diff.added)} added, {len(diff.removed)} removed)"
            sections.append((key, title, list(groups.items())))
    return sections


def _diff_text(diff: GrantDiff) -> str:
    old, new = diff.old or NO_GRANT, diff.new or NO_GRANT
    lines = [f"{checking.KIND}/{diff.name}: {diff.summary} ({old} → {new})"]
    for _, title, groups in _grouped(diff):
        lines.append(title)
        for group, changes in groups:
            indent = "    " if group else "  "
            if group:
                lines.append(f"  {group}")
            lines += [f"{indent}{c.sign} {c.text}" for c in changes]
    if diff.notes:
        lines.append("Notes")
        lines += [render.bullet(note) for note in diff.notes]
    return "\n".join(lines) + "\n"


def _diff_markdown(diff: GrantDiff) -> str:
    old = render.md_code(diff.old or NO_GRANT)
    new = render.md_code(diff.new or NO_GRANT)
    lines = [
        f"### {checking.KIND} {render.md_code(diff.name)}: {diff.summary}",
        "",
        f"{old} → {new} (`+` widens the grant, `-` narrows it, `~` neither)",
        "",
    ]
    for _, title, groups in _grouped(diff):
        body = []
        for group, changes in groups:
            if group:
                body.append(f"@@ {group} @@")
            body += [f"{c.sign} {c.text}" for c in changes]
        fence = render.md_fence(body)
        lines += [f"**{title}**", "", f"{fence}diff", *body, fence, ""]
    if not diff.changes:
        lines += ["No change in effective authority.", ""]
    if diff.notes:
        lines += ["**Notes**", "", *(f"- {render.md_escape(note)}" for note in diff.notes)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _permission_json(p: rbac.Permission) -> dict[str, str | None]:
    """A permission for machines: a selector scope's has ``namespace`` null and its selector."""
    found: dict[str, str | None] = {"namespace": p.namespace}
    if authority.is_symbolic(p.namespace):
        selector = p.namespace.removeprefix(authority.SELECTED)
        found = {
            "namespace": None,
            "namespaceSelector": "" if selector == p.namespace else selector,
        }
    found |= {"apiGroup": p.api_group, "resource": p.resource, "verb": p.verb}
    if p.resource_name:
        found["resourceName"] = p.resource_name
    return found


def _diff_json(diffs: Sequence[GrantDiff]) -> dict[str, object]:
    return {
        "widens": any(d.widens for d in diffs),
        "grants": [
            {
                "name": d.name,
                "old": d.old,
                "new": d.new,
                "status": d.status,
                "summary": d.summary,
                "widens": d.widens,
                "readPermissions": {
                    "added": [_permission_json(p) for p in d.added],
                    "removed": [_permission_json(p) for p in d.removed],
                },
                "changes": [dataclasses.asdict(c) for c in d.changes],
                "notes": d.notes,
            }
            for d in diffs
        ],
    }
