"""The README's five-minute tour, run as written against the real control plane and operator.

The tour's shell block is read from README.md and each command runs in its own ``bash`` (from a
folder where ``examples/`` is the repository's) after sourcing an ``env.sh`` written exactly as
``hack/dev`` writes it, for a ``dev``-like setup made with the same functions ``dev`` uses: the
demo objects, the agent's and the approvers' RBAC, the agent and approver kubeconfigs. The only
change to the text is the path of that ``env.sh``. Every command must exit 0, except the one the
tour marks as Forbidden; some outputs are checked, re-running a read-only command for a few
seconds where a person pasting line by line would also have waited.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from agent_authority.cli import dev
from agent_authority.kube import clients
from agent_authority.localcluster import cluster
from agent_authority.models import GROUP, VERSION
from tests.e2e.operator_process import OperatorProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV_SH = "~/.cache/agent-authority/run/dev/env.sh"

# (a piece of the command, what its output must contain, seconds a person would have waited)
EXPECTED = [
    ("kubectl get agentgrants", "sre-bot", 10),
    ("grant explain", "sre-bot", 0),
    ("session open", "", 0),
    ("get deployments", "checkout", 0),
    ("requests -A --all-phases", "inc-4711-scale-checkout", 0),
    ("show inc-4711-scale-checkout", "spec.replicas: 3 -> 4", 15),
    ("kubectl agent requests", "0/2", 10),
    ('--reason "pool exhausted"', "AwaitingApproval", 0),
    ('--reason "agreed"', "Succeeded", 0),
    ("rollback inc-4711-scale-checkout", "Succeeded", 0),
    ("session list", "Revoked (Deviation)", 20),
]
FORBIDDEN = "get secrets"


def tour_commands(readme: str) -> list[str]:
    """The commands of the tour's shell block, continuation lines joined."""
    section = readme.split("## A five-minute tour", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the tour has no ```sh block"
    commands: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        commands.append(pending + line)
        pending = ""
    return commands


def test_the_tour_is_parsed_as_the_commands_a_person_pastes() -> None:
    commands = tour_commands((ROOT / "README.md").read_text())
    assert commands[0].startswith(f"source {ENV_SH}")
    assert any("--write-kubeconfig session.kubeconfig" in c for c in commands)
    assert not any("…" in c or "../shared" in c for c in commands)


@pytest.fixture
def dev_like(
    local_cluster: cluster.LocalCluster, operator: OperatorProcess, tmp_path: pathlib.Path
) -> Iterator[pathlib.Path]:
    """What ``hack/dev`` sets up on top of the control plane and operator, and its env.sh."""
    admin = clients.api_client(str(local_cluster.kubeconfig))
    dev.install_demo(local_cluster)
    agent = dev._agent_kubeconfig(local_cluster)
    approvers = dev.approver_kubeconfigs(local_cluster)
    env = tmp_path / "env.sh"
    lines = dev.env_lines(
        local_cluster.kubeconfig, agent, approvers, pathlib.Path(sys.executable).parent
    )
    env.write_text("\n".join(lines) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    try:
        yield env
    finally:
        custom = client.CustomObjectsApi(admin)
        for plural in ("remediationrequests", "incidentsessions"):
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, "agents", plural)[
                "items"
            ]:
                custom.delete_namespaced_custom_object(
                    GROUP, VERSION, "agents", plural, item["metadata"]["name"]
                )
        custom.delete_cluster_custom_object(GROUP, VERSION, "agentgrants", "sre-bot")


def _run(command: str, env_sh: pathlib.Path, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        ["bash", "-c", f"source {env_sh}\n{command}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ,
    )


def test_every_command_of_the_readme_tour_works_as_pasted(dev_like: pathlib.Path) -> None:
    commands = tour_commands((ROOT / "README.md").read_text())
    work = dev_like.parent / "work"
    seen: list[str] = []
    for raw in commands:
        command = raw.replace(ENV_SH, str(dev_like), 1)
        expected = next(((w, t) for piece, w, t in EXPECTED if piece in command), ("", 0))
        want, patience = expected
        deadline = time.monotonic() + patience
        while True:
            done = _run(command, dev_like, work)
            output = done.stdout + done.stderr
            if FORBIDDEN in command:
                ok = done.returncode != 0 and "Forbidden" in output
            else:
                ok = done.returncode == 0 and want in output
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert ok, (
            f"README tour command failed: {raw}\nexit {done.returncode}\n{output}\n"
            f"(commands before it: {seen})"
        )
        seen.append(raw.split("#")[0].strip()[:60])
    checked = {piece for piece, _, _ in EXPECTED if any(piece in c for c in commands)}
    assert checked == {piece for piece, _, _ in EXPECTED}, "the tour lost a checked step"

    # Beyond the tour: the restart's undo (rollback-deployment) is not in the grant, so `show`
    # does not offer it, and a rollback asked for anyway is Denied and exits 1.
    alice = '-n agents --kubeconfig "$ALICE_KUBECONFIG"'
    shown = _run(f"agent-authority show inc-4711-restart-checkout {alice}", dev_like, work)
    assert shown.returncode == 0, shown.stderr
    assert "What changed:" in shown.stdout
    assert (
        "not offered: grant 'sre-bot' has no remediation entry for rollback-deployment"
        in shown.stdout
    ), shown.stdout
    rolled = _run(
        f"agent-authority rollback inc-4711-restart-checkout --reason try {alice}", dev_like, work
    )
    assert rolled.returncode == 1, rolled.stdout + rolled.stderr
    assert "rollback of agents/inc-4711-restart-checkout" in rolled.stderr
    assert "is Denied" in rolled.stderr


def test_an_admission_refusal_is_not_logged_as_an_error(
    dev_like: pathlib.Path, operator: OperatorProcess
) -> None:
    offset = operator.log_path.stat().st_size
    done = _run(
        "agent-authority session open --grant sre-bot --incident-id INC-9 --severity SEV4 "
        '--class latency -n agents --kubeconfig "$AGENT_KUBECONFIG"',
        dev_like,
        dev_like.parent / "work",
    )
    assert done.returncode == 1
    assert "SeverityNotAllowed" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    # This refusal's own records: the operator is shared with earlier tests, whose objects may
    # log meanwhile (a handler of another test's session giving up, at ERROR, is not this).
    mine = "Webhook 'admit-session' failed permanently: SeverityNotAllowed"
    deadline = time.monotonic() + 30
    while True:
        with operator.log_path.open("rb") as log:
            log.seek(offset)
            written = log.read().decode(errors="replace")
        records = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
        refusals = [r for r in records if str(r.get("message", "")).startswith(mine)]
        if refusals or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert refusals, written[-2000:]
    assert {r["severity"] for r in refusals} == {"info"}
