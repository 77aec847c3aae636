"""The GitHub Action, its scripts and the pre-commit hooks do what docs/gitops.md says.

The scripts and hook entries run for real (bash, git, agent-authority) in a throw-away git
repository holding the example grants before and after a widening change.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BEFORE = ROOT / "examples" / "grants-diff" / "before.yaml"
AFTER = ROOT / "examples" / "grants-diff" / "after.yaml"


def _env(**extra: str) -> dict[str, str]:
    path = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    git = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    return {**os.environ, "PATH": path, **git, **extra}


def _git(repo: pathlib.Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=_env(), check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: pathlib.Path) -> pathlib.Path:
    """A repository whose branch `change` widens grants/checkout.yaml, plus a non-grant file."""
    (tmp_path / "grants").mkdir()
    shutil.copy(BEFORE, tmp_path / "grants" / "checkout.yaml")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "values.yaml").write_text("replicas: 3\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "before")
    _git(tmp_path, "checkout", "-q", "-b", "change")
    shutil.copy(AFTER, tmp_path / "grants" / "checkout.yaml")
    _git(tmp_path, "commit", "-q", "-am", "after")
    return tmp_path


def _run(argv: list[str], repo: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=repo, env=_env(**env), capture_output=True, text=True, timeout=120, check=False
    )


def test_no_doc_installs_the_unrelated_package_of_the_same_name() -> None:
    texts = [p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]]
    assert not any("pip install agent-authority" in t for t in texts)


def test_the_action_installs_from_its_own_repository_and_runs_the_scripts() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    runs = [step.get("run", "") for step in action["runs"]["steps"]]
    assert any("pip install" in r and '"$ACTION_PATH"' in r for r in runs)
    for script in ("grant-lint", "grant-diff"):
        assert any(f"hack/ci/{script}" in r for r in runs)
        assert os.access(ROOT / "hack" / "ci" / script, os.X_OK)
    assert "widened" in action["outputs"]


def test_the_example_workflow_uses_the_action() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "grant-review.yml").read_text())
    steps = workflow["jobs"]["review"]["steps"]
    assert any(step.get("uses") == "./" for step in steps)
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def test_grant_diff_script_reports_a_widening_change(repo: pathlib.Path) -> None:
    output = repo / "github-output"
    done = _run(
        [str(ROOT / "hack" / "ci" / "grant-diff")],
        repo,
        BASE="main",
        GITHUB_OUTPUT=str(output),
    )
    assert done.returncode == 0, done.stderr
    assert "widened=1" in done.stdout
    assert output.read_text() == "widened=1\n"
    comment = (repo / "grant-diff.md").read_text()
    assert "checkout-bot" in comment
    assert "widens" in comment


def test_grant_diff_script_with_nothing_changed(repo: pathlib.Path) -> None:
    done = _run([str(ROOT / "hack" / "ci" / "grant-diff")], repo, BASE="change")
    assert done.returncode == 0, done.stderr
    assert "widened=0" in done.stdout
    assert "No AgentGrant changed" in (repo / "grant-diff.md").read_text()


@pytest.mark.parametrize(
    ("strict", "code"),
    [pytest.param("false", 0, id="warnings-pass"), pytest.param("true", 1, id="strict-fails")],
)
def test_grant_lint_script(repo: pathlib.Path, strict: str, code: int) -> None:
    done = _run([str(ROOT / "hack" / "ci" / "grant-lint")], repo, STRICT=strict)
    assert done.returncode == code, done.stdout + done.stderr
    assert "AgentGrant/checkout-bot" in done.stdout


def _hook(hook_id: str) -> dict[str, object]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    found: dict[str, object] = next(h for h in hooks if h["id"] == hook_id)
    assert found["language"] == "python"  # pre-commit installs this repository, not a name
    return found


def _staged(repo: pathlib.Path) -> None:
    """The widening change staged on top of `main`, as pre-commit sees a commit."""
    _git(repo, "checkout", "-q", "main")
    shutil.copy(AFTER, repo / "grants" / "checkout.yaml")
    _git(repo, "add", ".")


@pytest.mark.parametrize(
    ("hook_id", "code", "said"),
    [
        pytest.param("agent-authority-grant-lint", 0, "AgentGrant/checkout-bot", id="lint"),
        pytest.param("agent-authority-grant-lint-strict", 1, "warning", id="lint-strict"),
        pytest.param("agent-authority-grant-diff", 0, "widens the grant", id="diff"),
        pytest.param("agent-authority-grant-no-widening", 1, "widens the grant", id="no-widening"),
    ],
)
def test_pre_commit_hooks(repo: pathlib.Path, hook_id: str, code: int, said: str) -> None:
    _staged(repo)
    hook = _hook(hook_id)
    files = ["grants/checkout.yaml", "config/values.yaml"]  # pre-commit passes every staged yaml
    argv = [*shlex.split(str(hook["entry"])), *files]
    if "lint" in hook_id:
        argv = [*shlex.split(str(hook["entry"])), "grants/checkout.yaml"]
    done = _run(argv, repo)
    assert done.returncode == code, done.stdout + done.stderr
    assert said in done.stdout
