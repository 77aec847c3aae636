"""``grant lint FILE|DIR|- ...``: every AgentGrant checked, findings printed as text or JSON.

Owns the command: which files, the exit code (``--strict``) and the output. The checks themselves
are ``checking``'s and ``risks``'.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agent_authority.cli import render
from agent_authority.cli.grant import checking, documents, loading


def run(args: argparse.Namespace) -> int:
    """``grant lint``: print each grant's findings; exit 1 on errors (or warnings if strict)."""
    try:
        sources = [loading.read_source(path) for path in loading.lint_paths(args.files)]
    except loading.InputError as e:
        return render.usage_error(str(e))
    checked: list[checking.Checked] = []
    file_findings: list[tuple[loading.Source, documents.Finding]] = []
    skipped: list[documents.Document] = []
    for source in sources:
        docs, problems = documents.parse(source)
        file_findings += [(source, f) for f in problems]
        for document in docs:
            result = checking.check(document)
            if result is not None:
                checked.append(result)
            elif document.body is not None:
                skipped.append(document)
    if not checked and not file_findings:
        names = render.human_list(s.label for s in sources)
        message = f"no {checking.KIND} found in {names}: nothing to lint"
        file_findings.append((sources[0], documents.Finding(documents.Level.ERROR, "", message)))
    errors = sum(len(c.errors) for c in checked) + len(file_findings)
    warned = sum(len(c.warnings) for c in checked)
    failed = errors > 0 or (args.strict and warned > 0)
    if args.output == render.Format.JSON:
        print(render.to_json(_lint_json(checked, file_findings, skipped, errors, warned, failed)))
    else:
        for source, finding in file_findings:
            where = loading.location(source.label, finding.line)
            print(f"{where}: {finding.level}: {finding.message}")
        for result in checked:
            print(_lint_text(result), end="")
        summary = f"{render.plural(len(checked), checking.KIND)}: "
        summary += f"{render.plural(errors, 'error')}, {render.plural(warned, 'warning')}"
        if args.strict and warned:
            summary += " (--strict: warnings fail)"
        print(summary)
    return render.EXIT_FINDINGS if failed else render.EXIT_OK


def _lint_text(result: checking.Checked) -> str:
    label = result.document.source.label
    if not result.findings:
        return f"{label}: {result.label}: ok\n"
    lines = []
    for f in result.findings:
        field = f"{f.field}: " if f.field else ""
        lines.append(
            f"{loading.location(label, f.line)}: {result.label}: {f.level}: {field}{f.message}\n"
        )
    return "".join(lines)


def _lint_json(
    checked: Sequence[checking.Checked],
    file_findings: Sequence[tuple[loading.Source, documents.Finding]],
    skipped: Sequence[documents.Document],
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
