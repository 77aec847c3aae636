"""Agent Authority: bounded, short-lived, audited Kubernetes authority for AI incident agents.

Layers, top to bottom (an import-linter contract in ``pyproject.toml`` enforces them):

- ``cli``                    the ``agent-authority`` command
- ``controllers``/``webhooks``  thin kopf handlers and admission
- ``kube``/``audit``/``metrics``  the only I/O: apiserver adapter, audit sinks, metrics
- ``policy``                 pure decisions, no I/O, no clock
- ``models``                 pydantic models: the schema of the CRDs and audit records
"""

__version__ = "0.1.0"
