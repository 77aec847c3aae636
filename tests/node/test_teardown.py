"""The node leaves nothing behind: after ``stop()``, and after its owner was killed (-9).

Each test first proves there is something to clean (a pod's veth, its NAT rules, mounts) and
then that :func:`node.leftovers` finds none of it afterwards.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from kubernetes import client, config

from agent_authority.localcluster import cluster, node
from tests.e2e import agents

ROOT = pathlib.Path(__file__).resolve().parents[2]
POD = {
    "metadata": {"name": "sleeper"},
    "spec": {
        "containers": [
            {"name": "c", "image": "localhost/agent-authority/pause:1", "imagePullPolicy": "Never"}
        ]
    },
}
pytestmark = pytest.mark.timeout(900)


def _run_pod(kubeconfig: pathlib.Path) -> None:
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    core.create_namespaced_pod("default", POD)

    def running() -> bool:
        return core.read_namespaced_pod("sleeper", "default").status.phase == "Running"

    agents.wait_for(running, 120, "the pod to run", every=0.5)


def _has_pod_traces() -> list[str]:
    return [t for t in node.leftovers() if t.startswith(("link veth", "mount", "process"))]


def test_stop_removes_pods_mounts_links_and_rules() -> None:
    assert node.leftovers() == [], "the host was not clean before the test"
    local = cluster.LocalCluster(node.cluster_options()).start()
    worker = node.LocalNode(local)
    try:
        worker.start()
        _run_pod(local.kubeconfig)
        assert _has_pod_traces(), "a running pod should leave traces to clean"
    finally:
        started = time.monotonic()
        worker.stop()
        local.stop()
    print(f"\n[node] teardown in {time.monotonic() - started:.1f} s")
    assert node.leftovers() == []


_OWNER = """
import sys, time
from agent_authority.localcluster import cluster, node
from tests.node.test_teardown import _run_pod
local = cluster.LocalCluster(node.cluster_options()).start()
node.LocalNode(local).start()
_run_pod(local.kubeconfig)
print(local.folder, flush=True)
time.sleep(3600)
"""


def test_a_killed_owner_is_cleaned_up_by_the_next_run() -> None:
    assert node.leftovers() == [], "the host was not clean before the test"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'operator'}"},
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().strip()
        assert line, "the owner did not start its node"
        folder = pathlib.Path(line)
        assert (folder / "node").exists()
        assert _has_pod_traces()
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(30)
        if owner.stdout is not None:
            owner.stdout.close()
    time.sleep(2)  # its daemons die with it (PR_SET_PDEATHSIG); shims and pods do not
    assert node.leftovers(), "a killed owner should leave a live pod behind"
    cluster.reap_stale_runs()  # what the next run does first
    assert not folder.exists()
    assert node.leftovers() == []
