"""Present a bearer token to the apiserver and read the status code, timing how it changes."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from agent_authority.localcluster import cluster


def status(local: cluster.LocalCluster, path: str, token: str, method: str = "GET") -> int:
    """The HTTP status of ``method path`` made with ``token`` (no client certificate)."""
    context = ssl.create_default_context(cafile=str(local.ca_file))
    req = urllib.request.Request(  # noqa: S310 - our own https URL
        local.url + path, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    if method in {"POST", "PUT", "PATCH"}:
        req.data = b"{}"
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def wait_for_status(
    local: cluster.LocalCluster, path: str, token: str, want: int, timeout: float
) -> float | None:
    """Poll every 20 ms until ``want`` is returned; seconds it took, or None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if status(local, path, token) == want:
            return time.monotonic() - started
        time.sleep(0.02)
    return None
