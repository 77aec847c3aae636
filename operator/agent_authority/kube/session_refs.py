"""How a session's objects are named and labelled in the cluster.

Every object the operator makes for a session (ServiceAccount, Secret, Roles, RoleBindings)
carries the label ``agentauthority.io/session-uid``, so that revocation and the start-up sweep
find them in every namespace, and is named from the session's name and uid
(:class:`SessionRef`), so that a retry, another replica or the benchmark's floor makes the very
same objects. No I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from agent_authority.models import GROUP

SESSION_UID = "agentauthority.io/session-uid"
SESSION_NAME = "agentauthority.io/session"
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "agentauthority.io/component"
OPERATOR = "agent-authority"


@dataclasses.dataclass(frozen=True)
class SessionRef:
    """Which session the objects belong to, and how they are named."""

    namespace: str
    name: str
    uid: str
    api_version: str = f"{GROUP}/v1alpha1"
    kind: str = "IncidentSession"

    @property
    def base_name(self) -> str:
        digest = hashlib.sha256(self.uid.encode()).hexdigest()[:8]
        return f"aa-{self.name[:40].rstrip('-.')}-{digest}"

    @property
    def service_account(self) -> str:
        return self.base_name

    @property
    def secret(self) -> str:
        return f"{self.base_name}-token"

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def labels(self, component: str) -> dict[str, str]:
        return {
            MANAGED_BY: OPERATOR,
            SESSION_UID: self.uid,
            SESSION_NAME: self.name[:63],
            COMPONENT: component,
        }

    def owner(self) -> list[dict[str, Any]]:
        """An ownerReference (same namespace only): the garbage collector's safety net."""
        return [
            {
                "apiVersion": self.api_version,
                "kind": self.kind,
                "name": self.name,
                "uid": self.uid,
                "blockOwnerDeletion": False,
            }
        ]


def object_meta(ref: SessionRef, name: str, namespace: str, component: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": ref.labels(component),
    }
    if namespace == ref.namespace:
        meta["ownerReferences"] = ref.owner()
    return meta
