"""One AgentGrant document checked as the apiserver and the operator would check it.

Owns :func:`check`: the header (kind, apiVersion, name), schema errors turned into findings that
say what is allowed, the operator's own refusals
(:func:`agent_authority.policy.rbac.validate_grant`) and the warnings of ``risks``; and
:func:`load_grants`, the grants of one input, which ``diff`` and ``explain`` need to be valid
before they say anything.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from agent_authority import models
from agent_authority.cli.grant import documents, loading, risks
from agent_authority.models import base, grant
from agent_authority.policy import rbac, suggestions

KIND = "AgentGrant"


@dataclasses.dataclass(frozen=True)
class Checked:
    """One AgentGrant document, checked."""

    document: documents.Document
    name: str
    model: grant.AgentGrant | None
    """The grant as the schema reads it; ``None`` when the schema refuses it."""
    findings: list[documents.Finding]

    @property
    def errors(self) -> list[documents.Finding]:
        return [f for f in self.findings if f.level is documents.Level.ERROR]

    @property
    def warnings(self) -> list[documents.Finding]:
        return [f for f in self.findings if f.level is documents.Level.WARNING]

    @property
    def label(self) -> str:
        return f"{KIND}/{self.name}"


def check(document: documents.Document) -> Checked | None:
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
        return Checked(
            document, unnamed, None, [documents.Finding(documents.Level.ERROR, "", message)]
        )
    if body.get("kind") not in (KIND, None):
        return None
    findings = documents.duplicate_keys(document.node) + _header_findings(body)
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    model: grant.AgentGrant | None = None
    try:
        model = grant.AgentGrant.model_validate({"spec": body["spec"]} if "spec" in body else {})
    except pydantic.ValidationError as e:
        findings += [_schema_finding(error) for error in e.errors()]
    if model is not None:
        findings += [
            documents.Finding(documents.Level.ERROR, p.field, p.message)
            for p in rbac.validate_grant(model.spec)
        ]
        findings += risks.warnings(model.spec)
    located = [
        dataclasses.replace(f, line=f.line or documents.line_of(document.node, f.field))
        for f in findings
    ]
    located.sort(key=lambda f: (f.line, f.level != documents.Level.ERROR))
    return Checked(document, name if isinstance(name, str) and name else unnamed, model, located)


def _header_findings(body: Mapping[str, object]) -> list[documents.Finding]:
    findings = []
    if body.get("kind") is None:
        findings.append(
            documents.Finding(
                documents.Level.ERROR,
                "kind",
                f"kind is missing (allowed: {KIND}; other kinds are skipped)",
            )
        )
    if body.get("apiVersion") != models.API_VERSION:
        findings.append(
            documents.Finding(
                documents.Level.ERROR,
                "apiVersion",
                f"apiVersion {_shown(body.get('apiVersion'))} is not served for {KIND} "
                f"(allowed: {models.API_VERSION})",
            )
        )
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not re.fullmatch(base.DNS_SUBDOMAIN, name) or len(name) > 253:
        findings.append(
            documents.Finding(
                documents.Level.ERROR,
                "metadata.name",
                f"name {_shown(name)} is refused: an AgentGrant needs a name, and approvers are "
                "authorized by it (allowed: a lowercase RFC 1123 subdomain, e.g. sre-bot)",
            )
        )
    if isinstance(metadata, dict) and metadata.get("namespace"):
        findings.append(
            documents.Finding(
                documents.Level.WARNING,
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


def _schema_finding(error: Mapping[str, Any]) -> documents.Finding:
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
    return documents.Finding(documents.Level.ERROR, documents.field_path(loc), message)


def _unknown_field(loc: Sequence[int | str]) -> str:
    name = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown field '{name}'"
    allowed = [info.alias or key for key, info in model.model_fields.items()]
    hint = suggestions.did_you_mean(name, allowed)
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


def load_grants(source: loading.Source) -> dict[str, Checked]:
    """The AgentGrants of one input by name; ``loading.InputError`` if one cannot be compared."""
    docs, problems = documents.parse(source)
    if problems:
        raise loading.InputError(
            f"{loading.location(source.label, problems[0].line)}: {problems[0].message}"
        )
    found: dict[str, Checked] = {}
    for document in docs:
        checked = check(document)
        if checked is None:
            continue
        if checked.model is None or checked.name.startswith("<"):
            first = checked.errors[0]
            field = f"{first.field}: " if first.field else ""
            more = len(checked.errors) - 1
            where = loading.location(source.label, first.line)
            raise loading.InputError(
                f"{where}: {checked.label} is not a valid {KIND}, so "
                f"there is nothing to compare: {field}{first.message}"
                + (f" (and {more} more)" if more else "")
                + f"; `agent-authority grant lint {source.label}` lists every problem"
            )
        if checked.name in found:
            raise loading.InputError(
                f"{loading.location(source.label, document.line)}: {checked.label} appears twice "
                f"(allowed: each grant once per input)"
            )
        found[checked.name] = checked
    return found
