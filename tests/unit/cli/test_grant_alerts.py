"""``grant lint|diff|explain`` on alert-bound grants (``spec.incidents.alertmanager``)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from tests.unit.cli.test_grant import changes, cli, diff_json, findings, grant_doc, lint_json, write

ALERTS: dict[str, Any] = {
    "url": "https://alertmanager.monitoring.svc:9093",
    "matchers": [{"name": "team", "value": "shop"}],
}


def bound(**binding: Any) -> dict[str, Any]:
    doc = grant_doc()
    doc["spec"]["incidents"]["alertmanager"] = {**ALERTS, **binding}
    return doc


def test_explain_says_only_firing_alerts_open_sessions(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, out, _ = cli(capsys, "explain", write(tmp_path, bound()))
    assert code == 0
    text = " ".join(out.split())
    assert (
        "only for firing alerts in Alertmanager https://alertmanager.monitoring.svc:9093 "
        "matching team=\"shop\"; severity from label 'severity', class from label 'class'"
    ) in text


def test_a_clean_alert_bound_grant_lints_clean(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    code, report = lint_json(capsys, write(tmp_path, bound()))
    assert code == 0
    assert findings(report) == set()


@pytest.mark.parametrize(
    ("binding", "field"),
    [
        pytest.param(
            {"url": "http://alertmanager:9093"},
            "spec.incidents.alertmanager.url",
            id="plain-http-off-host",
        ),
        pytest.param({"matchers": []}, "spec.incidents.alertmanager.matchers", id="no-matchers"),
    ],
)
def test_lint_warns_about_thin_trust_in_alertmanager(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, binding: dict[str, Any], field: str
) -> None:
    code, report = lint_json(capsys, write(tmp_path, bound(**binding)))
    assert code == 0
    assert findings(report) == {("warning", field)}


@pytest.mark.parametrize(
    ("binding", "field"),
    [
        pytest.param({"url": "ftp://x"}, "spec.incidents.alertmanager.url", id="not-http"),
        pytest.param(
            {"matchers": [{"name": "team", "value": "(", "matchType": "=~"}]},
            "spec.incidents.alertmanager.matchers[0]",
            id="broken-regex",
        ),
        pytest.param(
            {"severityValues": {"critical": "P1"}},
            "spec.incidents.alertmanager.severityValues.critical",
            id="unknown-severity",
        ),
    ],
)
def test_lint_refuses_a_broken_binding_at_its_field(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, binding: dict[str, Any], field: str
) -> None:
    code, report = lint_json(capsys, write(tmp_path, bound(**binding)))
    assert code == 1
    assert any(level == "error" and f.startswith(field) for level, f in findings(report)), report


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            grant_doc(),
            bound(),
            {
                (
                    "",
                    "-",
                    "only firing alerts in Alertmanager https://alertmanager.monitoring.svc:9093 "
                    "matching team=\"shop\"; severity from label 'severity', class from label "
                    "'class'",
                )
            },
            id="requiring-an-alert-narrows",
        ),
        pytest.param(
            bound(),
            grant_doc(),
            {
                (
                    "",
                    "+",
                    "sessions no longer need a firing alert: the agent declares severity and class",
                )
            },
            id="dropping-the-alert-widens",
        ),
        pytest.param(
            bound(),
            bound(matchers=[]),
            {("", "+", 'alert matcher team="shop"')},
            id="dropping-a-matcher-widens",
        ),
        pytest.param(
            bound(matchers=[]),
            bound(),
            {("", "-", 'alert matcher team="shop"')},
            id="adding-a-matcher-narrows",
        ),
    ],
)
def test_diff_signs_alert_binding_changes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
    old: dict[str, Any],
    new: dict[str, Any],
    expected: set[tuple[str, str, str]],
) -> None:
    assert changes(diff_json(capsys, tmp_path, old, new)) == expected
