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

Modules, each a noun or gerund for what it owns, lower ones first (none imports a higher one):
``loading`` (inputs as text), ``documents`` (YAML documents, field paths, lines), ``authority``
(what a grant amounts to, and the phrases for it), ``risks`` (warnings), ``checking`` (one
document checked), then one module per command: ``lint``, ``diff``, ``explain``. This package
exposes :func:`add_parser` only.
"""

from __future__ import annotations

from typing import Any

from agent_authority.cli import help_text, render
from agent_authority.cli.grant import diff, explain, lint

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Register ``grant lint|diff|explain`` on the top-level subparsers."""
    group = sub.add_parser(
        "grant",
        help="lint, diff and explain AgentGrant YAML offline",
        **help_text.examples(
            """
            agent-authority grant lint examples/
            agent-authority grant diff origin/main:grants/sre-bot.yaml grants/sre-bot.yaml
            agent-authority grant explain examples/agentgrant-sre-bot.yaml
            """
        ),
    )
    commands = group.add_subparsers(dest="grant_command", required=True, metavar="COMMAND")

    lint_parser = commands.add_parser(
        "lint",
        help="check AgentGrants as the apiserver and the operator would, plus risky choices",
        **help_text.examples(
            """
            agent-authority grant lint examples/
            agent-authority grant lint --strict -o json grants/*.yaml
            """,
            "Errors: what would be refused. Warnings: allowed but risky. Exit 0 without "
            "errors, 1 with errors (or warnings with --strict), 2 unreadable input.",
        ),
    )
    lint_parser.add_argument("files", nargs="+", metavar="FILE", help="YAML file, directory, or -")
    lint_parser.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    render.add_output_argument(lint_parser, [render.Format.TEXT, render.Format.JSON])
    lint_parser.set_defaults(func=lint.run)

    diff_parser = commands.add_parser(
        "diff",
        help="what a grant change adds or removes in effective permissions",
        **help_text.examples(
            """
            agent-authority grant diff examples/grants-diff/{before,after}.yaml
            agent-authority grant diff --exit-code -o markdown origin/main:grant.yaml grant.yaml
            """,
            "OLD and NEW: a file, -, /dev/null (no grant) or REV:path (git show). "
            "+ widens, - narrows, ~ neither. Exit 0; with --exit-code 1 when the change widens; "
            "2 when an input cannot be read or is not a valid AgentGrant.",
        ),
    )
    diff_parser.add_argument("old", metavar="OLD")
    diff_parser.add_argument("new", metavar="NEW")
    diff_parser.add_argument(
        "--exit-code", action="store_true", help="exit 1 when the change widens"
    )
    render.add_output_argument(
        diff_parser, [render.Format.TEXT, render.Format.MARKDOWN, render.Format.JSON]
    )
    diff_parser.set_defaults(func=diff.run)

    explain_parser = commands.add_parser(
        "explain",
        help="what a grant lets an agent do, in plain words",
        **help_text.examples("agent-authority grant explain examples/agentgrant-sre-bot.yaml"),
    )
    explain_parser.add_argument("file", metavar="FILE", help="YAML file, or -")
    render.add_output_argument(explain_parser, [render.Format.TEXT, render.Format.MARKDOWN])
    explain_parser.set_defaults(func=explain.run)
