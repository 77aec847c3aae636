"""``kubectl explain`` on the installed CRDs: every field described, in plain words."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from agent_authority.localcluster import cluster


def _explain(local: cluster.LocalCluster, what: str) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not on PATH: install it (the README's tour uses it too)"
    done = subprocess.run(
        [kubectl, "explain", what, "--kubeconfig", str(local.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "what",
    [
        "agentgrant.spec",
        "agentgrant.spec.subjects",
        "agentgrant.spec.incidents",
        "agentgrant.spec.read",
        "agentgrant.spec.remediations",
        "agentgrant.spec.session",
        "incidentsession.spec",
        "incidentsession.spec.incident",
        "incidentsession.status",
        "remediationrequest.spec",
        "remediationrequest.spec.evidence",
        "remediationrequest.status",
    ],
)
def test_explain_describes_every_field(
    local_cluster: cluster.LocalCluster, crds: list[str], what: str
) -> None:
    text = _explain(local_cluster, what)
    assert "<no description>" not in text
    assert "``" not in text
    assert ":class:" not in text


def test_explain_says_what_autonomy_means(
    local_cluster: cluster.LocalCluster, crds: list[str]
) -> None:
    text = " ".join(_explain(local_cluster, "ag.spec.remediations.autonomy").split())
    assert "propose (the default): every request waits for human approval" in text
    assert "auto: applied without a human when reversible and within limits" in text
    assert "never: may not be requested at all" in text


def test_explain_documents_evidence_requirements(
    local_cluster: cluster.LocalCluster, crds: list[str]
) -> None:
    text = " ".join(_explain(local_cluster, "rr.spec.evidence.sha256").split())
    assert "Required. 64 lower-case hex digits" in text
