"""Write kubeconfig files (also used as the audit-webhook configuration of the apiserver)."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml


def write(
    path: pathlib.Path,
    *,
    server: str,
    ca: pathlib.Path,
    user: str,
    client_cert: pathlib.Path | None = None,
    client_key: pathlib.Path | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> pathlib.Path:
    """Write a single-context kubeconfig authenticating with a client certificate or a token."""
    credentials: dict[str, Any] = {}
    if client_cert is not None and client_key is not None:
        credentials = {"client-certificate": str(client_cert), "client-key": str(client_key)}
    if token is not None:
        credentials["token"] = token
    context: dict[str, Any] = {"cluster": "local", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
