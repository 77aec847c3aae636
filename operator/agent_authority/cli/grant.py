"""``agent-authority grant lint|diff|explain``: AgentGrant YAML checked, compared, explained.

What GitOps pipelines and reviewers run before a grant reaches a cluster. Nothing here talks to a
cluster or imports a Kubernetes client: the checks are the operator's own (the pydantic models,
:func:`agent_authority.policy.rbac.validate_grant`), run on files.

``lint FILE|DIR|- ...``
    Errors: what the apiserver or the operator would refuse (schema, wildcards, dangerous
    subresources, duplicate scope names or actions, duplicate YAML keys). Warnings: what is allowed
    but risky (secrets, ``watch``, ``auto`` that cannot apply or has no limits, tolerated denials,
    remediation targets no read scope covers, a selector that matches every namespace, several
    API groups in one scope, a namespace on this cluster-scoped kind).
    Exit 0 without errors (1 with ``--strict`` when there are warnings), 1 with errors.
``diff OLD NEW``
    What a change adds (``+``) or removes (``-``) in effective authority: read permissions per
    namespace, subjects, incidents, remediations, approvals, session limits. ``~`` marks a change
    that neither widens nor narrows. Exit 0; with ``--exit-code``, 1 when the change widens.
``explain FILE|-``
    What a grant lets an agent do, in plain English. Exit 1 when the operator would refuse the
    grant (it is explained all the same, with the problems at the end).

Inputs are files or ``-`` (stdin); ``diff`` also takes ``/dev/null`` (no grant) and ``REV:path``
(read with ``git show REV:path``; a path that does not exist at ``REV`` is read as no grant, so a
pull request that adds a grant diffs against nothing). Exit 2 when an input cannot be read or, for
``diff`` and ``explain``, is not a valid AgentGrant.

Selector scopes: the operator resolves a ``namespaceSelector`` against the cluster's namespace
labels. Offline that cannot be done, so its namespaces are named by the selector
(``namespaces matching env=prod``) and compared as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import json
import pathlib
import re
import subprocess
import sys
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic
import yaml

from agent_authority import models
from agent_authority.cli import render
from agent_authority.models import base, grant
from agent_authority.policy import approvals, blast, rbac

KIND = "AgentGrant"
NO_GRANT = "/dev/null"
SELECTED = "namespaces matching "
"""Prefix of the symbolic namespace of a selector scope (no namespace name has a space)."""
ANY_NODE = "any node (cluster-scoped)"
"""Where node actions act: they ignore target namespaces."""
_NO_PODS = frozenset(
    {grant.ActionType.CORDON_NODE, grant.ActionType.UNCORDON_NODE, grant.ActionType.SUSPEND_CRONJOB}
)
"""Actions whose blast radius is always 0 pods (see ``blast.blast_radius``)."""
_AUTONOMY_RANK = {grant.Autonomy.NEVER: 0, grant.Autonomy.PROPOSE: 1, grant.Autonomy.AUTO: 2}


def add_parser(sub: Any) -> None:
    """Register ``grant lint|diff|explain`` on the top-level subparsers."""
    group = sub.add_parser("grant", help="lint, diff and explain AgentGrant YAML offline")
    commands = group.add_subparsers(dest="grant_command", required=True, metavar="COMMAND")

    lint = commands.add_parser(
        "lint",
        help="check AgentGrants as the apiserver and the operator would, plus risky choices",
        description="Errors: what would be refused. Warnings: allowed but risky. "
        "Exit 0 without errors, 1 with errors (or warnings with --strict), 2 unreadable input.",
    )
    lint.add_argument("files", nargs="+", metavar="FILE", help="YAML file, directory, or -")
    lint.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    render.add_output_argument(lint, [render.Format.TEXT, render.Format.JSON])
    lint.set_defaults(func=run_lint)

    diff = commands.add_parser(
        "diff",
        help="what a grant change adds or removes in effective permissions",
        description="OLD and NEW: a file, -, /dev/null (no grant) or REV:path (git show). "
        "+ widens, - narrows, ~ neither. Exit 0; with --exit-code 1 when the change widens; "
        "2 when an input cannot be read or is not a valid AgentGrant.",
    )
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when the change widens")
    render.add_output_argument(
        diff, [render.Format.TEXT, render.Format.MARKDOWN, render.Format.JSON]
    )
    diff.set_defaults(func=run_diff)

    explain = commands.add_parser("explain", help="what a grant lets an agent do, in plain words")
    explain.add_argument("file", metavar="FILE", help="YAML file, or -")
    render.add_output_argument(explain, [render.Format.TEXT, render.Format.MARKDOWN])
    explain.set_defaults(func=run_explain)


# Reading ----------------------------------------------------------------------------------------


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


def _lint_paths(args: Sequence[str]) -> list[str]:
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


# Documents --------------------------------------------------------------------------------------


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

    source: Source
    index: int
    line: int
    node: yaml.Node
    body: object


def parse(source: Source) -> tuple[list[Document], list[Finding]]:
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


def _duplicate_keys(node: yaml.Node, path: tuple[int | str, ...] = ()) -> list[Finding]:
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
            findings += _duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            findings += _duplicate_keys(item, (*path, i))
    return findings


# Checking one document --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Checked:
    """One AgentGrant document, checked."""

    document: Document
    name: str
    model: grant.AgentGrant | None
    """The grant as the schema reads it; ``None`` when the schema refuses it."""
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    @property
    def label(self) -> str:
        return f"{KIND}/{self.name}"


def check(document: Document) -> Checked | None:
    """Check one document; ``None`` when it is not an AgentGrant (other kinds are skipped)."""
    body = document.body
    if body is None:
        return None
    unnamed = f"<document {document.index + 1}>"
    if not isinstance(body, dict):
        message = (
            f"a YAML {type(body).__name__} is not a Kubernetes object "
            "(allowed: a mapping with apiVersion, kind, metadata and spec)"
        )
        return Checked(document, unnamed, None, [Finding(Level.ERROR, "", message)])
    if body.get("kind") not in (KIND, None):
        return None
    findings = _duplicate_keys(document.node) + _header_findings(body)
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    model: grant.AgentGrant | None = None
    try:
        model = grant.AgentGrant.model_validate({"spec": body["spec"]} if "spec" in body else {})
    except pydantic.ValidationError as e:
        findings += [_schema_finding(error) for error in e.errors()]
    if model is not None:
        findings += [
            Finding(Level.ERROR, p.field, p.message) for p in rbac.validate_grant(model.spec)
        ]
        findings += warnings(model.spec)
    located = [
        dataclasses.replace(f, line=f.line or line_of(document.node, f.field)) for f in findings
    ]
    located.sort(key=lambda f: (f.line, f.level != Level.ERROR))
    return Checked(document, name if isinstance(name, str) and name else unnamed, model, located)


def _header_findings(body: Mapping[str, object]) -> list[Finding]:
    findings = []
    if body.get("kind") is None:
        findings.append(
            Finding(
                Level.ERROR, "kind", f"kind is missing (allowed: {KIND}; other kinds are skipped)"
            )
        )
    if body.get("apiVersion") != models.API_VERSION:
        findings.append(
            Finding(
                Level.ERROR,
                "apiVersion",
                f"apiVersion {_shown(body.get('apiVersion'))} is not served for {KIND} "
                f"(allowed: {models.API_VERSION})",
            )
        )
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not re.fullmatch(base.DNS_SUBDOMAIN, name) or len(name) > 253:
        findings.append(
            Finding(
                Level.ERROR,
                "metadata.name",
                f"name {_shown(name)} is refused: an AgentGrant needs a name, and approvers are "
                "authorized by it (allowed: a lowercase RFC 1123 subdomain, e.g. sre-bot)",
            )
        )
    if isinstance(metadata, dict) and metadata.get("namespace"):
        findings.append(
            Finding(
                Level.WARNING,
                "metadata.namespace",
                f"{KIND} is cluster-scoped, so namespace {metadata['namespace']!r} is ignored "
                "(allowed without warning: no namespace)",
            )
        )
    return findings


def _shown(value: object) -> str:
    return "(missing)" if value is None else f"'{value}'"


_PATTERN_HELP = {
    base.DNS_LABEL: "a lowercase RFC 1123 label: a-z, 0-9 and '-', starting and ending with a "
    "letter or digit, at most 63 characters",
    base.DNS_SUBDOMAIN: "a lowercase RFC 1123 subdomain (labels joined by '.')",
}
_WHY = {
    "verbs": "a read scope hands out read access only; changes are asked for as "
    "RemediationRequests",
    "action": "the operator performs only the actions of its catalog",
}


def _schema_finding(error: Mapping[str, Any]) -> Finding:
    """A pydantic error as a finding: field path, what was refused, why, and what is allowed."""
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    shown: str | None = None
    if isinstance(value, str | int | float | bool):
        shown = f"'{value}'" if isinstance(value, str) else json.dumps(value)
    ctx = error.get("ctx") or {}
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    if kind == "missing":
        message = "required, but missing"
    elif kind == "extra_forbidden":
        message = _unknown_field(loc)
    elif kind == "string_pattern_mismatch" and isinstance(value, str) and "*" in value:
        message = (
            f"{shown} is refused: wildcards would cover what nobody reviewed "
            "(allowed: each name written out)"
        )
    elif kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_HELP:
        message = f"{shown} is refused (allowed: {_PATTERN_HELP[ctx['pattern']]})"
    elif kind == "enum" and "expected" in ctx:
        why = f": {_WHY[field]}" if field in _WHY else ""
        message = f"{shown} is refused{why} (allowed: {ctx['expected']})"
    else:
        message = error["msg"] + (f" (got {shown})" if shown is not None else "")
    return Finding(Level.ERROR, field_path(loc), message)


def _unknown_field(loc: Sequence[int | str]) -> str:
    name = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown field '{name}'"
    allowed = [info.alias or key for key, info in model.model_fields.items()]
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown field '{name}'{hint} (allowed here: {', '.join(allowed)})"


def _model_at(loc: Sequence[int | str]) -> type[pydantic.BaseModel] | None:
    """The model a location inside an AgentGrant points at, following field types."""
    model: type[pydantic.BaseModel] = grant.AgentGrant
    for part in loc:
        if isinstance(part, int):
            continue
        info = next((f for k, f in model.model_fields.items() if (f.alias or k) == part), None)
        inner = _find_model(info.annotation) if info is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _find_model(annotation: object) -> type[pydantic.BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


# Warnings ---------------------------------------------------------------------------------------


def warnings(spec: grant.AgentGrantSpec) -> list[Finding]:
    """What a grant allows that deserves a second look; each one names how to avoid it."""
    found: list[Finding] = []

    def warn(field: str, message: str) -> None:
        found.append(Finding(Level.WARNING, field, message))

    for i, scope in enumerate(spec.read):
        where = _where(_scope_namespaces(scope))
        if scope.namespace_selector is not None and not _selector(scope.namespace_selector):
            warn(
                f"spec.read[{i}].namespaceSelector",
                f"scope '{scope.name}' has an empty selector, which matches every namespace, "
                "kube-system and namespaces created later included (allowed without warning: "
                "matchLabels or matchExpressions, or a list of namespaces)",
            )
        if len(set(scope.api_groups)) > 1:
            warn(
                f"spec.read[{i}].apiGroups",
                f"scope '{scope.name}' lists several API groups, and RBAC grants each of its "
                "resources in each of them, so it also grants combinations nobody wrote down "
                "(allowed without warning: one scope per API group, with that group's resources)",
            )
        for j, resource in enumerate(scope.resources):
            if resource.partition("/")[0] == "secrets":
                warn(
                    f"spec.read[{i}].resources[{j}]",
                    f"scope '{scope.name}' reads secrets in {where}: every credential stored "
                    "there becomes readable with the session token (allowed without warning: "
                    "leave secrets out; configmaps, events and logs rarely hold credentials)",
                )
        for j, verb in enumerate(scope.verbs):
            if verb is grant.ReadVerb.WATCH:
                warn(
                    f"spec.read[{i}].verbs[{j}]",
                    f"scope '{scope.name}' grants watch: a watch opened before the session is "
                    "revoked keeps streaming until it closes, so revocation does not cut it off "
                    "at once (allowed without warning: get, list)",
                )
    read_namespaces = _read_namespaces(spec)
    has_selector = any(scope.namespace_selector is not None for scope in spec.read)
    for i, entry in enumerate(spec.remediations):
        path = f"spec.remediations[{i}]"
        if entry.autonomy is grant.Autonomy.AUTO and not blast.is_reversible(entry.action):
            required = approvals.required_approvals(spec.approval, blast.RiskClass.IRREVERSIBLE)
            warn(
                f"{path}.autonomy",
                f"autonomy auto has no effect on {entry.action}: it is irreversible, so every "
                f"request waits for {_approvers(required)} anyway (allowed without warning: "
                "autonomy propose, which says what happens)",
            )
        elif (
            entry.autonomy is grant.Autonomy.AUTO
            and entry.action not in _NO_PODS
            and entry.limits.max_replicas_delta is None
            and entry.limits.max_pods_affected is None
        ):
            warn(
                f"{path}.limits",
                f"autonomy auto without limits: every {entry.action} request is applied without "
                "a human, whatever its size (allowed without warning: limits.maxReplicasDelta or "
                "limits.maxPodsAffected, beyond which a human approves)",
            )
        if entry.action in blast.NODE_ACTIONS or has_selector:
            continue  # node actions ignore namespaces; selector scopes resolve on the cluster
        for j, namespace in enumerate(entry.namespaces):
            if namespace not in read_namespaces:
                warn(
                    f"{path}.namespaces[{j}]",
                    f"{entry.action} may act in namespace '{namespace}', which no read scope "
                    "covers: the agent would change what it cannot investigate (allowed without "
                    f"warning: namespaces read scopes cover: {render.human_list(read_namespaces)})",
                )
    if spec.session.max_denied_requests > 0:
        tolerated = render.plural(spec.session.max_denied_requests, "denied request")
        warn(
            "spec.session.maxDeniedRequests",
            f"a session survives {tolerated} before it is revoked, and each one is an agent "
            "reaching outside its scope (allowed without warning: 0, the first denial revokes)",
        )
    return found


# Lint -------------------------------------------------------------------------------------------


def run_lint(args: argparse.Namespace) -> int:
    """``grant lint``: print each grant's findings; exit 1 on errors (or warnings if strict)."""
    try:
        sources = [read_source(path) for path in _lint_paths(args.files)]
    except InputError as e:
        return render.usage_error(str(e))
    checked: list[Checked] = []
    file_findings: list[tuple[Source, Finding]] = []
    skipped: list[Document] = []
    for source in sources:
        documents, problems = parse(source)
        file_findings += [(source, f) for f in problems]
        for document in documents:
            result = check(document)
            if result is not None:
                checked.append(result)
            elif document.body is not None:
                skipped.append(document)
    if not checked and not file_findings:
        names = render.human_list(s.label for s in sources)
        file_findings.append(
            (sources[0], Finding(Level.ERROR, "", f"no {KIND} found in {names}: nothing to lint"))
        )
    errors = sum(len(c.errors) for c in checked) + len(file_findings)
    warned = sum(len(c.warnings) for c in checked)
    failed = errors > 0 or (args.strict and warned > 0)
    if args.output == render.Format.JSON:
        print(render.to_json(_lint_json(checked, file_findings, skipped, errors, warned, failed)))
    else:
        for source, finding in file_findings:
            print(f"{_at(source.label, finding.line)}: {finding.level}: {finding.message}")
        for result in checked:
            print(_lint_text(result), end="")
        summary = f"{render.plural(len(checked), KIND)}: "
        summary += f"{render.plural(errors, 'error')}, {render.plural(warned, 'warning')}"
        if args.strict and warned:
            summary += " (--strict: warnings fail)"
        print(summary)
    return render.EXIT_FINDINGS if failed else render.EXIT_OK


def _at(label: str, line: int) -> str:
    return f"{label}:{line}" if line else label


def _lint_text(result: Checked) -> str:
    label = result.document.source.label
    if not result.findings:
        return f"{label}: {result.label}: ok\n"
    lines = []
    for f in result.findings:
        field = f"{f.field}: " if f.field else ""
        lines.append(f"{_at(label, f.line)}: {result.label}: {f.level}: {field}{f.message}\n")
    return "".join(lines)


def _lint_json(
    checked: Sequence[Checked],
    file_findings: Sequence[tuple[Source, Finding]],
    skipped: Sequence[Document],
    errors: int,
    warned: int,
    failed: bool,
) -> dict[str, object]:
    return {
        "ok": not failed,
        "errors": errors,
        "warnings": warned,
        "grants": [
            {
                "file": c.document.source.label,
                "line": c.document.line,
                "name": c.name,
                "ok": not c.errors,
                "findings": [f.to_json() for f in c.findings],
            }
            for c in checked
        ],
        "fileFindings": [{"file": s.label, **f.to_json()} for s, f in file_findings],
        "skipped": [
            {
                "file": d.source.label,
                "line": d.line,
                "kind": str(d.body.get("kind")) if isinstance(d.body, dict) else "",
            }
            for d in skipped
        ],
    }


# Effective authority ----------------------------------------------------------------------------


def _selector(selector: grant.LabelSelector) -> str:
    """A label selector as kubectl writes it: ``app=web,tier in (a,b),!legacy``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for req in selector.match_expressions or []:
        values = ",".join(req.values)
        parts.append(
            {
                "In": f"{req.key} in ({values})",
                "NotIn": f"{req.key} notin ({values})",
                "Exists": req.key,
                "DoesNotExist": f"!{req.key}",
            }.get(req.operator, f"{req.key} {req.operator} ({values})")
        )
    return ",".join(parts)


def _scope_namespaces(scope: grant.ReadScope) -> list[str]:
    """A scope's namespaces, a selector scope's as its one symbolic namespace."""
    if scope.namespace_selector is not None and scope.namespaces is None:
        text = _selector(scope.namespace_selector)
        return [SELECTED + text if text else "every namespace (empty namespaceSelector)"]
    return sorted(set(scope.namespaces or []))


def _is_symbolic(namespace: str) -> bool:
    return " " in namespace


def _read_namespaces(spec: grant.AgentGrantSpec) -> list[str]:
    found = {ns for scope in spec.read for ns in _scope_namespaces(scope)}
    return sorted(found, key=lambda ns: (_is_symbolic(ns), ns))


def _where(namespaces: Sequence[str]) -> str:
    """``namespace shop``, ``namespaces shop and web``, ``namespaces matching env=prod``."""
    named = [ns for ns in namespaces if not _is_symbolic(ns)]
    phrases = [f"{'namespace' if len(named) == 1 else 'namespaces'} {render.human_list(named)}"]
    phrases = (phrases if named else []) + [ns for ns in namespaces if _is_symbolic(ns)]
    return render.human_list(phrases, empty="no namespace")


def permissions(spec: grant.AgentGrantSpec | None) -> frozenset[rbac.Permission]:
    """The read permissions of a grant, selector scopes in their symbolic namespace."""
    if spec is None:
        return frozenset()
    resolved = {scope.name: _scope_namespaces(scope) for scope in spec.read}
    return rbac.expand(rbac.compile_rules(spec.read, resolved))


def _subject(subject: grant.Subject) -> str:
    if subject.kind is grant.SubjectKind.SERVICE_ACCOUNT:
        return f"ServiceAccount {subject.namespace}/{subject.name}"
    return f"{subject.kind} {subject.name}"


@dataclasses.dataclass(frozen=True)
class Remedy:
    """What one requestable action type amounts to, defaults and narrowing applied."""

    action: grant.ActionType
    autonomy: grant.Autonomy
    namespaces: frozenset[str]
    limits: tuple[tuple[str, int | None], ...]
    require_evidence: bool
    severities: frozenset[str]
    classes: frozenset[str] | None
    """``None``: any class."""


def remedies(spec: grant.AgentGrantSpec | None) -> dict[grant.ActionType, Remedy]:
    """The grant's requestable actions (autonomy ``never`` is not requestable), first entry each."""
    if spec is None:
        return {}
    found: dict[grant.ActionType, Remedy] = {}
    read_namespaces = _read_namespaces(spec)
    for entry in spec.remediations:
        if entry.autonomy is grant.Autonomy.NEVER or entry.action in found:
            continue
        node = entry.action in blast.NODE_ACTIONS
        severities = spec.incidents.severities if entry.severities is None else entry.severities
        classes = entry.classes if entry.classes is not None else spec.incidents.classes
        narrowed = [c for c in classes if not spec.incidents.classes or c in spec.incidents.classes]
        found[entry.action] = Remedy(
            action=entry.action,
            autonomy=entry.autonomy,
            namespaces=frozenset([ANY_NODE] if node else entry.namespaces or read_namespaces),
            limits=(
                ("maxReplicasDelta", entry.limits.max_replicas_delta),
                ("maxPodsAffected", entry.limits.max_pods_affected),
            ),
            require_evidence=entry.require_evidence,
            severities=frozenset(str(s) for s in severities if s in spec.incidents.severities),
            classes=frozenset(narrowed) if narrowed or entry.classes is not None else None,
        )
    return found


# Diff -------------------------------------------------------------------------------------------

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
    changes = _read_changes(permissions(old), permissions(new))
    changes += _set_changes(
        "subjects",
        "",
        {_subject(s) for s in old.subjects} if old else set(),
        {_subject(s) for s in new.subjects} if new else set(),
    )
    changes += _set_changes(
        "incidents",
        "",
        {f"severity {s}" for s in old.incidents.severities} if old else set(),
        {f"severity {s}" for s in new.incidents.severities} if new else set(),
    )
    changes += _class_changes("incidents", "", _classes(old), _classes(new))
    changes += _remedy_changes(remedies(old), remedies(new))
    changes += _setting_changes(old, new)
    return changes


def _read_changes(
    before: frozenset[rbac.Permission], after: frozenset[rbac.Permission]
) -> list[Change]:
    changes = []
    namespaces = {p.namespace for p in before | after}
    for namespace in sorted(namespaces, key=lambda ns: (_is_symbolic(ns), ns)):
        old = {p for p in before if p.namespace == namespace}
        new = {p for p in after if p.namespace == namespace}
        if old == new:
            continue
        heading = namespace if _is_symbolic(namespace) else f"namespace {namespace}"
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
    before: Mapping[grant.ActionType, Remedy], after: Mapping[grant.ActionType, Remedy]
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


def _remedy_where(remedy: Remedy) -> str:
    return _where(sorted(remedy.namespaces, key=lambda ns: (_is_symbolic(ns), ns)))


def _autonomy_note(remedy: Remedy) -> str:
    if remedy.autonomy is grant.Autonomy.AUTO and not blast.is_reversible(remedy.action):
        return " (no effect: irreversible actions always wait for approval)"
    return ""


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _new_remedy(new: Remedy) -> list[tuple[str, str]]:
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


def _changed_remedy(old: Remedy, new: Remedy) -> list[tuple[str, str]]:
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
    return namespace if _is_symbolic(namespace) else f"namespace {namespace}"


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


def diff_grants(name: str, old: Checked | None, new: Checked | None) -> GrantDiff:
    """The diff of one grant; ``old``/``new`` are ``None`` where it does not exist."""
    old_spec = old.model.spec if old and old.model else None
    new_spec = new.model.spec if new and new.model else None
    changes = diff_specs(old_spec, new_spec)
    before, after = permissions(old_spec), permissions(new_spec)
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
        for r in [*remedies(old_spec).values(), *remedies(new_spec).values()]
        for ns in r.namespaces
    }
    if any(_is_symbolic(ns) and ns != ANY_NODE for ns in symbolic):
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


def _load_grants(source: Source) -> dict[str, Checked]:
    """The AgentGrants of one diff input by name; ``InputError`` if any cannot be compared."""
    documents, problems = parse(source)
    if problems:
        raise InputError(f"{_at(source.label, problems[0].line)}: {problems[0].message}")
    found: dict[str, Checked] = {}
    for document in documents:
        checked = check(document)
        if checked is None:
            continue
        if checked.model is None or checked.name.startswith("<"):
            first = checked.errors[0]
            field = f"{first.field}: " if first.field else ""
            more = len(checked.errors) - 1
            raise InputError(
                f"{_at(source.label, first.line)}: {checked.label} is not a valid {KIND}, so "
                f"there is nothing to compare: {field}{first.message}"
                + (f" (and {more} more)" if more else "")
                + f"; `agent-authority grant lint {source.label}` lists every problem"
            )
        if checked.name in found:
            raise InputError(
                f"{_at(source.label, document.line)}: {checked.label} appears twice "
                f"(allowed: each grant once per input)"
            )
        found[checked.name] = checked
    return found


def run_diff(args: argparse.Namespace) -> int:
    """``grant diff OLD NEW``: print what changes; 1 with ``--exit-code`` when it widens."""
    try:
        sources = [read_source(args.old, allow_git=True), read_source(args.new, allow_git=True)]
        old, new = (_load_grants(source) for source in sources)
    except InputError as e:
        return render.usage_error(str(e))
    if not old and not new:
        return render.usage_error(
            f"neither {sources[0].label} nor {sources[1].label} holds an {KIND}: nothing to "
            "compare (allowed: grant YAML, /dev/null for no grant, REV:path)"
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
    lines = [
        f"{KIND}/{diff.name}: {diff.summary} ({diff.old or NO_GRANT} → {diff.new or NO_GRANT})"
    ]
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
        f"### {KIND} {render.md_code(diff.name)}: {diff.summary}",
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
    if _is_symbolic(p.namespace):
        selector = p.namespace.removeprefix(SELECTED)
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


# Explain ----------------------------------------------------------------------------------------


def _approvers(count: int) -> str:
    return "1 approver" if count == 1 else f"{count} distinct approvers"


def explain(name: str, spec: grant.AgentGrantSpec) -> list[tuple[str, list[str]]]:
    """What a grant lets an agent do, as titled sections of plain sentences."""
    return [
        ("Who", [_who(spec)]),
        ("Incidents", [_incidents(spec)]),
        ("Reads", _reads(spec)),
        ("Remediations", _remediations(spec)),
        ("Approvals", [_approvals(name, spec)]),
        ("Sessions", [_sessions(spec)]),
    ]


def _who(spec: grant.AgentGrantSpec) -> str:
    people = [
        f"members of Group {s.name}" if s.kind is grant.SubjectKind.GROUP else _subject(s)
        for s in spec.subjects
    ]
    return (
        f"{render.human_list(people)} may open incident sessions under this grant, each with a "
        "token of its own that dies with the session."
    )


def _incidents(spec: grant.AgentGrantSpec) -> str:
    severities = render.human_list([str(s) for s in spec.incidents.severities])
    classes = spec.incidents.classes
    which = f"of class {render.human_list(classes, 'or')}" if classes else "of any class"
    return f"Incidents of severity {severities}, {which}."


def _reads(spec: grant.AgentGrantSpec) -> list[str]:
    if not spec.read:
        return ["None: sessions get no read access; the agent can only ask for remediations."]
    sentences = []
    for scope in spec.read:
        groups = list(dict.fromkeys(group or "core" for group in scope.api_groups))
        noun = "API group" if len(groups) == 1 else "API groups"
        in_groups = "" if groups == ["core"] else f" ({noun} {render.human_list(groups)})"
        verbs = ", ".join(sorted({str(v) for v in scope.verbs}))
        rule = f"{verbs} {', '.join(scope.resources)}{in_groups}"
        resolved = (
            " (the operator resolves the selector from namespace labels when a session opens)"
            if scope.namespace_selector is not None
            else ""
        )
        sentences.append(
            f"Scope '{scope.name}': {rule} in {_where(_scope_namespaces(scope))}{resolved}."
        )
    secrets = [s.name for s in spec.read if any(r.startswith("secrets") for r in s.resources)]
    watch = [s.name for s in spec.read if grant.ReadVerb.WATCH in s.verbs]
    sentences.append(
        f"Secrets are readable in scope {render.human_list(secrets)}."
        if secrets
        else "No secrets are readable."
    )
    sentences.append(
        f"Watch is granted in scope {render.human_list(watch)}: a watch opened before a session "
        "is revoked keeps streaming until it closes."
        if watch
        else "No watch: every read stops the moment a session is revoked."
    )
    return sentences


def _limits(limits: grant.RemediationLimits, bound: str, conjunction: str) -> str:
    """``changes replicas by at most 2 and affects at most 20 pods`` (``bound``: ``at most``)."""
    parts = []
    if limits.max_replicas_delta is not None:
        parts.append(f"changes replicas by {bound} {limits.max_replicas_delta}")
    if limits.max_pods_affected is not None:
        parts.append(f"affects {bound} {render.plural(limits.max_pods_affected, 'pod')}")
    return render.human_list(parts, conjunction, empty="")


def _remediation(spec: grant.AgentGrantSpec, entry: grant.RemediationPolicy) -> str:
    action = entry.action
    if entry.autonomy is grant.Autonomy.NEVER:
        return f"{action}: never; a request is denied and counts as a deviation."
    if action in blast.NODE_ACTIONS:
        where = "on any node"
    else:
        where = f"in {_where(entry.namespaces or _read_namespaces(spec))}"
    risk = blast.risk_class(action)
    wait = f"waits for {_approvers(approvals.required_approvals(spec.approval, risk))}"
    within = _limits(entry.limits, "at most", "and")
    if entry.autonomy is grant.Autonomy.PROPOSE:
        beyond = _limits(entry.limits, "more than", "or")
        how = f"every request {wait}"
        how += f", and one that {beyond} is refused" if beyond else ""
    elif not blast.is_reversible(action):
        how = f"every request {wait}: autonomy auto does not apply to an irreversible action"
    elif action in _NO_PODS:
        how = "applied without a human (it affects no pods)"
    elif within:
        how = f"applied without a human if it {within}; otherwise it {wait}"
    else:
        how = "applied without a human, whatever its size (no limits)"
    narrowed = []
    if entry.severities is not None:
        narrowed.append(f"severity {render.human_list([str(s) for s in entry.severities], 'or')}")
    if entry.classes is not None:
        narrowed.append(f"class {render.human_list(entry.classes, 'or')}")
    only = f" Only for incidents of {' and '.join(narrowed)}." if narrowed else ""
    evidence = "Evidence required." if entry.require_evidence else "No evidence required."
    return f"{action} {where}: {how} ({risk}).{only} {evidence}"


def _remediations(spec: grant.AgentGrantSpec) -> list[str]:
    if not spec.remediations:
        return ["None: the agent may investigate only; any action it asks for is denied."]
    return [
        *(_remediation(spec, entry) for entry in spec.remediations),
        "The operator applies what is allowed; the agent never holds write access. Any other "
        "action is denied and counts as a deviation.",
    ]


def _approvals(name: str, spec: grant.AgentGrantSpec) -> str:
    counts = spec.approval.required_approvals
    return (
        f"Anyone RBAC allows the verb 'approve' on agentgrants.{models.GROUP} '{name}' may "
        "approve, never the requester, a session identity or the operator. Reversible actions "
        f"need {_approvers(counts.reversible)}, irreversible ones "
        f"{_approvers(counts.irreversible)}; a request not approved within "
        f"{render.duration(spec.approval.timeout_seconds)} expires."
    )


def _sessions(spec: grant.AgentGrantSpec) -> str:
    policy = spec.session
    depth = policy.max_sub_agent_depth
    nesting = (
        "no sub-agent sessions"
        if depth == 0
        else f"sub-agents nest up to {depth} deep, each no wider than its parent"
    )
    revoking = render.plural(policy.max_denied_requests + 1, "denied request")
    denied = (
        "the first denied request revokes a session"
        if policy.max_denied_requests == 0
        else f"a session is revoked after {revoking}"
    )
    return (
        f"At most {policy.max_concurrent_sessions} at a time, each for at most "
        f"{render.duration(policy.max_ttl_seconds)}; {nesting}; {denied}."
    )


def run_explain(args: argparse.Namespace) -> int:
    """``grant explain FILE``: describe each grant; 1 if one has problems the operator refuses."""
    try:
        grants = _load_grants(read_source(args.file))
    except InputError as e:
        return render.usage_error(str(e))
    if not grants:
        return render.usage_error(f"no {KIND} in {args.file} (allowed: a file with {KIND} YAML)")
    markdown = render.Format(args.output) is render.Format.MARKDOWN
    blocks = []
    refused = False
    for name, checked in grants.items():
        assert checked.model is not None  # _load_grants refuses grants the schema refuses
        sections = explain(name, checked.model.spec)
        problems = [f"{f.field}: {f.message}" for f in checked.errors]
        if problems:
            refused = True
            sections.append(("Refused by the operator", problems))
        title = f"{KIND} {name} ({checked.document.source.label})"
        blocks.append(
            render.sections_markdown(title, sections)
            if markdown
            else render.sections_text(title, sections)
        )
    print("\n".join(blocks), end="")
    return render.EXIT_FINDINGS if refused else render.EXIT_OK
