"""What every benchmark program shares: messages, ports, the machine it ran on, the operator
child process, the CPU and memory of the processes from /proc, and the result file.

Moved here from ``bench/sessions.py`` so that ``bench/faults.py`` runs the operator and writes its
results exactly as the session benchmark does, and ``bench/remediation.py`` accounts CPU per
process as it does. No latency is measured here.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import re
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
from agent_authority.localcluster import assets, cluster

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


# -- processes: CPU and memory from /proc ---------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (0 when it is gone)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) or a count (``Threads``) of /proc/<pid>/status."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Processes:
    """The processes whose CPU we account per phase: operator, control plane, this harness."""

    def __init__(self, local: cluster.LocalCluster, operator_pid: int) -> None:
        self.pids: dict[str, int] = {"operator": operator_pid, "harness": os.getpid()}
        for pid in local.state()["pids"]:
            comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
            self.pids[{"kube-controller": "kube-controller-manager"}.get(comm, comm)] = int(pid)

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def rss_mib(self) -> dict[str, float]:
        return {name: status_kib(pid, "VmRSS") / 1024 for name, pid in self.pids.items()}


# -- the apiserver's own account: how long reads waited for a fresh watch cache ------------------

READ_WAIT = "apiserver_watch_cache_read_wait_seconds"
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def read_waits(metrics_text: str) -> dict[str, dict[str, Any]]:
    """``apiserver_watch_cache_read_wait_seconds`` by ``group/resource``: how many consistent
    reads waited for the watch cache to become fresh, their total wait, and the cumulative
    bucket counts (upper bound in seconds -> reads that waited at most that long)."""
    out: dict[str, dict[str, Any]] = {}
    for line in metrics_text.splitlines():
        if not line.startswith(READ_WAIT):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, labels, value = m.group(1), dict(_LABEL.findall(m.group(2))), float(m.group(3))
        key = f"{labels.get('group') or 'core'}/{labels.get('resource', '')}"
        entry = out.setdefault(key, {"count": 0.0, "sum": 0.0, "buckets": {}})
        if name == READ_WAIT + "_count":
            entry["count"] = value
        elif name == READ_WAIT + "_sum":
            entry["sum"] = value
        elif name == READ_WAIT + "_bucket" and "le" in labels:
            entry["buckets"][labels["le"]] = value
    return out


def waits_between(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The reads that waited between two :func:`read_waits` snapshots: count, mean wait, and
    the bucket bound below which half and 99% of them stayed (resources with none left out)."""
    out: dict[str, dict[str, Any]] = {}
    for key, a in after.items():
        b = before.get(key, {"count": 0.0, "sum": 0.0, "buckets": {}})
        count = a["count"] - b["count"]
        if count <= 0:
            continue
        cumulative = sorted(
            ((float(le), n - b["buckets"].get(le, 0.0)) for le, n in a["buckets"].items()),
            key=lambda x: x[0],
        )
        out[key] = {
            "reads": int(count),
            "meanSeconds": round((a["sum"] - b["sum"]) / count, 4),
            "p50AtMostSeconds": _bound(cumulative, 0.5 * count),
            "p99AtMostSeconds": _bound(cumulative, 0.99 * count),
        }
    return out


def _bound(cumulative: list[tuple[float, float]], reads: float) -> float:
    """The smallest bucket bound with at least ``reads`` reads at or below it."""
    return next((le for le, n in cumulative if n >= reads), float("inf"))


def apiserver_read_waits(local: cluster.LocalCluster) -> dict[str, dict[str, Any]]:
    """:func:`read_waits` of the local apiserver now (its ``/metrics``, as the admin); empty when
    it cannot be read (a benchmark never dies on its own instrumentation)."""
    try:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", local.apiserver_port, context=local.admin_ssl_context(), timeout=30
        )
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return {}
    return read_waits(text) if response.status == 200 else {}


class Phase:
    """Wall time, CPU seconds per process and load average over one phase of the benchmark;
    with ``local``, also the apiserver's consistent reads that waited for its watch cache."""

    def __init__(
        self, procs: Processes, name: str, local: cluster.LocalCluster | None = None
    ) -> None:
        self.procs = procs
        self.name = name
        self.local = local
        self.waits0 = apiserver_read_waits(local) if local is not None else {}
        self.started = time.monotonic()
        self.cpu0 = procs.cpu()
        self.load0 = os.getloadavg()
        self.result: dict[str, Any] = {}

    def end(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        cpu1 = self.procs.cpu()
        used = {k: round(cpu1[k] - self.cpu0.get(k, 0.0), 2) for k in cpu1}
        self.result = {
            "wallSeconds": round(wall, 2),
            "cpuSeconds": used,
            "cpuCoresBusy": round(sum(used.values()) / wall, 2) if wall else 0.0,
            "loadavgBefore": [round(x, 2) for x in self.load0],
            "loadavgAfter": [round(x, 2) for x in os.getloadavg()],
            "otherControlPlanesAtEnd": other_control_planes(self.procs.pids.values()),
        }
        if self.local is not None:
            self.result["watchCacheReadWaits"] = waits_between(
                self.waits0, apiserver_read_waits(self.local)
            )
        return self.result


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
