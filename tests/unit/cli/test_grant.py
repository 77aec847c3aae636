"""``agent-authority grant lint|diff|explain``: the offline commands GitOps pipelines run."""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import pathlib
import stat
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from agent_authority.cli import grant

ROOT = pathlib.Path(__file__).resolve().parents[3]
Doc = dict[str, Any]
Edit = Callable[[Doc], None]

BASE: Doc = {
    "apiVersion": "agentauthority.io/v1alpha1",
    "kind": "AgentGrant",
    "metadata": {"name": "sre-bot"},
    "spec": {
        "subjects": [{"kind": "ServiceAccount", "namespace": "agents", "name": "sre-bot"}],
        "incidents": {"severities": ["SEV1", "SEV2"], "classes": ["latency"]},
        "read": [
            {
                "name": "shop-pods",
                "namespaces": ["shop"],
                "resources": ["pods", "services"],
                "verbs": ["get", "list"],
            }
        ],
        "remediations": [
            {
                "action": "scale-workload",
                "namespaces": ["shop"],
                "autonomy": "propose",
                "limits": {"maxReplicasDelta": 2},
            },
            {"action": "restart-workload", "namespaces": ["shop"], "autonomy": "propose"},
        ],
    },
}
"""A grant that lints clean: no error, no warning."""


def grant_doc(*edits: Edit) -> Doc:
    doc = copy.deepcopy(BASE)
    for edit in edits:
        edit(doc)
    return doc


def spec_set(path: str, value: Any) -> Edit:
    """An edit setting ``spec.<path>`` (dots and list indexes: ``read.0.verbs``)."""

    def edit(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc["spec"]
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def spec_del(path: str) -> Edit:
    def edit(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc["spec"]
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return edit


def add_scope(**scope: Any) -> Edit:
    def edit(doc: Doc) -> None:
        doc["spec"]["read"].append(scope)

    return edit


def write(tmp_path: pathlib.Path, *docs: Doc | None, name: str = "grant.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``agent-authority grant ...`` as main.py wires it; return (exit code, stdout, stderr)."""
    top = argparse.ArgumentParser(prog="agent-authority")
    sub = top.add_subparsers(dest="command", required=True)
    grant.add_parser(sub)
    args = top.parse_args(["grant", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def lint_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli(capsys, "lint", "-o", "json", *argv)
    return code, json.loads(out)


def findings(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["level"], f["field"]) for g in report["grants"] for f in g["findings"]}


# lint -------------------------------------------------------------------------------------------


def test_lint_clean_grant_is_ok(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, grant_doc())
    code, out, _ = cli(capsys, "lint", path)
    assert code == 0
    assert out == f"{path}: AgentGrant/sre-bot: ok\n1 AgentGrant: 0 errors, 0 warnings\n"


ERROR_CASES = [
    pytest.param(
        [spec_set("read.0.verbs", ["get", "delete"])],
        "spec.read[0].verbs[1]",
        "'delete' is refused: a read scope hands out read access only",
        id="write-verb-in-a-read-scope",
    ),
    pytest.param(
        [spec_set("read.0.resources", ["pods", "pods/exec"])],
        "spec.read[0].resources[1]",
        "'pods/exec' is refused: it runs commands inside containers",
        id="exec-subresource",
    ),
    pytest.param(
        [spec_set("read.0.resources", ["pods", "pods/eviction"])],
        "spec.read[0].resources[1]",
        "not known to be read-only",
        id="unknown-subresource",
    ),
    pytest.param(
        [spec_set("read.0.resources", ["*"])],
        "spec.read[0].resources[0]",
        "'*' is refused: wildcards would cover what nobody reviewed",
        id="wildcard-resource",
    ),
    pytest.param(
        [spec_set("read.0.apiGroups", ["*"])],
        "spec.read[0].apiGroups[0]",
        "wildcards",
        id="wildcard-api-group",
    ),
    pytest.param(
        [spec_del("read.0.verbs"), spec_set("read.0.verb", ["get"])],
        "spec.read[0].verb",
        "unknown field 'verb'; did you mean 'verbs'?",
        id="misspelt-field",
    ),
    pytest.param(
        [spec_del("incidents")],
        "spec.incidents",
        "required, but missing",
        id="missing-incidents",
    ),
    pytest.param(
        [spec_set("incidents.severities", ["SEV1", "SEV5"])],
        "spec.incidents.severities[1]",
        "'SEV5' is refused (allowed: 'SEV1', 'SEV2', 'SEV3' or 'SEV4')",
        id="unknown-severity",
    ),
    pytest.param(
        [spec_set("read.0.namespaces", ["Shop"])],
        "spec.read[0].namespaces[0]",
        "'Shop' is refused (allowed: a lowercase RFC 1123 label",
        id="namespace-not-a-dns-label",
    ),
    pytest.param(
        [spec_set("read.0.namespaceSelector", {"matchLabels": {"team": "shop"}})],
        "spec.read[0]",
        "must set exactly one of namespaces or namespaceSelector",
        id="namespaces-and-selector",
    ),
    pytest.param(
        [add_scope(name="shop-pods", namespaces=["shop"], resources=["events"])],
        "spec.read[1].name",
        "scope name 'shop-pods' is refused: it repeats spec.read[0].name",
        id="duplicate-scope-name",
    ),
    pytest.param(
        [spec_set("remediations.1.action", "scale-workload")],
        "spec.remediations[1].action",
        "remediation action 'scale-workload' is refused: it repeats",
        id="duplicate-action",
    ),
    pytest.param(
        [spec_set("remediations.0.action", "drain-node")],
        "spec.remediations[0].action",
        "'drain-node' is refused: the operator performs only the actions of its catalog",
        id="action-outside-the-catalog",
    ),
    pytest.param(
        [spec_set("subjects", [{"kind": "User", "name": "alice", "namespace": "agents"}])],
        "spec.subjects[0].namespace",
        "User 'alice' has a namespace, which only ServiceAccount subjects have",
        id="user-with-namespace",
    ),
    pytest.param(
        [lambda doc: doc.update(apiVersion="agentauthority.io/v1beta1")],
        "apiVersion",
        "is not served for AgentGrant (allowed: agentauthority.io/v1alpha1)",
        id="wrong-api-version",
    ),
    pytest.param(
        [lambda doc: doc.update(metadata={})],
        "metadata.name",
        "an AgentGrant needs a name",
        id="missing-name",
    ),
]


@pytest.mark.parametrize(("edits", "field", "message"), ERROR_CASES)
def test_lint_reports_each_error_at_its_field(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    edits: list[Edit],
    field: str,
    message: str,
) -> None:
    path = write(tmp_path, grant_doc(*edits))
    code, out, _ = cli(capsys, "lint", path)
    assert code == 1
    line = next(line for line in out.splitlines() if f": error: {field}: " in line)
    assert line.startswith(f"{path}:")
    assert message in line
    code, report = lint_json(capsys, path)
    assert code == 1
    assert ("error", field) in findings(report)
    assert not report["ok"]


WARNING_CASES = [
    # secrets: refused since the operator's read ceiling excludes them (tests/unit/policy/
    # test_ceiling.py), so no longer a warning.
    pytest.param(
        [spec_set("read.0.verbs", ["get", "list", "watch"])],
        "spec.read[0].verbs[2]",
        "a watch opened before the session is revoked keeps streaming",
        id="watch-verb",
    ),
    pytest.param(
        [spec_set("remediations.1.autonomy", "auto")],
        "spec.remediations[1].autonomy",
        "autonomy auto has no effect on restart-workload: it is irreversible, so every request "
        "waits for 2 distinct approvers",
        id="auto-on-irreversible-action",
    ),
    pytest.param(
        [spec_set("remediations.0.autonomy", "auto"), spec_set("remediations.0.limits", {})],
        "spec.remediations[0].limits",
        "autonomy auto without limits: every scale-workload request is applied without a human",
        id="auto-without-limits",
    ),
    pytest.param(
        [spec_set("session", {"maxDeniedRequests": 3})],
        "spec.session.maxDeniedRequests",
        "a session survives 3 denied requests before it is revoked",
        id="denied-requests-tolerated",
    ),
    pytest.param(
        [spec_set("remediations.0.namespaces", ["shop", "billing"])],
        "spec.remediations[0].namespaces[1]",
        "may act in namespace 'billing', which no read scope covers: the agent would change",
        id="remediation-outside-read-scopes",
    ),
    pytest.param(
        [add_scope(name="all", namespaceSelector={}, resources=["events"])],
        "spec.read[1].namespaceSelector",
        "an empty selector, which matches every namespace",
        id="selector-matching-everything",
    ),
    pytest.param(
        [spec_set("read.0.apiGroups", ["", "apps"])],
        "spec.read[0].apiGroups",
        "RBAC grants each of its resources in each of them",
        id="several-api-groups-in-one-scope",
    ),
    pytest.param(
        [lambda doc: doc["metadata"].update(namespace="agents")],
        "metadata.namespace",
        "AgentGrant is cluster-scoped",
        id="namespace-on-a-cluster-scoped-kind",
    ),
]


@pytest.mark.parametrize(("edits", "field", "message"), WARNING_CASES)
def test_lint_warns_about_risky_but_allowed_choices(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    edits: list[Edit],
    field: str,
    message: str,
) -> None:
    path = write(tmp_path, grant_doc(*edits))
    code, out, _ = cli(capsys, "lint", path)
    assert code == 0, out
    line = next(line for line in out.splitlines() if f": warning: {field}: " in line)
    assert message in line
    _, report = lint_json(capsys, path)
    assert findings(report) == {("warning", field)}
    code, _, _ = cli(capsys, "lint", "--strict", path)
    assert code == 1


def test_lint_warning_is_not_raised_when_a_selector_scope_may_cover_the_namespace(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    doc = grant_doc(
        spec_set("remediations.0.namespaces", ["billing"]),
        add_scope(
            name="team", namespaceSelector={"matchLabels": {"team": "shop"}}, resources=["pods"]
        ),
    )
    _, report = lint_json(capsys, write(tmp_path, doc))
    assert findings(report) == set()


def test_lint_points_at_the_line_of_the_offending_value(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    text = yaml.safe_dump(grant_doc(spec_set("read.0.verbs", ["get", "patch"])), sort_keys=False)
    path = tmp_path / "grant.yaml"
    path.write_text("# a comment\n" + text)
    expected = 1 + text.splitlines().index("    - patch") + 1
    code, out, _ = cli(capsys, "lint", str(path))
    assert code == 1
    assert out.startswith(f"{path}:{expected}: AgentGrant/sre-bot: error: spec.read[0].verbs[1]: ")


def test_lint_refuses_a_key_written_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    text = yaml.safe_dump(grant_doc(), sort_keys=False).replace(
        "    verbs:\n", "    verbs: [get]\n    verbs:\n"
    )
    path = tmp_path / "grant.yaml"
    path.write_text(text)
    code, report = lint_json(capsys, str(path))
    assert code == 1
    (dup,) = report["grants"][0]["findings"]
    assert dup["field"] == "spec.read[0].verbs"
    assert "key 'verbs' is written twice" in dup["message"]
    assert dup["line"] == text.splitlines().index("    verbs:") + 1


def test_lint_checks_every_grant_of_every_file_and_skips_other_kinds(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agents"}}
    bad = grant_doc(
        lambda d: d["metadata"].update(name="bad-bot"), spec_set("read.0.resources", ["*"])
    )
    first = write(tmp_path, namespace, grant_doc(), None, name="a.yaml")
    second = write(tmp_path, bad, name="b.yml")
    code, out, _ = cli(capsys, "lint", str(tmp_path))
    assert code == 1
    assert f"{first}: AgentGrant/sre-bot: ok" in out
    assert ": AgentGrant/bad-bot: error: spec.read[0].resources[0]: " in out
    assert out.index(first) < out.index(second)
    assert out.endswith("2 AgentGrants: 1 error, 0 warnings\n")
    _, report = lint_json(capsys, first)
    assert report["skipped"] == [{"file": first, "line": 1, "kind": "Namespace"}]


def test_lint_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(grant_doc())))
    code, out, _ = cli(capsys, "lint", "-")
    assert (code, out.splitlines()[0]) == (0, "<stdin>: AgentGrant/sre-bot: ok")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("kind: AgentGrant\nspec: [\n", "not valid YAML", id="broken-yaml"),
        pytest.param("- just\n- a list\n", "a YAML list is not a Kubernetes object", id="list"),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "no AgentGrant found",
            id="no-grant-at-all",
        ),
    ],
)
def test_lint_fails_on_input_that_holds_no_grant_to_check(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, text: str, expected: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    code, out, _ = cli(capsys, "lint", str(path))
    assert code == 1
    assert expected in out


def test_lint_missing_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, err = cli(capsys, "lint", str(tmp_path / "nope.yaml"))
    assert (code, out) == (2, "")
    assert "no such file" in err


def test_lint_json_is_complete(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, grant_doc(spec_set("read.0.verbs", ["get", "watch"])))
    code, report = lint_json(capsys, path)
    assert code == 0
    assert report == {
        "ok": True,
        "errors": 0,
        "warnings": 1,
        "grants": [
            {
                "file": path,
                "line": 1,
                "name": "sre-bot",
                "ok": True,
                "findings": [
                    {
                        "level": "warning",
                        "field": "spec.read[0].verbs[1]",
                        "message": report["grants"][0]["findings"][0]["message"],
                        "line": report["grants"][0]["findings"][0]["line"],
                    }
                ],
            }
        ],
        "fileFindings": [],
        "skipped": [],
    }


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "examples").glob("*grant*.yaml"))
    + sorted((ROOT / "examples").glob("grants-diff/*.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_example_grants_have_no_errors(
    capsys: pytest.CaptureFixture[str], path: pathlib.Path
) -> None:
    code, out, _ = cli(capsys, "lint", str(path))
    assert code == 0, out


# diff -------------------------------------------------------------------------------------------


def diff_json(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, old: Doc | None, new: Doc | None
) -> dict[str, Any]:
    old_path = write(tmp_path, old, name="old.yaml") if old else "/dev/null"
    new_path = write(tmp_path, new, name="new.yaml") if new else "/dev/null"
    code, out, err = cli(capsys, "diff", "-o", "json", old_path, new_path)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    (only,) = report["grants"]
    return only  # type: ignore[no-any-return]


def changes(diff: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["group"], c["sign"], c["text"]) for c in diff["changes"]}


DIFF_CASES = [
    pytest.param(
        None,
        grant_doc(),
        {
            ("namespace shop (new)", "+", "get, list pods, services"),
            ("", "+", "ServiceAccount agents/sre-bot"),
            ("", "+", "severity SEV1"),
            ("", "+", "class latency"),
            ("scale-workload (new)", "+", "autonomy propose"),
            ("scale-workload (new)", "+", "limits: maxReplicasDelta 2"),
            ("restart-workload (new)", "+", "limits: none (any size)"),
            ("", "+", "maxTtlSeconds: 3600 (1 h)"),
        },
        "new grant",
        id="new-grant",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("read.0.namespaces", ["shop", "payments"])),
        {("namespace payments (new)", "+", "get, list pods, services")},
        "widens the grant",
        id="added-namespace",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("read.0.verbs", ["get", "list", "watch"])),
        {("namespace shop", "+", "watch pods, services")},
        "widens the grant",
        id="added-verb-watch",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("read.0.resources", ["pods"])),
        {("namespace shop", "-", "get, list services")},
        "narrows the grant",
        id="removed-resource",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("read.0.namespaces", ["payments"])),
        {
            ("namespace payments (new)", "+", "get, list pods, services"),
            ("namespace shop (no read access left)", "-", "get, list pods, services"),
            # the remediation entries name shop themselves, so they do not move
        },
        "widens the grant",
        id="moved-to-another-namespace",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(
            add_scope(
                name="prod",
                namespaceSelector={
                    "matchLabels": {"env": "prod"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["web", "api"]}
                    ],
                },
                apiGroups=["apps"],
                resources=["deployments"],
            )
        ),
        {
            (
                "namespaces matching env=prod,tier in (web,api) (new)",
                "+",
                "get, list deployments.apps",
            )
        },
        "widens the grant",
        id="selector-scope",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("subjects", [{"kind": "Group", "name": "oncall-agents"}])),
        {("", "+", "Group oncall-agents"), ("", "-", "ServiceAccount agents/sre-bot")},
        "widens the grant",
        id="subject-change",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("remediations.0.autonomy", "auto")),
        {("scale-workload", "+", "autonomy: propose → auto")},
        "widens the grant",
        id="autonomy-propose-to-auto",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("remediations.1.autonomy", "auto")),
        {
            (
                "restart-workload",
                "~",
                "autonomy: propose → auto (no effect: irreversible actions always wait for "
                "approval)",
            )
        },
        "changes settings only",
        id="autonomy-auto-on-irreversible-changes-nothing",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("remediations.1.autonomy", "never")),
        {
            (
                "restart-workload (removed)",
                "-",
                "may no longer be requested (was: autonomy propose in namespace shop)",
            )
        },
        "narrows the grant",
        id="autonomy-never-removes-the-action",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(
            spec_set("remediations.0.limits", {"maxPodsAffected": 5}),
            spec_set("remediations.0.requireEvidence", False),
        ),
        {
            ("scale-workload", "+", "maxReplicasDelta: 2 → unlimited"),
            ("scale-workload", "-", "maxPodsAffected: unlimited → 5"),
            ("scale-workload", "+", "evidence no longer required"),
        },
        "widens the grant",
        id="limits-and-evidence",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("remediations.0.namespaces", [])),
        set(),
        "no change in effective authority",
        id="remediation-namespaces-default-to-read-namespaces",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(spec_set("incidents", {"severities": ["SEV1", "SEV2", "SEV3"]})),
        {
            ("", "+", "severity SEV3"),
            ("", "+", "incident classes: latency → any"),
            ("scale-workload", "+", "severity SEV3"),
            ("scale-workload", "+", "incident classes: latency → any"),
            ("restart-workload", "+", "severity SEV3"),
            ("restart-workload", "+", "incident classes: latency → any"),
        },
        "widens the grant",
        id="incidents-widened",
    ),
    pytest.param(
        grant_doc(),
        grant_doc(
            spec_set("approval", {"requiredApprovals": {"irreversible": 1}, "timeoutSeconds": 600}),
            spec_set("session", {"maxTtlSeconds": 7200, "maxSubAgentDepth": 0}),
        ),
        {
            ("", "+", "requiredApprovals.irreversible: 2 → 1"),
            ("", "~", "timeoutSeconds: 3600 (1 h) → 600 (10 min)"),
            ("", "+", "maxTtlSeconds: 3600 (1 h) → 7200 (2 h)"),
            ("", "-", "maxSubAgentDepth: 2 → 0"),
        },
        "widens the grant",
        id="approvals-and-session-limits",
    ),
    pytest.param(
        grant_doc(),
        None,
        {
            ("namespace shop (no read access left)", "-", "get, list pods, services"),
            ("", "-", "ServiceAccount agents/sre-bot"),
        },
        "grant removed",
        id="grant-removed",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected", "summary"), DIFF_CASES)
def test_diff_shows_what_a_change_adds_and_removes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    old: Doc | None,
    new: Doc | None,
    expected: set[tuple[str, str, str]],
    summary: str,
) -> None:
    diff = diff_json(capsys, tmp_path, old, new)
    assert diff["summary"] == summary
    if old is None or new is None:
        assert expected <= changes(diff)
    else:
        assert changes(diff) == expected
    assert diff["widens"] == any(sign == "+" for _, sign, _ in changes(diff))


def test_diff_lists_added_and_removed_permissions_for_machines(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    new = grant_doc(
        spec_set("read.0.resources", ["pods"]),
        add_scope(
            name="prod", namespaceSelector={"matchLabels": {"env": "prod"}}, resources=["events"]
        ),
    )
    diff = diff_json(capsys, tmp_path, grant_doc(), new)
    assert diff["readPermissions"] == {
        "added": [
            {
                "namespace": None,
                "namespaceSelector": "env=prod",
                "apiGroup": "",
                "resource": "events",
                "verb": verb,
            }
            for verb in ("get", "list")
        ],
        "removed": [
            {"namespace": "shop", "apiGroup": "", "resource": "services", "verb": verb}
            for verb in ("get", "list")
        ],
    }
    assert any("cannot be resolved offline" in note for note in diff["notes"])


def test_diff_text_groups_permissions_by_namespace(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    old = write(tmp_path, grant_doc(), name="old.yaml")
    new = write(
        tmp_path,
        grant_doc(
            spec_set("read.0.namespaces", ["shop", "payments"]),
            spec_set("read.0.verbs", ["get", "list", "watch"]),
            spec_set("remediations.0.autonomy", "auto"),
        ),
        name="new.yaml",
    )
    code, out, _ = cli(capsys, "diff", old, new)
    assert code == 0
    assert out.startswith(
        f"AgentGrant/sre-bot: widens the grant ({old} → {new})\n"
        "Read permissions (8 added, 0 removed)\n"
        "  namespace payments (new)\n"
        "    + get, list, watch pods, services\n"
        "  namespace shop\n"
        "    + watch pods, services\n"
        "Remediations\n"
        "  scale-workload\n"
        "    + autonomy: propose → auto\n"
        "Notes\n"
    )


@pytest.mark.parametrize(
    ("new", "flags", "expected"),
    [
        pytest.param(
            grant_doc(spec_set("read.0.verbs", ["watch"])), ["--exit-code"], 1, id="widening-fails"
        ),
        pytest.param(
            grant_doc(spec_set("read.0.verbs", ["get"])), ["--exit-code"], 0, id="narrowing-passes"
        ),
        pytest.param(grant_doc(), ["--exit-code"], 0, id="no-change-passes"),
        pytest.param(
            grant_doc(spec_set("session", {"maxDeniedRequests": 1})),
            ["--exit-code"],
            1,
            id="tolerance-fails",
        ),
        pytest.param(
            grant_doc(spec_set("read.0.verbs", ["watch"])), [], 0, id="without-flag-always-0"
        ),
    ],
)
def test_diff_exit_code_flags_widening(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    new: Doc,
    flags: list[str],
    expected: int,
) -> None:
    old = write(tmp_path, grant_doc(), name="old.yaml")
    code, _, _ = cli(capsys, "diff", *flags, old, write(tmp_path, new, name="new.yaml"))
    assert code == expected


def test_diff_markdown_is_a_pull_request_comment(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    old = write(tmp_path, grant_doc(), name="old.yaml")
    new = write(
        tmp_path, grant_doc(spec_set("read.0.verbs", ["get", "list", "watch"])), name="new.yaml"
    )
    code, out, _ = cli(capsys, "diff", "--output", "markdown", old, new)
    assert code == 0
    assert out.startswith("### AgentGrant `sre-bot`: widens the grant\n")
    assert (
        "**Read permissions (2 added, 0 removed)**\n\n"
        "```diff\n@@ namespace shop @@\n+ watch pods, services\n```\n"
    ) in out
    assert "**Notes**\n\n- Live sessions keep what they hold" in out


def test_diff_markdown_fence_outlasts_backticks_in_names(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    new = grant_doc(spec_set("subjects", [{"kind": "User", "name": "```\n# owned"}]))
    old = write(tmp_path, grant_doc(), name="old.yaml")
    code, out, _ = cli(capsys, "diff", "-o", "markdown", old, write(tmp_path, new, name="new.yaml"))
    assert code == 0
    assert "````diff\n+ User ```\n# owned\n- ServiceAccount agents/sre-bot\n````" in out


def test_diff_pairs_grants_by_name_across_multi_document_files(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    other = grant_doc(lambda d: d["metadata"].update(name="other-bot"))
    old = write(tmp_path, grant_doc(), other, name="old.yaml")
    new = write(tmp_path, other, name="new.yaml")
    code, out, _ = cli(capsys, "diff", "-o", "json", old, new)
    report = json.loads(out)
    assert [(g["name"], g["status"]) for g in report["grants"]] == [
        ("other-bot", "unchanged"),
        ("sre-bot", "removed"),
    ]
    assert (code, report["widens"]) == (0, False)


def test_diff_reads_stdin(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(grant_doc())))
    code, out, _ = cli(capsys, "diff", write(tmp_path, grant_doc()), "-")
    assert (code, out) == (
        0,
        f"AgentGrant/sre-bot: no change in effective authority ({tmp_path}/grant.yaml → <stdin>)\n",
    )


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        pytest.param(
            grant_doc(spec_set("read.0.verbs", ["delete"])),
            "spec.read[0].verbs[0]: 'delete' is refused",
            id="schema-invalid",
        ),
        pytest.param(None, "no such file", id="missing-file"),
    ],
)
def test_diff_refuses_what_it_cannot_compare(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, old: Doc | None, expected: str
) -> None:
    old_path = write(tmp_path, old, name="old.yaml") if old else str(tmp_path / "missing.yaml")
    code, out, err = cli(capsys, "diff", old_path, write(tmp_path, grant_doc(), name="new.yaml"))
    assert (code, out) == (2, "")
    assert expected in err


def test_diff_notes_problems_the_operator_would_refuse(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    diff = diff_json(
        capsys, tmp_path, grant_doc(), grant_doc(spec_set("read.0.resources", ["pods/exec"]))
    )
    assert ("namespace shop", "+", "get, list pods/exec") in changes(diff)
    assert any(note.startswith("NEW has 1 problem the operator refuses") for note in diff["notes"])


@pytest.fixture
def fake_git(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A ``git`` on PATH that answers ``git show origin/main:grants/sre-bot.yaml`` from a file."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "sre-bot.yaml").write_text(yaml.safe_dump(grant_doc()))
    script = tmp_path / "bin" / "git"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        f'  origin/main:grants/sre-bot.yaml) cat "{store}/sre-bot.yaml" ;;\n'
        "  origin/main:*) echo \"fatal: path '${2#*:}' does not exist in 'origin/main'\" >&2\n"
        "    exit 128 ;;\n"
        "  *) echo \"fatal: invalid object name '${2%%:*}'.\" >&2; exit 128 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return store


@pytest.mark.usefixtures("fake_git")
def test_diff_reads_a_git_revision(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    new = write(tmp_path, grant_doc(spec_set("read.0.verbs", ["get", "list", "watch"])))
    code, out, _ = cli(capsys, "diff", "--exit-code", "origin/main:grants/sre-bot.yaml", new)
    assert code == 1
    assert out.startswith(
        f"AgentGrant/sre-bot: widens the grant (origin/main:grants/sre-bot.yaml → {new})"
    )


@pytest.mark.usefixtures("fake_git")
def test_diff_reads_a_path_missing_at_the_revision_as_no_grant(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, _ = cli(
        capsys, "diff", "origin/main:grants/new-bot.yaml", write(tmp_path, grant_doc())
    )
    assert code == 0
    assert out.startswith("AgentGrant/sre-bot: new grant (/dev/null → ")
    assert "grants/new-bot.yaml does not exist at origin/main: read as no grant" in out


@pytest.mark.usefixtures("fake_git")
def test_diff_unknown_revision_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, _, err = cli(capsys, "diff", "nobranch:grants/sre-bot.yaml", write(tmp_path, grant_doc()))
    assert code == 2
    assert "git show failed: fatal: invalid object name 'nobranch'" in err


def test_diff_of_the_shipped_example_matches_the_docs(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = "examples/grants-diff/before.yaml", "examples/grants-diff/after.yaml"
    old = str(ROOT / before)
    new = str(ROOT / after)
    code, out, _ = cli(capsys, "diff", "--exit-code", old, new)
    assert code == 1
    docs = (ROOT / "docs" / "gitops.md").read_text()
    shown = out.replace(old, before).replace(new, after)
    assert shown.split("Notes\n")[0] in docs


# explain ----------------------------------------------------------------------------------------


def test_explain_says_what_the_grant_lets_an_agent_do(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    doc = grant_doc(
        spec_set("read.0.verbs", ["get", "list", "watch"]),
        add_scope(
            name="prod", namespaceSelector={"matchLabels": {"env": "prod"}}, resources=["events"]
        ),
        spec_set("remediations.0.autonomy", "auto"),
        spec_set("remediations.1.autonomy", "auto"),
        lambda d: d["spec"]["remediations"].append({"action": "delete-pod", "autonomy": "never"}),
        spec_set("session", {"maxDeniedRequests": 2, "maxSubAgentDepth": 0}),
    )
    code, out, _ = cli(capsys, "explain", write(tmp_path, doc))
    assert code == 0
    text = " ".join(out.split())  # undo line wrapping
    for expected in [
        "ServiceAccount agents/sre-bot may open incident sessions",
        "Incidents of severity SEV1 and SEV2, of class latency.",
        "Scope 'shop-pods': get, list, watch pods, services in namespace shop.",
        "Scope 'prod': get, list events in namespaces matching env=prod (the operator resolves",
        "No secrets are readable.",
        "Watch is granted in scope shop-pods: a watch opened before a session is revoked keeps",
        "scale-workload in namespace shop: applied without a human if it changes replicas by at "
        "most 2; otherwise it waits for 1 approver (reversible). Evidence required.",
        "restart-workload in namespace shop: every request waits for 2 distinct approvers: "
        "autonomy auto does not apply to an irreversible action (irreversible).",
        "delete-pod: never; a request is denied and counts as a deviation.",
        "a request not approved within 1 h expires.",
        "At most 10 at a time, each for at most 1 h; no sub-agent sessions; a session is revoked "
        "after 3 denied requests.",
    ]:
        assert expected in text


def test_explain_markdown(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    code, out, _ = cli(capsys, "explain", "-o", "markdown", write(tmp_path, grant_doc()))
    assert code == 0
    assert out.startswith("### AgentGrant sre-bot (")
    assert "**Remediations**\n\n- scale-workload in namespace shop: every request waits" in out


@pytest.mark.parametrize(
    ("doc", "code", "expected"),
    [
        pytest.param(
            grant_doc(spec_set("read.0.resources", ["pods/exec"])),
            1,
            "Refused by the operator\n"
            "  - spec.read[0].resources[0]: resource 'pods/exec' is refused",
            id="operator-refuses-it",
        ),
        pytest.param(
            grant_doc(spec_del("subjects")), 2, "spec.subjects: required", id="schema-refuses-it"
        ),
    ],
)
def test_explain_of_an_invalid_grant(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, doc: Doc, code: int, expected: str
) -> None:
    result, out, err = cli(capsys, "explain", write(tmp_path, doc))
    assert result == code
    assert expected in out + err


def test_offline_commands_import_no_kubernetes_client() -> None:
    """Pipelines run these without a cluster: importing them must not pull in a client."""
    code = (
        "import sys\n"
        "from agent_authority.cli import audit, grant\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'kopf'))\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
