"""Install CRDs and apply YAML manifests (server-side apply, field manager ``agent-authority``)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterable
from typing import Any

import yaml
from kubernetes import client, dynamic

FIELD_MANAGER = "agent-authority"


def load(paths: Iterable[pathlib.Path]) -> list[dict[str, Any]]:
    """Every non-empty YAML document in ``paths``, in order."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def install_crds(api: client.ApiClient, paths: Iterable[pathlib.Path], timeout: float = 30) -> None:
    """Apply the CRDs in ``paths`` and wait until every one is Established."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for body in load(paths):
        names.append(body["metadata"]["name"])
        ext.patch_custom_resource_definition(
            body["metadata"]["name"],
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in list(pending):
            status = ext.read_custom_resource_definition(name).status
            conditions = (status.conditions if status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not Established after {timeout:.0f} s: {sorted(pending)}")
        time.sleep(0.1)


def apply(api: client.ApiClient, docs: Iterable[dict[str, Any]]) -> list[str]:
    """Server-side apply each document; returns ``kind/name`` of each."""
    dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
    applied = []
    for body in docs:
        resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
        namespace = body["metadata"].get("namespace")
        resource.server_side_apply(
            body=body,
            name=body["metadata"]["name"],
            namespace=namespace,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        applied.append(f"{body['kind']}/{body['metadata']['name']}")
    return applied
