"""The schema of Agent Authority: pydantic models of the three custom resources.

These models are the single source of truth: ``crds/*.yaml`` is generated from them by
``hack/gen-crds`` (see :mod:`agent_authority.models.crdgen`) and a test fails when the two drift.
This package owns shapes and their static validation only; it must not import kopf, a Kubernetes
client, or any higher layer of this package.
"""

GROUP = "agentauthority.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"
"""The operator's finalizer (added at admission so kopf need not patch it in first)."""
