"""Tear a local node down completely, and find what a node left on this host.

Everything a node creates lives in its folder (``<run folder>/node``) or carries the names in
:data:`BRIDGE` / :data:`CHAIN_PREFIXES`. :func:`teardown` stops the pods through CRI (containerd
runs CNI DEL), stops the daemons, kills leftover shims and containers (from runc's state),
unmounts, deletes the bridge and veths, flushes the NAT chains and restores ``ip_forward``. It
runs on ``LocalNode.stop()``, on ``hack/cluster down``, and for the run folders of killed test
runs (:data:`cluster.STALE_RUN_HOOKS`). :func:`leftovers` lists what is still there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
from typing import Any

from agent_authority.localcluster import assets, cluster, nodeassets

BRIDGE = "aa-cni0"
CHAIN_PREFIXES = ("KUBE-", "CNI-")
NODE_BINARY_DIRS = ("containerd", "runc", "kubernetes-node", "cri-tools")
"""Cache folders (``<name>-<version>``) of the node's daemons: their processes are ours."""


class NodeError(RuntimeError):
    """The node could not start or be cleaned up; the message says why and what to do."""


def run(args: list[str], *, check: bool = True, timeout: float = 60) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _quiet(args: list[str], timeout: float = 60) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run(
            args, capture_output=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL
        )


@dataclasses.dataclass
class Layout:
    """Where a node keeps everything (all under one folder, so teardown finds it)."""

    folder: pathlib.Path

    @property
    def socket(self) -> pathlib.Path:
        return self.folder / "containerd.sock"

    @property
    def runc_root(self) -> pathlib.Path:
        return self.folder / "runc"

    @property
    def state_file(self) -> pathlib.Path:
        return self.folder / "node.json"


def read(path: pathlib.Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def link_exists(name: str) -> bool:
    return pathlib.Path("/sys/class/net", name).exists()


def teardown(folder: pathlib.Path, procs: dict[str, subprocess.Popen[bytes]] | None = None) -> None:
    """Remove every trace of the node kept in ``folder`` (its processes may already be dead)."""
    if not folder.exists():
        return
    layout = Layout(folder)
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(layout.state_file.read_text())
    pids = {**state.get("pids", {}), **{n: p.pid for n, p in (procs or {}).items()}}
    _stop_pid(pids.get("kube-scheduler"))
    _stop_pid(pids.get("kubelet"))
    _stop_pid(pids.get("kube-proxy"))
    binaries = _cached_binaries()
    if "containerd" in pids and layout.socket.exists() and binaries is not None:
        # Stopping the sandboxes through CRI makes containerd run CNI DEL for each of them.
        endpoint = f"--runtime-endpoint=unix://{layout.socket}"
        _quiet([str(binaries.crictl), endpoint, "--timeout=20s", "rmp", "--force", "--all"], 90)
    _stop_pid(pids.get("containerd"))
    _kill_leftovers(layout, binaries)
    _unmount_under(folder)
    _remove_network()
    if binaries is not None:
        _quiet([str(binaries.kube_proxy), "--cleanup"], timeout=60)
    _flush_chains()
    forward = state.get("ipForward")
    if forward in ("0", "1"):
        with contextlib.suppress(OSError):
            pathlib.Path("/proc/sys/net/ipv4/ip_forward").write_text(forward + "\n")
    for proc in (procs or {}).values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    _unmount_under(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _cached_binaries() -> nodeassets.NodeBinaries | None:
    try:
        return nodeassets.find_or_build()
    except assets.AssetError:
        return None


def _stop_pid(pid: int | None, timeout: float = 15) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster.alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _kill_leftovers(layout: Layout, binaries: nodeassets.NodeBinaries | None) -> None:
    """Kill containers (from runc's state) and shims (they name our socket) that outlived us."""
    root = layout.runc_root
    if root.exists():
        for state in root.glob("*/*/state.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
                pid = int(json.loads(state.read_text())["init_process_pid"])
                os.kill(pid, signal.SIGKILL)
        if binaries is not None:
            for namespace in root.iterdir():
                for container in namespace.iterdir():
                    _quiet(
                        [
                            str(binaries.runc),
                            f"--root={namespace}",
                            "delete",
                            "--force",
                            container.name,
                        ]
                    )
    marker = str(layout.socket).encode()
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def _unmount_under(folder: pathlib.Path) -> None:
    """Detach every mount below ``folder`` (pod volumes, rootfs overlays, netns), deepest first."""
    prefix = str(folder.resolve())
    for _ in range(3):
        points = []
        with contextlib.suppress(OSError):
            for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point == prefix or point.startswith(prefix + "/"):
                    points.append(point)
        if not points:
            return
        for point in sorted(set(points), key=len, reverse=True):
            _quiet(["umount", "--lazy", point])


def _remove_network() -> None:
    """Delete our bridge, the veths still attached to it, and netns containerd left in /run."""
    master = pathlib.Path("/sys/class/net")
    if master.exists():
        for link in master.iterdir():
            upper = link / "master"
            if upper.exists() and upper.resolve().name == BRIDGE:
                _quiet(["ip", "link", "delete", link.name])
    if link_exists(BRIDGE):
        _quiet(["ip", "link", "delete", BRIDGE])


def _flush_chains() -> None:
    """Remove every iptables rule and chain named KUBE-* or CNI-* (kube-proxy, kubelet, CNI)."""
    for table in ("nat", "filter", "mangle"):
        try:
            rules = run(["iptables", "-t", table, "-S"], timeout=30).splitlines()
        except (NodeError, OSError, subprocess.TimeoutExpired):
            continue
        ours = [r for r in rules if any(f" {p}" in r for p in CHAIN_PREFIXES)]
        for rule in ours:
            parts = rule.split()
            if parts[0] == "-A" and not parts[1].startswith(CHAIN_PREFIXES):
                _quiet(["iptables", "-t", table, "-D", *parts[1:]])
        chains = [r.split()[1] for r in rules if r.startswith("-N ")]
        for chain in chains:
            if chain.startswith(CHAIN_PREFIXES):
                _quiet(["iptables", "-t", table, "-F", chain])
        for chain in chains:
            if chain.startswith(CHAIN_PREFIXES):
                _quiet(["iptables", "-t", table, "-X", chain])


def leftovers() -> list[str]:
    """What a node left on this host (empty after a clean teardown): for tests and ``down``."""
    found = []
    if link_exists(BRIDGE):
        found.append(f"bridge {BRIDGE}")
    for link in pathlib.Path("/sys/class/net").iterdir():
        if link.name.startswith("veth"):
            found.append(f"link {link.name}")
    for table in ("nat", "filter", "mangle"):
        with contextlib.suppress(NodeError, OSError, subprocess.TimeoutExpired):
            for rule in run(["iptables", "-t", table, "-S"], timeout=30).splitlines():
                if any(f" {p}" in rule for p in CHAIN_PREFIXES):
                    found.append(f"iptables -t {table}: {rule}")
    run_dir = str(cluster.run_root())
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(run_dir) or point.startswith("/run/netns/cni-"):
            found.append(f"mount {point}")
    bin_dir = assets.cache_dir() / "bin"
    node_dirs = tuple(str(bin_dir / d) + "-" for d in NODE_BINARY_DIRS)
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                exe = os.readlink(proc / "exe")
                if exe.startswith(node_dirs):
                    found.append(f"process {proc.name} {exe}")
    return found


def _stale_hook(folder: pathlib.Path) -> None:
    if (folder / "node").exists():
        teardown(folder / "node")


cluster.STALE_RUN_HOOKS.append(_stale_hook)
