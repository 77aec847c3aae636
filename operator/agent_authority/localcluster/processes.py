"""The processes and run folders of local control planes: free ports, children that die with
their parent, stopping them, and removing the run folders of owners that are gone.

Owns no control plane of its own (:mod:`cluster` does); everything here works on pids and
folders, so the node and Alertmanager helpers start their daemons the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from agent_authority.localcluster import assets

PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The control plane could not start or stop; the message says why and what to do."""


STALE_RUN_HOOKS: list[Callable[[pathlib.Path], None]] = []
"""Called with a stale run folder before it is removed (the node unmounts and cleans up there)."""


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def claim(port: int, what: str) -> int:
    if port == 0:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ClusterError(
                    f"port {port} on 127.0.0.1 for {what} is taken by another process; "
                    "stop it or choose another port"
                ) from e
            raise
    return port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_root() -> pathlib.Path:
    return assets.cache_dir() / "run"


def reap_stale_runs() -> None:
    """Remove run folders whose owner process is gone (left by a killed test run)."""
    root = run_root()
    if not root.exists():
        return
    for folder in root.iterdir():
        state = folder / "state.json"
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            data = {}
        owner = int(data.get("owner", 0))
        pids = [int(p) for p in data.get("pids", [])]
        if (owner and alive(owner)) or (not owner and data and any(alive(p) for p in pids)):
            continue  # in use: an attached run whose owner lives, or a detached run (`up`)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for hook in STALE_RUN_HOOKS:
            hook(folder)
        shutil.rmtree(folder, ignore_errors=True)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def stop_detached(name: str) -> bool:
    """Stop a control plane started with ``detach=True``; False when none was running."""
    folder = run_root() / name
    state_file = folder / "state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    pids = [int(p) for p in state.get("pids", [])]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)
    return True
