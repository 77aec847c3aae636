"""What every benchmark program shares: messages, ports, the machine it ran on, the operator
child process, and the result file.

Moved here from ``bench/sessions.py`` so that ``bench/faults.py`` runs the operator and writes its
results exactly as the session benchmark does. No measurements live here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import signal
import socket
import sys
import time
from collections.abc import Iterable
from typing import Any

# ``tests.e2e`` (the operator-process helper) lives in the checkout, not in the installed package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.e2e.operator_process import OperatorProcess

from agent_authority.kube import api
from agent_authority.localcluster import assets

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kube_for(kubeconfig: pathlib.Path) -> api.Kube:
    """The operator's own client wrapper (its pool of connections), for any identity."""
    return api.Kube.from_kubeconfig(str(kubeconfig))


def other_control_planes(mine: Iterable[int]) -> int:
    """kube-apiserver processes on the machine that are not ours (other engineers' test runs)."""
    own = set(mine)
    count = 0
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in own:
            continue
        try:
            if proc.joinpath("comm").read_text().strip() == "kube-apiserver":
                count += 1
        except OSError:
            continue
    return count


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = status_meminfo("MemTotal")
    return {
        "cpus": os.cpu_count(),
        "cpuModel": model,
        "memoryGiB": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kubernetes": assets.KUBERNETES_VERSION,
        "etcd": assets.ETCD_VERSION,
    }


def status_meminfo(key: str) -> int:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class BenchOperator(OperatorProcess):
    """The e2e helper's operator process, plus its pid (for /proc)."""

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return int(self._proc.pid)


def stamp() -> str:
    """The UTC date-time result files are named by."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")


def write_result(path: pathlib.Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def result_header(benchmark: str, args: argparse.Namespace, started: str) -> dict[str, Any]:
    """The part of every benchmark's JSON result that says what ran where: the command and its
    parameters, the machine and its load at the start; the runs are appended to ``runs``."""
    return {
        "benchmark": benchmark,
        "format": 2,
        "startedAt": started,
        "command": " ".join([pathlib.Path(sys.executable).name, *sys.argv]),
        "parameters": {
            k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()
        },
        "machine": machine(),
        "loadavgAtStart": [round(x, 2) for x in os.getloadavg()],
        "runs": [],
    }


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """SIGTERM stops a benchmark as Ctrl-C does: what it started is stopped, what it measured
    is written."""
    signal.signal(signal.SIGTERM, _terminate)
